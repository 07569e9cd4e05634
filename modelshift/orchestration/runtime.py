"""The bundle orchestrator: retrieve -> render the bundle's prompt -> call the bundle's deployment.

This is the ONE code path that turns a question into an answer for a bundle; the evaluation runner and the
gateway both call it, so what is evaluated is what is served. A :class:`BundleRuntime` holds exactly one
bundle's pieces (its index generation, its prompts, its deployment and parameters) and nothing else, so two
runtimes can never mix components of two combinations (DESIGN §1).

The work is split in two so the runner can reserve rate-limit budget between them:
:meth:`BundleRuntime.prepare` retrieves and renders (no network), :meth:`BundleRuntime.complete` calls the
model. :meth:`BundleRuntime.answer` does both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

from modelshift.bundle import Bundle
from modelshift.errors import ConfigError
from modelshift.platforms.base import AsyncInference, RateLimitInfo, TokenUsage

#: the user message when a bundle has no ``user_template`` (same markers as the example templates)
DEFAULT_USER_TEMPLATE = "Documentation excerpts:\n\n{context}\n\nQuestion: {question}"


class HitLike(Protocol):
    """What the orchestrator needs from a search hit: the document it came from and the chunk text."""

    @property
    def document(self) -> str:
        """The chunk's document path, relative to the corpus root."""
        ...

    @property
    def text(self) -> str:
        """The chunk text."""
        ...


class Retriever(Protocol):
    """A search over ONE index generation (the bundle's own)."""

    def search(self, query: str, top_k: int) -> Sequence[HitLike]:
        """The ``top_k`` best chunks for ``query``, best first."""
        ...


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk as it went into the prompt."""

    document: str
    text: str

    @property
    def source(self) -> str:
        """The document's file name, the tag the prompt shows and answers cite."""
        return PurePosixPath(self.document).name


@dataclass(frozen=True)
class Prepared:
    """A rendered request of one bundle, ready to send (no network used yet)."""

    question: str
    contexts: tuple[Passage, ...]
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Answer:
    """A bundle's answer with everything needed to correlate it: contexts, prompt, usage and identity."""

    content: str
    contexts: tuple[Passage, ...]
    messages: tuple[Mapping[str, str], ...]
    usage: TokenUsage
    latency_ms: float
    app: str
    version: str
    digest: str
    model: str
    deployment: str
    finish_reason: str | None = None
    rate_limit: RateLimitInfo = field(default_factory=RateLimitInfo)


def format_context(passages: Sequence[Passage]) -> str:
    """``[<file name>]\\n<chunk text>`` per passage, separated by blank lines (the answerer reads the tag)."""
    return "\n\n".join(f"[{p.source}]\n{p.text.strip()}" for p in passages)


def generation_params(bundle: Bundle) -> dict[str, Any]:
    """The body fields the bundle pins for every call (unset optional ones are left out)."""
    p = bundle.manifest.parameters
    params: dict[str, Any] = {"temperature": p.temperature, "max_tokens": p.max_tokens}
    optional = {
        "top_p": p.top_p,
        "seed": p.seed,
        "presence_penalty": p.presence_penalty,
        "frequency_penalty": p.frequency_penalty,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if p.stop:
        params["stop"] = list(p.stop)
    return params


def deployment_of(bundle: Bundle) -> str:
    """The deployment (or, for OpenAI-compatible servers without one, the model name) the bundle calls."""
    model = bundle.manifest.model
    return model.deployment or model.name


class BundleRuntime:
    """One bundle, ready to answer: its retriever, its prompts, its deployment, its parameters."""

    def __init__(self, bundle: Bundle, inference: AsyncInference, retriever: Retriever | None) -> None:
        retrieval = bundle.manifest.retrieval
        if retrieval is not None and retriever is None:
            raise ConfigError(
                f"bundle {bundle.app}@{bundle.version} declares retrieval ({retrieval.corpus}) but no index "
                "was given; build its index generation first (modelshift.orchestration.open_index)"
            )
        self.bundle = bundle
        self.inference = inference
        self.retriever = retriever if retrieval is not None else None
        self.top_k = retrieval.top_k if retrieval is not None else 0
        self.deployment = deployment_of(bundle)
        self.model_name = bundle.manifest.model.name
        self.model = f"{bundle.manifest.model.name}@{bundle.manifest.model.version}"
        self.prompts = bundle.prompt_for(self.model_name)
        self.params = generation_params(bundle)

    @property
    def max_tokens(self) -> int:
        """The completion budget every call asks for (part of the rate-limit estimate)."""
        return self.bundle.manifest.parameters.max_tokens

    def retrieve(self, question: str) -> tuple[Passage, ...]:
        """The bundle's top-k chunks for ``question`` from its own index generation."""
        if self.retriever is None:
            return ()
        return tuple(Passage(h.document, h.text) for h in self.retriever.search(question, self.top_k))

    def render(
        self,
        question: str,
        contexts: Sequence[Passage],
        conversation: Sequence[Mapping[str, str]] | None = None,
    ) -> tuple[Mapping[str, str], ...]:
        """System prompt, earlier turns, then the user template filled with context and question."""
        template = self.prompts.user_template or DEFAULT_USER_TEMPLATE
        # str.replace, not str.format: prompt files may contain other braces (JSON examples)
        user = template.replace("{context}", format_context(contexts)).replace("{question}", question)
        turns = [{"role": str(m["role"]), "content": str(m["content"])} for m in conversation or ()]
        return ({"role": "system", "content": self.prompts.system}, *turns, {"role": "user", "content": user})

    def prepare(self, question: str, conversation: Sequence[Mapping[str, str]] | None = None) -> Prepared:
        """Retrieve and render, without calling the model."""
        if not question.strip():
            raise ConfigError(f"an empty question was sent to {self.bundle.app}@{self.bundle.version}")
        contexts = self.retrieve(question)
        return Prepared(question, contexts, self.render(question, contexts, conversation), self.params)

    async def complete(self, prepared: Prepared) -> Answer:
        """Call the bundle's deployment with the rendered messages and the bundle's parameters."""
        started = time.perf_counter()
        result = await self.inference.chat(self.deployment, prepared.messages, **prepared.params)
        latency = result.latency_ms or (time.perf_counter() - started) * 1000.0
        return Answer(
            content=result.content,
            contexts=prepared.contexts,
            messages=prepared.messages,
            usage=result.usage,
            latency_ms=latency,
            app=self.bundle.app,
            version=self.bundle.version,
            digest=self.bundle.digest,
            model=self.model,
            deployment=self.deployment,
            finish_reason=result.finish_reason,
            rate_limit=result.rate_limit,
        )

    async def answer(self, question: str, conversation: Sequence[Mapping[str, str]] | None = None) -> Answer:
        """Retrieve from the bundle's index, render its prompt, call its deployment."""
        return await self.complete(self.prepare(question, conversation))

    def close(self) -> None:
        """Release the index generation (its SQLite connection); the runtime cannot retrieve afterwards."""
        closer = getattr(self.retriever, "close", None)
        if callable(closer):
            closer()
