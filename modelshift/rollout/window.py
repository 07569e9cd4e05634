"""From recorded requests to the controller's input: per-digest request windows -> ObservationPair.

The gateway's ``observe(store, app, since, until)`` returns one window per bundle digest (requests,
errors, latencies and tokens of successful requests, feedback scores). These functions turn such windows
into :class:`Observation`\\ s for the spec's two digests; they are typed against a Protocol, so this package
stays free of the store and the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from modelshift.rollout.analysis import Observation
from modelshift.rollout.spec import ApprovalInput, ObservationPair, RolloutSpec

#: feedback scores are 0..1 (thumbs up 1.0, down 0.0); a score below this counts as a thumbs-down
NEGATIVE_BELOW = 0.5


class RequestWindow(Protocol):
    """What one bundle served in a window (``modelshift.gateway.metrics.DigestWindow`` satisfies it)."""

    @property
    def digest(self) -> str:
        """The bundle digest that served these requests."""
        ...

    @property
    def requests(self) -> int:
        """All requests, failed ones included."""
        ...

    @property
    def errors(self) -> int:
        """Failed requests."""
        ...

    @property
    def latencies_ms(self) -> Sequence[float]:
        """Latency of each successful request."""
        ...

    @property
    def tokens_per_request(self) -> Sequence[float]:
        """Prompt plus completion tokens of each successful request."""
        ...

    @property
    def feedback(self) -> Sequence[float]:
        """User feedback scores in 0..1 given to these requests."""
        ...


def observation_from_window(window: RequestWindow, *, quality_scores: Sequence[float] = ()) -> Observation:
    """One bundle's Observation from its request window (plus any sampled online quality scores)."""
    down = sum(1 for score in window.feedback if score < NEGATIVE_BELOW)
    return Observation(
        digest=window.digest,
        requests=window.requests,
        errors=window.errors,
        latencies_ms=[float(x) for x in window.latencies_ms],
        tokens_per_request=[float(x) for x in window.tokens_per_request],
        feedback_up=len(window.feedback) - down,
        feedback_down=down,
        quality_scores=[float(x) for x in quality_scores],
    )


def pair_from_windows(
    spec: RolloutSpec,
    windows: Mapping[str, RequestWindow],
    *,
    quality_scores: Mapping[str, Sequence[float]] | None = None,
    approval: ApprovalInput | None = None,
) -> ObservationPair:
    """The controller's input for ``spec`` from per-digest windows.

    A digest with no window served nothing in it and becomes an empty Observation (zero requests), which
    the analysis reads as "not enough data" or, when only one side has traffic, "could not measure".
    Windows of other digests (a third bundle, a stale one) are ignored.
    """
    scores = quality_scores or {}

    def one(digest: str) -> Observation:
        window = windows.get(digest)
        if window is None:
            return Observation(digest=digest, quality_scores=[float(x) for x in scores.get(digest, ())])
        return observation_from_window(window, quality_scores=scores.get(digest, ()))

    return ObservationPair(
        canary=one(spec.candidate_digest), baseline=one(spec.baseline_digest), approval=approval
    )
