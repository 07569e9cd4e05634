"""Properties the gate and the metrics keep for any input (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelshift.bundle.manifest import Evaluation, Threshold
from modelshift.evaluation.gate import compare
from modelshift.evaluation.metrics import answer_f1, refusal
from modelshift.evaluation.report import Verdict
from modelshift.evaluation.results import ItemResult
from modelshift.evaluation.stats import min_pairs_for

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
POLICY_METRICS = {
    "answer_f1": Threshold(greater_is_better=True, absolute_margin=0.03),
    "latency_p95_ms": Threshold(greater_is_better=False, relative_margin=0.2),
}


def items(f1: list[float], latency: list[float]) -> list[ItemResult]:
    return [
        ItemResult(item_id=f"q{i}", answer_f1=a, latency_ms=b)
        for i, (a, b) in enumerate(zip(f1, latency, strict=False))
    ]


@settings(max_examples=40, deadline=None)
@given(
    f1=st.lists(scores, min_size=1, max_size=60),
    latency=st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=60, max_size=60),
    min_items=st.integers(min_value=1, max_value=40),
)
def test_a_run_compared_with_itself_never_fails_and_passes_with_enough_items(
    f1: list[float], latency: list[float], min_items: int
) -> None:
    run = items(f1, latency)
    pol = Evaluation(dataset="g.jsonl", min_items=min_items, metrics=POLICY_METRICS)
    report = compare(run, run, pol, n_resamples=200)
    enough = len(run) >= max(min_items, min_pairs_for(pol.confidence))
    assert report.verdict is (Verdict.PASS if enough else Verdict.INCONCLUSIVE)


@settings(max_examples=40, deadline=None)
@given(
    base=st.lists(scores, min_size=1, max_size=25),
    cand=st.lists(scores, min_size=1, max_size=25),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_too_few_items_is_never_a_pass(base: list[float], cand: list[float], seed: int) -> None:
    latency = [100.0] * 25
    pol = Evaluation(dataset="g.jsonl", min_items=26, metrics=POLICY_METRICS)
    report = compare(items(cand, latency), items(base, latency), pol, seed=seed, n_resamples=100)
    assert report.verdict is Verdict.INCONCLUSIVE
    assert all(r.verdict is Verdict.INCONCLUSIVE for r in report.rows)


@settings(max_examples=40, deadline=None)
@given(
    base=st.lists(scores, min_size=30, max_size=30),
    drop=st.floats(min_value=0.0, max_value=1.0),
)
def test_a_uniformly_better_candidate_never_fails(base: list[float], drop: float) -> None:
    better = [min(1.0, b + drop) for b in base]
    pol = Evaluation(dataset="g.jsonl", min_items=30, metrics={"answer_f1": POLICY_METRICS["answer_f1"]})
    report = compare(items(better, [1.0] * 30), items(base, [1.0] * 30), pol, n_resamples=200)
    assert report.verdict is Verdict.PASS


@given(st.text(max_size=80), st.text(max_size=80))
def test_f1_is_symmetric_and_bounded(a: str, b: str) -> None:
    assert 0.0 <= answer_f1(a, b) <= 1.0
    assert answer_f1(a, b) == answer_f1(b, a)


@given(st.text(max_size=200))
def test_refusal_never_raises(text: str) -> None:
    assert isinstance(refusal(text), bool)
