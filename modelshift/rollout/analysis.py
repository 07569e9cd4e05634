"""Live canary analysis: canary against baseline over the same window, one verdict per metric, worst wins.

Metrics (each one-sided: only "canary worse" can fail):

- ``error_rate``: errors / requests, two-proportion z-test; Fisher's exact test when the normal
  approximation does not hold (rare errors, the usual case of zero errors on both sides).
- ``latency`` and ``tokens_per_request``: Mann-Whitney U on the samples; failed only when the canary median
  exceeds the baseline median by more than the relative tolerance *and* the test is significant, so a
  significant but tiny slowdown passes (Kayenta's effect-size rule).
- ``negative_feedback``: share of thumbs-down among votes, as for the error rate.
- ``online_quality``: mean of sampled online quality scores; failed when lower beyond the margin and
  significant.

"Could not measure" (invalid counts, NaN or negative samples, traffic on one side only) is ``error``, kept
apart from "measured worse" (``failed``). Too few requests or samples is ``inconclusive``. Feedback and
online quality are sparse by nature: unless the policy requires them, they count only once they measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from scipy import stats as sps

from modelshift.evaluation.stats import MIN_MANN_WHITNEY, mann_whitney_u, two_proportion_z
from modelshift.rollout.verdict import Verdict


class Observation(BaseModel):
    """What one bundle served over one analysis window (the gateway's request metrics, aggregated)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = Field(default_factory=list)
    tokens_per_request: list[float] = Field(default_factory=list)
    feedback_up: int = 0
    feedback_down: int = 0
    #: online quality scores of the sampled answers (the evaluation metrics, higher is better)
    quality_scores: list[float] = Field(default_factory=list)


class AnalysisPolicy(BaseModel):
    """Significance, tolerances and minimum sample sizes of the live analysis."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    #: requests per side before the error rate (and so the analysis) can be conclusive; an Analysis step
    #: replaces it with its own ``min_requests``
    min_requests: int = Field(default=50, ge=1)
    #: latency / token samples per side before Mann-Whitney U is run
    min_samples: int = Field(default=20, ge=MIN_MANN_WHITNEY)
    #: absolute error-rate increase tolerated (0.01 = one percentage point)
    error_rate_tolerance: float = Field(default=0.01, ge=0, le=1)
    #: relative increase of the median tolerated (0.10 = 10 %)
    latency_tolerance: float = Field(default=0.10, ge=0)
    tokens_tolerance: float = Field(default=0.10, ge=0)
    #: absolute increase of the thumbs-down share tolerated
    negative_feedback_tolerance: float = Field(default=0.05, ge=0, le=1)
    min_feedback: int = Field(default=20, ge=1)
    require_feedback: bool = False
    #: absolute drop of the mean online quality score tolerated
    quality_margin: float = Field(default=0.05, ge=0)
    min_quality_samples: int = Field(default=10, ge=MIN_MANN_WHITNEY)
    require_quality: bool = False


class MetricVerdict(BaseModel):
    """One metric's comparison: both values, the difference, the p-value, the rule applied and the verdict.

    Values that could not be computed are None (never NaN), so the record is plain JSON for the audit.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    verdict: Verdict
    #: whether the verdict takes part in the worst-wins reduction
    counted: bool = True
    canary: float | None = None
    baseline: float | None = None
    difference: float | None = None
    p_value: float | None = None
    n_canary: int = 0
    n_baseline: int = 0
    #: the failure rule in words, e.g. "fails when canary - baseline > 0.01 and p < 0.05"
    rule: str = ""
    reason: str


class AnalysisResult(BaseModel):
    """The reduced verdict of one analysis, every metric's verdict, and a one-line reason."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    metrics: list[MetricVerdict]
    reason: str


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _p_or_one(p: float | None) -> float:
    # A p-value that could not be computed never counts as significant (and NaN never reaches the audit).
    return p if p is not None and math.isfinite(p) else 1.0


def _p_greater(a: Sequence[float], b: Sequence[float]) -> float | None:
    """One-sided Mann-Whitney p-value for "a tends to be larger than b"; None when a sample is too small."""
    test = mann_whitney_u(a, b)
    if test is None:
        return None
    half = test.p_value / 2
    # U of a above its null mean means a leans larger; the null distribution is symmetric about that mean.
    return half if test.statistic > test.n_a * test.n_b / 2 else 1 - half


def _p_rate_greater(bad_c: int, n_c: int, bad_b: int, n_b: int) -> float:
    """One-sided p-value for "the canary's rate bad_c/n_c is higher than the baseline's"."""
    z = two_proportion_z(bad_b, n_b, bad_c, n_c)
    if z is not None:
        half = z.p_value / 2
        return half if z.difference > 0 else 1 - half
    # The normal approximation does not hold (few events): Fisher's exact test is valid at any count.
    table = [[bad_c, n_c - bad_c], [bad_b, n_b - bad_b]]
    return float(sps.fisher_exact(table, alternative="greater").pvalue)


def _too_few(
    name: str, n_c: int, n_b: int, *, minimum: int, required: bool, unit: str, base: dict[str, Any]
) -> MetricVerdict | None:
    """The sample-size verdict shared by every metric: a side with nothing while the other has enough is
    ERROR (could not measure); fewer than ``minimum`` on either side is INCONCLUSIVE; else None."""
    if required and min(n_c, n_b) == 0 and max(n_c, n_b) >= minimum:
        side = "baseline" if n_b == 0 else "canary"
        return MetricVerdict(
            verdict=Verdict.ERROR,
            reason=f"{name}: no {side} {unit} in the window while the other side has {max(n_c, n_b)}; "
            "cannot compare: check the router weights and the gateway's request recording",
            **base,
        )
    if min(n_c, n_b) < minimum:
        return MetricVerdict(
            verdict=Verdict.INCONCLUSIVE,
            counted=required,
            reason=f"{name}: {n_c} canary and {n_b} baseline {unit}; need {minimum} on each side",
            **base,
        )
    return None


def _rate_metric(
    name: str,
    counts: tuple[int, int, int, int],
    *,
    minimum: int,
    tolerance: float,
    alpha: float,
    required: bool,
    unit: str,
) -> MetricVerdict:
    bad_c, n_c, bad_b, n_b = counts
    rule = f"fails when canary - baseline > {tolerance:g} and one-sided p < {alpha:g}"
    base = {"name": name, "n_canary": n_c, "n_baseline": n_b, "rule": rule}
    if min(counts) < 0 or bad_c > n_c or bad_b > n_b:
        return MetricVerdict(
            verdict=Verdict.ERROR,
            reason=f"{name}: inconsistent counts (canary {bad_c}/{n_c}, baseline {bad_b}/{n_b} {unit}); "
            "check the request metrics the gateway recorded",
            **base,
        )
    too_few = _too_few(name, n_c, n_b, minimum=minimum, required=required, unit=unit, base=base)
    if too_few is not None:
        return too_few
    rate_c, rate_b = bad_c / n_c, bad_b / n_b
    p = _p_or_one(_p_rate_greater(bad_c, n_c, bad_b, n_b))
    worse = rate_c - rate_b > tolerance and p < alpha
    return MetricVerdict(
        verdict=Verdict.FAILED if worse else Verdict.SUCCESSFUL,
        canary=rate_c,
        baseline=rate_b,
        difference=rate_c - rate_b,
        p_value=p,
        reason=f"{name}: canary {rate_c:.2%} vs baseline {rate_b:.2%} (p={p:.3g})"
        + (" - worse beyond tolerance" if worse else ""),
        **base,
    )


def _sample_metric(
    name: str,
    canary: Sequence[float],
    baseline: Sequence[float],
    *,
    minimum: int,
    alpha: float,
    required: bool,
    relative: float | None = None,
    absolute: float | None = None,
) -> MetricVerdict:
    n_c, n_b = len(canary), len(baseline)
    if relative is not None:
        rule = f"fails when canary median > baseline median x {1 + relative:g} and one-sided p < {alpha:g}"
    else:
        rule = f"fails when canary mean < baseline mean - {absolute:g} and one-sided p < {alpha:g}"
    base = {"name": name, "n_canary": n_c, "n_baseline": n_b, "rule": rule}
    bad = [x for x in (*canary, *baseline) if not math.isfinite(x) or (relative is not None and x < 0)]
    if bad:
        return MetricVerdict(
            verdict=Verdict.ERROR,
            reason=f"{name}: {len(bad)} sample(s) are NaN, infinite or negative (first: {bad[0]}); "
            "check the request metrics the gateway recorded",
            **base,
        )
    too_few = _too_few(name, n_c, n_b, minimum=minimum, required=required, unit="samples", base=base)
    if too_few is not None:
        return too_few
    if relative is not None:
        value_c, value_b = statistics.median(canary), statistics.median(baseline)
        beyond = value_c > value_b * (1 + relative)
        p = _p_greater(canary, baseline)
        label = "median"
    else:
        value_c, value_b = statistics.fmean(canary), statistics.fmean(baseline)
        beyond = value_b - value_c > (absolute or 0.0)
        p = _p_greater(baseline, canary)
        label = "mean"
    # min_samples >= MIN_MANN_WHITNEY, so the test always runs here
    p_value = _p_or_one(p)
    worse = beyond and p_value < alpha
    return MetricVerdict(
        verdict=Verdict.FAILED if worse else Verdict.SUCCESSFUL,
        canary=_num(value_c),
        baseline=_num(value_b),
        difference=_num(value_c - value_b),
        p_value=p_value,
        reason=f"{name}: canary {label} {value_c:.4g} vs baseline {value_b:.4g} (p={p_value:.3g})"
        + (" - worse beyond tolerance" if worse else ""),
        **base,
    )


def analyse(canary: Observation, baseline: Observation, policy: AnalysisPolicy) -> AnalysisResult:
    """Compare ``canary`` against ``baseline`` (same window) under ``policy``; worst metric verdict wins."""
    alpha = 1 - policy.confidence
    metrics = [
        _rate_metric(
            "error_rate",
            (canary.errors, canary.requests, baseline.errors, baseline.requests),
            minimum=policy.min_requests,
            tolerance=policy.error_rate_tolerance,
            alpha=alpha,
            required=True,
            unit="requests",
        ),
        _sample_metric(
            "latency",
            canary.latencies_ms,
            baseline.latencies_ms,
            minimum=policy.min_samples,
            alpha=alpha,
            required=True,
            relative=policy.latency_tolerance,
        ),
        _sample_metric(
            "tokens_per_request",
            canary.tokens_per_request,
            baseline.tokens_per_request,
            minimum=policy.min_samples,
            alpha=alpha,
            required=True,
            relative=policy.tokens_tolerance,
        ),
        _rate_metric(
            "negative_feedback",
            (
                canary.feedback_down,
                canary.feedback_up + canary.feedback_down,
                baseline.feedback_down,
                baseline.feedback_up + baseline.feedback_down,
            ),
            minimum=policy.min_feedback,
            tolerance=policy.negative_feedback_tolerance,
            alpha=alpha,
            required=policy.require_feedback,
            unit="votes",
        ),
        _sample_metric(
            "online_quality",
            canary.quality_scores,
            baseline.quality_scores,
            minimum=policy.min_quality_samples,
            alpha=alpha,
            required=policy.require_quality,
            absolute=policy.quality_margin,
        ),
    ]
    counted = [m for m in metrics if m.counted]
    verdict = Verdict.reduce(m.verdict for m in counted)
    worst = [m.reason for m in counted if m.verdict is verdict and verdict is not Verdict.SUCCESSFUL]
    reason = "; ".join(worst) if worst else f"all {len(counted)} counted metrics pass"
    return AnalysisResult(verdict=verdict, metrics=metrics, reason=f"{verdict}: {reason}")
