"""The evaluation gate: verdict rules, margins, zero baselines, directions, vetoes, pairing, determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelshift.bundle import load_bundle
from modelshift.bundle.manifest import Evaluation, Judge, JudgeModel, Threshold
from modelshift.errors import ConfigError, DataValidationError
from modelshift.evaluation.gate import check_policy, compare
from modelshift.evaluation.report import GateReport, Verdict
from modelshift.evaluation.results import JUDGE_EVALUATORS, METRICS, ItemResult

N = 40
BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def baseline(n: int = N, seed: int = 7) -> list[ItemResult]:
    """A plausible baseline run: every metric defined on every item, values spread like real answers."""
    rng = np.random.default_rng(seed)
    return [
        ItemResult(
            item_id=f"q{i:03d}",
            answer_f1=float(rng.uniform(0.4, 0.9)),
            answer_similarity=float(rng.uniform(0.5, 0.95)),
            groundedness=float(rng.uniform(0.5, 1.0)),
            retrieval_hit=bool(rng.random() < 0.8),
            format_valid=bool(rng.random() < 0.9),
            refusal=bool(rng.random() < 0.1),
            latency_ms=float(rng.uniform(100, 150)),
            prompt_tokens=int(rng.integers(300, 600)),
            completion_tokens=int(rng.integers(20, 80)),
            cost=float(rng.uniform(0.001, 0.002)),
            judge={e: float(rng.integers(1, 6)) for e in JUDGE_EVALUATORS},
        )
        for i in range(n)
    ]


def change(results: list[ItemResult], **changes: Any) -> list[ItemResult]:
    """Apply per-field changes: a callable maps (old value, index) to the new one, a constant replaces it."""
    out = []
    for i, r in enumerate(results):
        update = {f: (c(getattr(r, f), i) if callable(c) else c) for f, c in changes.items()}
        out.append(r.model_copy(update=update))
    return out


def shift(delta: float) -> Any:
    return lambda v, _i: min(1.0, max(0.0, v + delta))


# a policy that gates on judge_* metrics must pin the judge that scores them
JUDGE = Judge(
    deployment="judge", model=JudgeModel(name="gpt-4o", version="2024-11-20"), metrics=list(JUDGE_EVALUATORS)
)


def policy(min_items: int = 30, confidence: float = 0.95, **metrics: Threshold) -> Evaluation:
    judged = any(name.startswith("judge_") for name in metrics)
    return Evaluation(
        dataset="golden.jsonl",
        min_items=min_items,
        confidence=confidence,
        metrics=metrics,
        judge=JUDGE if judged else None,
    )


def up(**kw: Any) -> Threshold:
    return Threshold(greater_is_better=True, **kw)


def down(**kw: Any) -> Threshold:
    return Threshold(greater_is_better=False, **kw)


ALL_METRICS = {
    name: Threshold(greater_is_better=spec.greater_is_better, absolute_margin=0.03)
    for name, spec in METRICS.items()
}


def row(report: GateReport, name: str) -> Any:
    return next(r for r in report.rows if r.name == name)


def test_identical_runs_pass_every_metric() -> None:
    base = baseline()
    report = compare(base, base, policy(**ALL_METRICS))
    assert report.verdict is Verdict.PASS and report.passed
    assert [r.name for r in report.rows] == list(METRICS)
    for r in report.rows:
        assert r.verdict is Verdict.PASS, r
        assert (r.diff, r.ci_low, r.ci_high, r.p_value) == (0.0, 0.0, 0.0, 1.0)
        assert r.n == N
    assert report.failing() == []


def test_clearly_worse_f1_fails_and_is_named() -> None:
    base = baseline()
    report = compare(change(base, answer_f1=shift(-0.2)), base, policy(**ALL_METRICS))
    assert report.verdict is Verdict.FAIL
    assert [r.name for r in report.failing()] == ["answer_f1"]
    f1 = row(report, "answer_f1")
    assert f1.diff == pytest.approx(-0.2, abs=0.02)
    assert f1.ci_high < -0.03 and f1.p_value < 0.05
    assert "beyond the margin 0.03" in f1.reason


def test_worse_on_several_metrics_lists_every_failure() -> None:
    base = baseline()
    worse = change(
        base,
        answer_f1=shift(-0.2),
        groundedness=shift(-0.3),
        refusal=lambda _v, i: i % 2 == 0,  # half the answers refuse
        latency_ms=lambda v, _i: v * 3,
    )
    report = compare(worse, base, policy(**ALL_METRICS))
    assert report.verdict is Verdict.FAIL
    assert {r.name for r in report.failing()} == {
        "answer_f1",
        "groundedness",
        "refusal_rate",
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p95_ms",
    }


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (-0.01, Verdict.PASS),  # slightly worse, within the margin
        (-0.03, Verdict.PASS),  # exactly at the margin: non-inferior
        (-0.031, Verdict.FAIL),  # just beyond it, consistently
        (+0.05, Verdict.PASS),  # better
    ],
)
def test_absolute_margin_boundary(delta: float, expected: Verdict) -> None:
    base = change(baseline(), answer_f1=lambda _v, i: 0.5 + (i % 5) * 0.05)  # room to move both ways
    report = compare(change(base, answer_f1=shift(delta)), base, policy(answer_f1=up(absolute_margin=0.03)))
    assert row(report, "answer_f1").verdict is expected


def test_noisy_difference_straddling_the_margin_is_inconclusive() -> None:
    base = change(baseline(), answer_f1=0.5)
    # point estimate -0.02 (inside the 0.03 margin) but the CI reaches far beyond it
    noisy = change(base, answer_f1=lambda v, i: v + (0.3 if i % 2 else -0.34))
    r = row(compare(noisy, base, policy(answer_f1=up(absolute_margin=0.03))), "answer_f1")
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.diff == pytest.approx(-0.02) and r.ci_low < -0.03
    assert "more items would tell" in r.reason


def test_worse_beyond_margin_but_not_significant_is_inconclusive() -> None:
    base = change(baseline(), answer_f1=0.5)
    # 20 x +0.25, 10 x -0.15, 10 x -0.4: mean -0.0125, and the signed ranks balance exactly (p = 1)
    steps = [0.25] * 20 + [-0.15] * 10 + [-0.4] * 10
    noisy = change(base, answer_f1=lambda v, i: v + steps[i])
    r = row(compare(noisy, base, policy(answer_f1=up(absolute_margin=0.01))), "answer_f1")
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.p_value > 0.05 and "not significant" in r.reason


def test_mean_dragged_down_by_a_few_bad_items_fails_on_the_ci() -> None:
    base = change(baseline(), answer_f1=0.95)
    # 30 items slightly better, 10 collapse: the signed ranks balance (Wilcoxon p ~ 0.5) but the mean drops
    steps = [0.05] * 30 + [-0.9] * 10
    cand = change(base, answer_f1=lambda v, i: v + steps[i])
    r = row(compare(cand, base, policy(answer_f1=up(absolute_margin=0.03))), "answer_f1")
    assert r.p_value > 0.05 and r.ci_high < -0.03
    assert r.verdict is Verdict.FAIL and "even the CI's good end" in r.reason


@pytest.mark.parametrize(
    ("n", "min_items", "confidence", "expected"),
    [
        (29, 30, 0.95, Verdict.INCONCLUSIVE),
        (30, 30, 0.95, Verdict.PASS),
        (5, 1, 0.95, Verdict.INCONCLUSIVE),  # the confidence needs 6 pairs even though min_items is 1
        (6, 1, 0.95, Verdict.PASS),
        (10, 1, 0.999, Verdict.INCONCLUSIVE),  # 0.999 needs 11
        (11, 1, 0.999, Verdict.PASS),
    ],
)
def test_too_few_items_is_inconclusive_never_pass(
    n: int, min_items: int, confidence: float, expected: Verdict
) -> None:
    base = baseline(n)
    report = compare(base, base, policy(min_items, confidence, answer_f1=up(absolute_margin=0.03)))
    assert report.verdict is expected
    if expected is Verdict.INCONCLUSIVE:
        assert "add golden items" in report.rows[0].reason


def test_too_few_items_does_not_hide_a_clear_failure_as_pass() -> None:
    base = baseline(10)
    report = compare(change(base, answer_f1=0.0), base, policy(answer_f1=up(absolute_margin=0.03)))
    assert report.verdict is Verdict.INCONCLUSIVE  # not enough data to call it, and certainly not a pass


@pytest.mark.parametrize(
    ("rule", "absolute", "candidate_refusals", "expected", "reason"),
    [
        ("absolute", None, 0, Verdict.PASS, "relative margin dropped"),
        ("absolute", None, 20, Verdict.FAIL, "relative margin dropped"),
        ("absolute", 0.7, 20, Verdict.PASS, "relative margin dropped"),  # 0.5 worse (CI to 0.65) < 0.7
        ("fail", None, 0, Verdict.PASS, "not worse"),
        ("fail", None, 1, Verdict.FAIL, "zero_baseline is fail"),  # one refusal is already too many
        ("fail", 0.6, 1, Verdict.FAIL, "zero_baseline is fail"),  # no tolerance, whatever absolute says
        ("pass", None, 20, Verdict.PASS, "zero_baseline is pass"),
    ],
)
def test_zero_baseline_rules(
    rule: str, absolute: float | None, candidate_refusals: int, expected: Verdict, reason: str
) -> None:
    base = change(baseline(), refusal=False)
    cand = change(base, refusal=lambda _v, i: i < candidate_refusals)
    threshold = down(relative_margin=0.5, absolute_margin=absolute, zero_baseline=rule)
    r = row(compare(cand, base, policy(refusal_rate=threshold)), "refusal_rate")
    assert r.baseline == 0.0
    assert r.verdict is expected
    assert reason in r.reason


def test_zero_baseline_rule_is_unused_when_the_baseline_is_not_zero() -> None:
    base = change(baseline(), refusal=lambda _v, i: i < 20)  # baseline refusal rate 0.5
    cand = change(base, refusal=lambda _v, i: i < 21)  # one more refusal, within 0.5 * 0.5
    threshold = down(relative_margin=0.5, zero_baseline="fail")
    r = row(compare(cand, base, policy(refusal_rate=threshold)), "refusal_rate")
    assert r.verdict is Verdict.PASS and r.margin == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("factor", "expected"),
    [(1.0, Verdict.PASS), (1.3, Verdict.PASS), (0.5, Verdict.PASS), (2.0, Verdict.FAIL)],
)
def test_relative_margin_on_latency_p95(factor: float, expected: Verdict) -> None:
    base = baseline()
    cand = change(base, latency_ms=lambda v, _i: v * factor)
    r = row(compare(cand, base, policy(latency_p95_ms=down(relative_margin=0.5))), "latency_p95_ms")
    assert r.verdict is expected
    assert r.margin == pytest.approx(0.5 * r.baseline)


@pytest.mark.parametrize(
    ("threshold", "delta", "expected"),
    [
        (up(relative_margin=0.1), -0.04, Verdict.PASS),  # baseline 0.5: margin 0.05
        (up(relative_margin=0.1), -0.06, Verdict.FAIL),
        (up(relative_margin=0.1, absolute_margin=0.2), -0.06, Verdict.FAIL),  # both: the stricter one
        (up(relative_margin=0.5, absolute_margin=0.03), -0.06, Verdict.FAIL),
        (up(), -0.001, Verdict.FAIL),  # no margin at all: any consistent worsening fails
        (up(), 0.0, Verdict.PASS),
    ],
)
def test_relative_and_combined_margins(threshold: Threshold, delta: float, expected: Verdict) -> None:
    base = change(baseline(), answer_f1=0.5)
    r = row(compare(change(base, answer_f1=shift(delta)), base, policy(answer_f1=threshold)), "answer_f1")
    assert r.verdict is expected


@pytest.mark.parametrize(
    ("metric", "changes", "expected"),
    [
        ("latency_p95_ms", {"latency_ms": lambda v, _i: v * 0.5}, Verdict.PASS),  # faster is better
        ("latency_p95_ms", {"latency_ms": lambda v, _i: v * 1.5}, Verdict.FAIL),
        ("refusal_rate", {"refusal": False}, Verdict.PASS),
        ("refusal_rate", {"refusal": True}, Verdict.FAIL),
        ("cost", {"cost": lambda v, _i: v / 2}, Verdict.PASS),
        ("cost", {"cost": lambda v, _i: v * 1.2}, Verdict.FAIL),
        ("completion_tokens", {"completion_tokens": lambda v, _i: v + 50}, Verdict.FAIL),
    ],
)
def test_lower_is_better_metrics(metric: str, changes: dict[str, Any], expected: Verdict) -> None:
    base = baseline()
    margin = {"cost": 0.0001, "refusal_rate": 0.05}.get(metric, 10.0)
    report = compare(change(base, **changes), base, policy(**{metric: down(absolute_margin=margin)}))
    assert row(report, metric).verdict is expected


def test_judge_metric_is_gated_like_any_other() -> None:
    base = change(baseline(), judge=lambda _v, i: {"relevance": float(3 + i % 3)})
    worse = change(base, judge=lambda v, _i: {"relevance": v["relevance"] - 1})
    pol = policy(judge_relevance=up(absolute_margin=0.25))
    assert compare(base, base, pol).verdict is Verdict.PASS
    r = row(compare(worse, base, pol), "judge_relevance")
    assert r.verdict is Verdict.FAIL and r.diff == pytest.approx(-1.0)


def test_critical_metric_vetoes_and_is_listed_first() -> None:
    base = baseline()
    worse = change(base, answer_f1=shift(-0.2), groundedness=shift(-0.3))
    thresholds = {
        "groundedness": up(absolute_margin=0.05),
        "answer_f1": up(absolute_margin=0.03, critical=True),
        "answer_similarity": up(absolute_margin=0.03),
    }
    report = compare(worse, base, policy(**thresholds))
    assert report.verdict is Verdict.FAIL
    assert [r.name for r in report.failing()] == ["answer_f1", "groundedness"]
    assert [r.name for r in report.vetoes()] == ["answer_f1"]
    only_critical = compare(change(base, answer_f1=shift(-0.2)), base, policy(**thresholds))
    assert only_critical.verdict is Verdict.FAIL  # everything else passes; the critical metric decides


def test_inconclusive_overall_when_nothing_fails() -> None:
    base = change(baseline(), answer_f1=0.5)
    noisy = change(base, answer_f1=lambda v, i: v + (0.3 if i % 2 else -0.34))
    report = compare(noisy, base, policy(answer_f1=up(absolute_margin=0.03), groundedness=up()))
    assert report.verdict is Verdict.INCONCLUSIVE and not report.passed


def test_missing_and_failed_items_are_counted_and_left_out() -> None:
    base = baseline()
    cand = change(base[2:], answer_f1=shift(0.0))  # q000, q001 missing from the candidate
    cand.append(ItemResult(item_id="extra", answer_f1=0.0))  # only in the candidate
    cand = change(cand, error=lambda _v, i: "410 retired" if i in (0, 1) else None)  # q002, q003 failed
    base = change(base, error=lambda _v, i: "timeout" if i in (3, 4) else None)  # q003 again, q004
    report = compare(cand, base, policy(min_items=1, answer_f1=up(absolute_margin=0.03)))
    c = report.counts
    assert c.candidate_only == ["extra"]
    assert c.baseline_only == ["q000", "q001"]
    assert c.failed_candidate == ["q002", "q003"]
    assert c.failed_baseline == ["q003", "q004"]
    assert (c.missing, c.failed) == (3, 3)
    assert c.paired == N - 2 - 3 == report.rows[0].n
    assert report.verdict is Verdict.PASS  # the failed candidate items' zero F1 never entered the pairs


@pytest.mark.parametrize(
    ("failed_on_candidate", "margin", "expected"),
    [
        (0, 0.0, Verdict.PASS),
        (2, 0.0, Verdict.INCONCLUSIVE),  # 2 of 40 new failures: not a pass, too few to call significant
        (2, 0.15, Verdict.PASS),  # within a 15 % allowance even at the CI's bad end
        (12, 0.05, Verdict.FAIL),  # 30 % of the items fail on the candidate
    ],
)
def test_error_rate_counts_the_items_other_metrics_leave_out(
    failed_on_candidate: int, margin: float, expected: Verdict
) -> None:
    base = baseline()
    cand = change(base, error=lambda _v, i: "400 content_filter" if i < failed_on_candidate else None)
    report = compare(
        cand, base, policy(error_rate=down(absolute_margin=margin), answer_f1=up(absolute_margin=0.03))
    )
    r = row(report, "error_rate")
    assert (r.n, r.candidate) == (N, failed_on_candidate / N)
    assert r.verdict is expected
    assert row(report, "answer_f1").n == N - failed_on_candidate


def test_every_candidate_item_failing_is_inconclusive() -> None:
    base = baseline()
    report = compare(change(base, error="410 model retired"), base, policy(answer_f1=up(absolute_margin=0.1)))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert report.counts.paired == 0 and report.rows[0].n == 0
    assert "defined on none of the 0 paired items" in report.rows[0].reason


def test_metric_defined_on_no_item_is_inconclusive() -> None:
    base = change(baseline(), retrieval_hit=None)  # the dataset names no sources
    report = compare(base, base, policy(retrieval_hit_rate=up(absolute_margin=0.05)))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert "retrieval_hit_rate" in report.rows[0].reason


def test_same_seed_same_report_and_seed_is_recorded() -> None:
    base = baseline()
    noisy = change(base, answer_f1=lambda v, i: min(1.0, max(0.0, v + ((i * 37) % 11 - 5) / 50)))
    pol = policy(**ALL_METRICS)
    first, second = compare(noisy, base, pol, seed=11), compare(noisy, base, pol, seed=11)
    assert first.model_dump() == second.model_dump()
    assert first.seed == 11 and first.n_resamples == 2000 and first.confidence == 0.95
    other = compare(noisy, base, pol, seed=12)
    assert row(other, "answer_f1").ci_low != row(first, "answer_f1").ci_low
    assert row(other, "answer_f1").diff == row(first, "answer_f1").diff


def test_unknown_metric_names_it_and_the_known_ones() -> None:
    base = baseline()
    with pytest.raises(ConfigError) as info:
        compare(base, base, policy(answer_f2=up(), latency_p99_ms=down()))
    message = str(info.value)
    assert "answer_f2, latency_p99_ms" in message
    assert all(name in message for name in METRICS)


def test_flipped_direction_is_refused_with_the_fix() -> None:
    base = baseline()
    with pytest.raises(ConfigError) as info:
        compare(
            base, base, policy(answer_f1=up(), latency_p95_ms=up(relative_margin=0.5), groundedness=down())
        )
    assert str(info.value) == (
        "evaluation.metrics gives the wrong direction for latency_p95_ms, groundedness; "
        "set latency_p95_ms: greater_is_better: false, groundedness: greater_is_better: true"
    )


def test_check_policy_accepts_the_example_bundles() -> None:
    for app in ("support-chat", "claims-assistant", "hr-handbook"):
        check_policy(load_bundle(BUNDLES / app / "1.0.0").manifest.evaluation)
    with pytest.raises(ConfigError, match="unknown metric"):
        check_policy(policy(answer_f2=up()))


def test_duplicate_item_ids_are_refused() -> None:
    base = baseline()
    with pytest.raises(DataValidationError, match="'q000' appears twice in the candidate"):
        compare([*base, base[0]], base, policy(answer_f1=up()))


def test_bad_resample_count_is_refused() -> None:
    base = baseline()
    with pytest.raises(ConfigError, match="n_resamples"):
        compare(base, base, policy(answer_f1=up()), n_resamples=0)
