"""The bundle orchestrator shared by the evaluation runner and the gateway (retrieve -> prompt -> model).

Build a :class:`BundleRuntime` from a bundle, its index generation and an async inference client
(:func:`async_inference` on a :class:`ModelTarget` that :class:`EndpointDirectory` resolved), then
``await runtime.answer(question)``.
"""

from __future__ import annotations

from modelshift.orchestration.connect import (
    SINGLE_ATTEMPT,
    EndpointDirectory,
    ModelTarget,
    async_inference,
    open_runtime,
)
from modelshift.orchestration.index import open_index
from modelshift.orchestration.runtime import (
    Answer,
    BundleRuntime,
    HitLike,
    Passage,
    Prepared,
    Retriever,
    deployment_of,
    format_context,
    generation_params,
)

__all__ = [
    "SINGLE_ATTEMPT",
    "Answer",
    "BundleRuntime",
    "EndpointDirectory",
    "HitLike",
    "ModelTarget",
    "Passage",
    "Prepared",
    "Retriever",
    "async_inference",
    "deployment_of",
    "format_context",
    "generation_params",
    "open_index",
    "open_runtime",
]
