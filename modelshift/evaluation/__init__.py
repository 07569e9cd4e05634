"""Evaluation: per-item metrics, their aggregation, and the statistical gate candidate vs baseline.

The pure parts are re-exported here: metric functions (:mod:`.metrics`), :class:`ItemResult` and the
metric registry (:mod:`.results`), prices (:mod:`.pricing`), statistics (:mod:`.stats`) and the gate
(:func:`compare` -> :class:`GateReport`).
"""

from __future__ import annotations

from modelshift.evaluation.gate import GatePolicy, check_policy, compare
from modelshift.evaluation.metrics import (
    REFUSAL_PATTERNS,
    SUPPORT_THRESHOLD,
    answer_f1,
    answer_similarity,
    format_valid,
    groundedness,
    local_embedding,
    normalize_answer,
    refusal,
    retrieval_hit,
)
from modelshift.evaluation.pricing import (
    DEFAULT_PRICES,
    ModelPrice,
    PriceTable,
    load_price_table,
    price_table_from_settings,
)
from modelshift.evaluation.report import GateCounts, GateReport, MetricRow, Verdict
from modelshift.evaluation.results import (
    JUDGE_EVALUATORS,
    METRICS,
    Aggregate,
    ItemResult,
    MetricSpec,
    PassageLike,
    aggregate,
    score_item,
)
from modelshift.evaluation.stats import mann_whitney_u, two_proportion_z

__all__ = [
    "DEFAULT_PRICES",
    "JUDGE_EVALUATORS",
    "METRICS",
    "REFUSAL_PATTERNS",
    "SUPPORT_THRESHOLD",
    "Aggregate",
    "GateCounts",
    "GatePolicy",
    "GateReport",
    "ItemResult",
    "MetricRow",
    "MetricSpec",
    "ModelPrice",
    "PassageLike",
    "PriceTable",
    "Verdict",
    "aggregate",
    "answer_f1",
    "answer_similarity",
    "check_policy",
    "compare",
    "format_valid",
    "groundedness",
    "load_price_table",
    "local_embedding",
    "mann_whitney_u",
    "normalize_answer",
    "price_table_from_settings",
    "refusal",
    "retrieval_hit",
    "score_item",
    "two_proportion_z",
]
