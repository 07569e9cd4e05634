"""The offline evaluation gate: :func:`compare` judges candidate vs baseline per-item results by a policy.

For every metric the policy names, on the items both sides answered (paired by ``item_id``; ``error_rate``
uses every item both sides ran, failed ones included):

* ``diff = candidate - baseline`` (means of per-item values, or quantiles for latency p50/p95);
* a CI at the policy's confidence (paired percentile bootstrap, seeded) and a p-value (Wilcoxon
  signed-rank for per-item means; paired bootstrap for quantiles);
* the allowed margin ``M >= 0`` of worsening: ``absolute_margin``, ``relative_margin * |baseline|``, the
  smaller (stricter) of the two when both are set, 0 when neither is (plain non-inferiority).

With ``loss = -diff`` when greater is better (``+diff`` otherwise) and ``worst`` the CI bound on the bad side
expressed the same way, the verdict is, in order:

1. **inconclusive** when fewer pairs define the metric than ``max(min_items, min_pairs_for(confidence))``
   (never pass on too little data);
2. **pass** when ``worst <= M`` (and ``loss <= M``): non-inferiority shown at the requested confidence;
3. **fail** when the whole CI lies beyond the margin (its good end is worse than ``M``), or when
   ``loss > M`` and the paired test is significant (``p < 1 - confidence``): measured worse than allowed.
   Either statistic suffices: the rank test can miss a mean dragged down by a few collapsed items, which
   the bootstrap CI of the mean shows;
4. otherwise **inconclusive**: the CI straddles the margin, or the worsening beyond it is not significant.

Zero baseline (the baseline value is exactly 0 and a ``relative_margin`` is set, so the relative margin
would be 0): ``zero_baseline: absolute`` drops the relative margin and judges with ``absolute_margin`` (0 when
unset) as above; ``fail`` tolerates no worsening — any ``loss > 0`` fails without a test, no change passes;
``pass`` passes the metric (nothing to compare against). The too-few-items rule applies first in all cases.

The gate fails when any metric fails (every failing metric is listed; critical ones are named as vetoes),
is inconclusive when none fails but any is inconclusive, and passes otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from modelshift.bundle.manifest import Threshold
from modelshift.errors import ConfigError, DataValidationError
from modelshift.evaluation.report import GateCounts, GateReport, MetricRow, Verdict
from modelshift.evaluation.results import METRICS, ItemResult, MetricSpec
from modelshift.evaluation.stats import (
    DEFAULT_RESAMPLES,
    Interval,
    bootstrap_mean_diff,
    bootstrap_quantile_diff,
    min_pairs_for,
    wilcoxon_p,
)

# Float noise in bootstrap means must not turn "exactly at the margin" into "beyond it".
_EPS = 1e-12


class GatePolicy(Protocol):
    """What the gate reads from a bundle's ``evaluation`` section (``bundle.manifest.Evaluation`` fits)."""

    @property
    def confidence(self) -> float:
        """Confidence level of the CI; the test's significance level is ``1 - confidence``."""

    @property
    def min_items(self) -> int:
        """Fewest paired items a metric needs before it can pass or fail."""

    @property
    def metrics(self) -> Mapping[str, Threshold]:
        """The gated metrics (names from ``METRICS``) and their non-inferiority rules."""


def _index(results: Sequence[ItemResult], side: str) -> dict[str, ItemResult]:
    by_id: dict[str, ItemResult] = {}
    for r in results:
        if r.item_id in by_id:
            raise DataValidationError(
                f"item id {r.item_id!r} appears twice in the {side} results; "
                "give every golden item a unique id and evaluate it once"
            )
        by_id[r.item_id] = r
    return by_id


def check_policy(policy: GatePolicy) -> None:
    """Raise ConfigError if the policy names an unknown metric or flips a metric's direction.

    :func:`compare` calls it first; bundle validation can call it to report the problem before any run.
    """
    unknown = [name for name in policy.metrics if name not in METRICS]
    if unknown:
        raise ConfigError(
            f"evaluation.metrics names unknown metric(s) {', '.join(sorted(unknown))}; "
            f"known metrics: {', '.join(METRICS)}"
        )
    # A flipped direction would let a worse candidate pass as "better"; every metric here has one sane way.
    flipped = [
        name for name, t in policy.metrics.items() if t.greater_is_better != METRICS[name].greater_is_better
    ]
    if flipped:
        fixes = ", ".join(
            f"{n}: greater_is_better: {str(METRICS[n].greater_is_better).lower()}" for n in flipped
        )
        raise ConfigError(
            f"evaluation.metrics gives the wrong direction for {', '.join(flipped)}; set {fixes}"
        )


def _margin(threshold: Threshold, baseline: float) -> float:
    options = []
    if threshold.absolute_margin is not None:
        options.append(threshold.absolute_margin)
    if threshold.relative_margin is not None:
        options.append(threshold.relative_margin * abs(baseline))
    return min(options) if options else 0.0


def _stats(
    spec: MetricSpec, cand: list[float], base: list[float], confidence: float, n_resamples: int, seed: int
) -> tuple[Interval, float]:
    if spec.kind == "quantile":
        assert spec.quantile is not None
        return bootstrap_quantile_diff(
            cand, base, spec.quantile, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
    ci = bootstrap_mean_diff(cand, base, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return ci, wilcoxon_p(cand, base)


def _judge(
    name: str,
    spec: MetricSpec,
    threshold: Threshold,
    pairs: list[tuple[ItemResult, ItemResult]],
    policy: GatePolicy,
    n_resamples: int,
    seed: int,
) -> MetricRow:
    cand: list[float] = []
    base: list[float] = []
    for c, b in pairs:
        cv, bv = c.value(spec.field), b.value(spec.field)
        if cv is not None and bv is not None:
            cand.append(cv)
            base.append(bv)
    n = len(cand)
    gib = threshold.greater_is_better
    if n == 0:
        return MetricRow(
            name=name,
            candidate=None,
            baseline=None,
            diff=None,
            ci_low=None,
            ci_high=None,
            p_value=None,
            margin=None,
            greater_is_better=gib,
            critical=threshold.critical,
            n=0,
            verdict=Verdict.INCONCLUSIVE,
            reason=f"defined on none of the {len(pairs)} paired items; check that the dataset and bundle "
            f"provide what {name} needs",
        )
    cand_value, base_value = spec.reduce(cand), spec.reduce(base)
    assert cand_value is not None and base_value is not None
    ci, p = _stats(spec, cand, base, policy.confidence, n_resamples, seed)
    # Express everything as "how much worse": positive loss/worst mean the candidate is worse.
    sign = 1.0 if gib else -1.0
    loss = -sign * ci.estimate
    worst = max(-sign * ci.low, -sign * ci.high)
    best = min(-sign * ci.low, -sign * ci.high)
    zero_rule = threshold.zero_baseline if base_value == 0 and threshold.relative_margin is not None else None
    if zero_rule == "fail":
        margin = 0.0
    elif zero_rule == "absolute":
        margin = threshold.absolute_margin or 0.0
    else:
        margin = _margin(threshold, base_value)
    verdict, reason = _decide(n, loss, worst, best, margin, p, zero_rule, policy)
    return MetricRow(
        name=name,
        candidate=cand_value,
        baseline=base_value,
        diff=ci.estimate,
        ci_low=ci.low,
        ci_high=ci.high,
        p_value=p,
        margin=margin,
        greater_is_better=gib,
        critical=threshold.critical,
        n=n,
        verdict=verdict,
        reason=reason,
    )


def _decide(
    n: int,
    loss: float,
    worst: float,
    best: float,
    margin: float,
    p: float,
    zero_rule: str | None,
    policy: GatePolicy,
) -> tuple[Verdict, str]:
    """The verdict rules of the module docstring, in order; ``loss``/``worst`` > 0 mean worse."""
    alpha = 1 - policy.confidence
    needed = max(policy.min_items, min_pairs_for(policy.confidence))
    if n < needed:
        return Verdict.INCONCLUSIVE, (
            f"only {n} paired items; need at least {needed} (min_items {policy.min_items}, "
            f"confidence {policy.confidence}): add golden items"
        )
    if zero_rule == "pass":
        return Verdict.PASS, "baseline is 0 and zero_baseline is pass: not compared"
    if zero_rule == "fail":
        if loss > _EPS:
            return Verdict.FAIL, f"baseline is 0 and zero_baseline is fail; candidate is worse by {loss:.4g}"
        return Verdict.PASS, "baseline is 0 and the candidate is not worse (zero_baseline: fail)"
    note = " (baseline is 0: relative margin dropped)" if zero_rule == "absolute" else ""
    if worst <= margin + _EPS and loss <= margin + _EPS:
        if worst > 0:
            return Verdict.PASS, (
                f"non-inferior: the CI's bad end is {worst:.4g} worse, within the margin {margin:.4g}" + note
            )
        return Verdict.PASS, f"non-inferior: even the CI's bad end is not worse (margin {margin:.4g})" + note
    if best > margin + _EPS:
        return Verdict.FAIL, (
            f"worse by {loss:.4g}: even the CI's good end ({best:.4g} worse) is beyond the margin "
            f"{margin:.4g}" + note
        )
    if loss > margin + _EPS and p < alpha:
        return Verdict.FAIL, (
            f"worse by {loss:.4g}, beyond the margin {margin:.4g} (p={p:.3g} < {alpha:.3g})" + note
        )
    if loss > margin + _EPS:
        return Verdict.INCONCLUSIVE, (
            f"worse by {loss:.4g}, beyond the margin {margin:.4g}, but not significant (p={p:.3g})" + note
        )
    return Verdict.INCONCLUSIVE, (
        f"CI reaches {worst:.4g} worse, beyond the margin {margin:.4g}; more items would tell" + note
    )


def compare(
    candidate: Sequence[ItemResult],
    baseline: Sequence[ItemResult],
    policy: GatePolicy,
    *,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> GateReport:
    """Judge ``candidate`` against ``baseline`` on every metric of ``policy`` (see the module docstring).

    Pure and deterministic for a given ``seed``. Items are paired by ``item_id``; ids on one side only and
    items that failed on either side are left out of every metric (except ``error_rate``, which is about
    them) and counted in the report.
    Raises ConfigError for a metric name not in ``METRICS`` or a ``greater_is_better`` that contradicts the
    metric (higher latency is never better), DataValidationError for a duplicated item id.
    """
    check_policy(policy)
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be at least 1, got {n_resamples}; the default is 2000")
    cand_by_id = _index(candidate, "candidate")
    base_by_id = _index(baseline, "baseline")
    common = [(c, base_by_id[item_id]) for item_id, c in cand_by_id.items() if item_id in base_by_id]
    pairs = [(c, b) for c, b in common if not c.failed and not b.failed]
    counts = GateCounts(
        paired=len(pairs),
        candidate_only=[i for i in cand_by_id if i not in base_by_id],
        baseline_only=[i for i in base_by_id if i not in cand_by_id],
        failed_candidate=[r.item_id for r in candidate if r.failed],
        failed_baseline=[r.item_id for r in baseline if r.failed],
    )
    rows = [
        _judge(
            name,
            METRICS[name],
            threshold,
            common if name == "error_rate" else pairs,
            policy,
            n_resamples,
            seed,
        )
        for name, threshold in policy.metrics.items()
    ]
    if any(r.verdict is Verdict.FAIL for r in rows):
        verdict = Verdict.FAIL
    elif any(r.verdict is Verdict.INCONCLUSIVE for r in rows):
        verdict = Verdict.INCONCLUSIVE
    else:
        verdict = Verdict.PASS
    return GateReport(
        verdict=verdict,
        rows=rows,
        counts=counts,
        confidence=policy.confidence,
        min_items=policy.min_items,
        seed=seed,
        n_resamples=n_resamples,
    )
