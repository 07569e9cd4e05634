"""ItemResult validation, scoring one answer, the metric registry and aggregation over a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from modelshift.evaluation.pricing import PriceTable
from modelshift.evaluation.results import METRICS, ItemResult, aggregate, score_item


def item(item_id: str, **values: Any) -> ItemResult:
    return ItemResult(item_id=item_id, **values)


@pytest.mark.parametrize(
    "values",
    [
        {"answer_f1": 1.01},
        {"answer_f1": -0.01},
        {"answer_similarity": -1.5},
        {"groundedness": 2.0},
        {"latency_ms": -1.0},
        {"prompt_tokens": -1},
        {"cost": -0.5},
        {"answer_f1": float("nan")},
        {"unknown_metric": 1.0},
        {"judge": {"relevance": -1.0}},
    ],
)
def test_item_result_rejects_impossible_values(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        item("q1", **values)


@pytest.mark.parametrize(
    ("values", "field", "expected"),
    [
        ({"answer_f1": 0.5}, "answer_f1", 0.5),
        ({"retrieval_hit": True}, "retrieval_hit", 1.0),
        ({"refusal": False}, "refusal", 0.0),
        ({}, "groundedness", None),
        ({"answer_f1": 0.5, "error": "410 model retired"}, "answer_f1", None),  # failed: nothing counts
        ({"prompt_tokens": 12}, "prompt_tokens", 12.0),
        ({"judge": {"relevance": 4.0}}, "judge:relevance", 4.0),
        ({"judge": {"relevance": 4.0}}, "judge:coherence", None),  # that evaluator did not run
        ({"judge": {"relevance": 4.0}, "error": "timeout"}, "judge:relevance", None),
        ({"error": "timeout"}, "error", 1.0),  # error_rate counts exactly the failed items
        ({}, "error", 0.0),
    ],
)
def test_item_value(values: dict[str, Any], field: str, expected: float | None) -> None:
    assert item("q1", **values).value(field) == expected


def test_registry_covers_the_issue_metrics_with_directions() -> None:
    directions = {name: spec.greater_is_better for name, spec in METRICS.items()}
    assert directions == {
        "answer_f1": True,
        "answer_similarity": True,
        "groundedness": True,
        "retrieval_hit_rate": True,
        "format_valid_rate": True,
        "refusal_rate": False,
        "latency_mean_ms": False,
        "latency_p50_ms": False,
        "latency_p95_ms": False,
        "prompt_tokens": False,
        "completion_tokens": False,
        "cost": False,
        "error_rate": False,
        "judge_groundedness": True,
        "judge_relevance": True,
        "judge_coherence": True,
        "judge_fluency": True,
        "judge_similarity": True,
    }
    assert not METRICS["latency_p95_ms"].per_item and not METRICS["latency_p50_ms"].per_item
    assert all(METRICS[name].per_item for name in ("answer_f1", "refusal_rate", "cost"))
    for spec in METRICS.values():  # every spec reads a real ItemResult field (or a judge score)
        assert spec.field in ItemResult.model_fields or spec.field.startswith("judge:")
    assert METRICS["error_rate"].field == "error"


def test_aggregate_means_rates_quantiles_and_totals() -> None:
    results = [
        item("q1", answer_f1=1.0, retrieval_hit=True, refusal=False, latency_ms=100, prompt_tokens=10,
             completion_tokens=5, cost=0.01),
        item("q2", answer_f1=0.5, retrieval_hit=None, refusal=True, latency_ms=200, prompt_tokens=20,
             completion_tokens=5, cost=0.02),
        item("q3", answer_f1=0.0, retrieval_hit=False, refusal=False, latency_ms=300, prompt_tokens=30,
             completion_tokens=10),
        item("q4", answer_f1=1.0, latency_ms=10_000, prompt_tokens=999, error="400 content_filter"),
    ]  # fmt: skip
    agg = aggregate(results)
    assert (agg.items, agg.failed) == (4, 1)
    assert agg.values["answer_f1"] == pytest.approx(0.5)  # the failed item does not count
    assert agg.values["retrieval_hit_rate"] == pytest.approx(0.5)  # over the 2 items that name sources
    assert agg.defined["retrieval_hit_rate"] == 2
    assert agg.values["refusal_rate"] == pytest.approx(1 / 3)
    assert agg.values["latency_p50_ms"] == pytest.approx(200)
    assert agg.values["latency_p95_ms"] == pytest.approx(290)  # linear interpolation between 200 and 300
    assert agg.values["latency_mean_ms"] == pytest.approx(200)
    assert agg.values["groundedness"] is None and agg.defined["groundedness"] == 0
    assert (agg.total_prompt_tokens, agg.total_completion_tokens) == (60, 20)
    assert agg.total_cost == pytest.approx(0.03)
    assert agg.values["cost"] == pytest.approx(0.015)
    assert agg.values["judge_relevance"] is None  # no judge configured
    assert agg.values["error_rate"] == pytest.approx(0.25) and agg.defined["error_rate"] == 4


def test_aggregate_judge_scores() -> None:
    results = [item("q1", judge={"relevance": 5.0}), item("q2", judge={"relevance": 3.0, "fluency": 4.0})]
    agg = aggregate(results)
    assert agg.values["judge_relevance"] == 4.0 and agg.defined["judge_relevance"] == 2
    assert agg.values["judge_fluency"] == 4.0 and agg.defined["judge_fluency"] == 1


@pytest.mark.parametrize(
    ("results", "error_rate"),
    [([], None), ([item("q1", error="timeout")], 1.0), ([item("q1"), item("q2")], 0.0)],
    ids=["empty", "all-failed", "nothing-measured"],
)
def test_aggregate_without_values(results: list[ItemResult], error_rate: float | None) -> None:
    agg = aggregate(results)
    assert all(v is None for k, v in agg.values.items() if k != "error_rate")
    assert agg.values["error_rate"] == error_rate
    assert agg.total_cost is None
    assert agg.total_prompt_tokens == 0


def test_item_result_round_trips_as_json() -> None:
    original = item("q1", answer_f1=0.25, retrieval_hit=True, latency_ms=12.5, cost=0.001)
    assert ItemResult.model_validate_json(original.model_dump_json()) == original


@dataclass(frozen=True)
class Chunk:
    document: str
    text: str


CHUNKS = [
    Chunk(
        "corpus/plans-and-pricing.md", "Paying annually gives a 15 percent discount over monthly payments."
    ),
    Chunk("corpus/restore.md", "Restore a deleted file from the web console within 30 days."),
]


def test_score_item_fills_every_metric() -> None:
    result = score_item(
        "q003",
        "Paying annually gives a 15 percent discount.",
        "Paying annually gives a 15 percent discount compared with twelve monthly payments.",
        passages=CHUNKS,
        expected_sources=["plans-and-pricing.md"],
        latency_ms=120.5,
        prompt_tokens=1000,
        completion_tokens=100,
        price=PriceTable().lookup("gpt-4o", "2024-11-20"),
        judge={"relevance": 5.0},
    )
    assert result.answer_f1 is not None and 0.5 < result.answer_f1 < 1
    assert result.answer_similarity is not None and result.answer_similarity > 0.5
    assert (result.groundedness, result.retrieval_hit, result.refusal) == (1.0, True, False)
    assert result.format_valid is None  # no schema
    assert result.cost == pytest.approx(0.0025 + 0.001)
    assert result.latency_ms == 120.5 and not result.failed
    assert result.value("judge:relevance") == 5.0


@pytest.mark.parametrize(
    ("kwargs", "field", "expected"),
    [
        ({"passages": None}, "groundedness", None),  # no retrieval in the bundle
        ({"passages": None}, "retrieval_hit", None),
        ({"passages": CHUNKS, "expected_sources": []}, "retrieval_hit", None),  # item names no source
        ({"passages": CHUNKS, "expected_sources": ["billing.md"]}, "retrieval_hit", False),
        ({"passages": [], "embed": None}, "answer_similarity", None),
        ({"passages": [], "schema": {"type": "object"}}, "format_valid", False),
        ({"passages": [], "prompt_tokens": 5}, "cost", None),  # no price
    ],
)
def test_score_item_not_applicable_rows(kwargs: dict[str, Any], field: str, expected: object) -> None:
    result = score_item("q1", "Annual payment saves 15 percent.", "15 percent off annually", **kwargs)
    assert getattr(result, field) == expected


@pytest.mark.parametrize(
    ("answer", "error", "expected"),
    [(None, None, "no answer was produced"), ("partial", "410 model retired", "410 model retired")],
)
def test_score_item_failed(answer: str | None, error: str | None, expected: str) -> None:
    result = score_item("q1", answer, "reference", passages=CHUNKS, error=error, latency_ms=5.0)
    assert result.failed and result.error == expected
    assert result.answer_f1 is None and result.latency_ms is None
