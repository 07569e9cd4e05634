"""Builders for rollout tests: digests, a fixed start time and deterministic observations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelshift.rollout import Observation, ObservationPair

CANDIDATE = "sha256:" + "c" * 64
BASELINE = "sha256:" + "b" * 64
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def spread(center: float, width: float, n: int) -> list[float]:
    """``n`` evenly spaced values from ``center`` to ``center + width`` (deterministic, no ties)."""
    if n == 1:
        return [center]
    return [center + width * i / (n - 1) for i in range(n)]


def observation(
    digest: str,
    *,
    requests: int = 200,
    errors: int = 0,
    latency: float = 100.0,
    tokens: float = 300.0,
    samples: int | None = None,
    up: int = 0,
    down: int = 0,
    quality: list[float] | None = None,
) -> Observation:
    """One side's observation: ``samples`` latency and token values (default: one per successful request)."""
    n = requests - errors if samples is None else samples
    return Observation(
        digest=digest,
        requests=requests,
        errors=errors,
        latencies_ms=spread(latency, latency * 0.2, n),
        tokens_per_request=spread(tokens, tokens * 0.2, n),
        feedback_up=up,
        feedback_down=down,
        quality_scores=quality or [],
    )


def pair(
    *,
    canary: dict[str, object] | None = None,
    baseline: dict[str, object] | None = None,
) -> ObservationPair:
    """A canary/baseline pair with the spec digests; keyword dicts override :func:`observation` defaults."""
    return ObservationPair(
        canary=observation(CANDIDATE, **(canary or {})),  # type: ignore[arg-type]
        baseline=observation(BASELINE, **(baseline or {})),  # type: ignore[arg-type]
    )
