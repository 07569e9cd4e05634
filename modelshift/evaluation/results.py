"""Per-item results, the registry of gate metrics, and their aggregation over a run.

An :class:`ItemResult` holds what one golden item scored on one bundle (None where a metric does not apply,
``error`` when the item failed permanently). :data:`METRICS` names every metric a bundle's evaluation policy
may gate on, how it is computed from the items (a mean of a per-item value, or a quantile over items) and
which direction is better by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelshift.bundle.manifest import JUDGE_METRICS
from modelshift.evaluation import metrics
from modelshift.evaluation.pricing import ModelPrice

#: Fields named ``judge:<evaluator>`` read :attr:`ItemResult.judge` instead of an attribute.
JUDGE_PREFIX = "judge:"
#: The azure-ai-evaluation quality evaluators a pinned judge may score (each 1-5, higher is better).
JUDGE_EVALUATORS: tuple[str, ...] = JUDGE_METRICS


class ItemResult(BaseModel):
    """One golden item's metrics on one bundle; None = not applicable; ``error`` = failed permanently."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    item_id: str = Field(min_length=1)
    answer_f1: float | None = Field(default=None, ge=0, le=1)
    answer_similarity: float | None = Field(default=None, ge=-1, le=1)
    groundedness: float | None = Field(default=None, ge=0, le=1)
    retrieval_hit: bool | None = None
    format_valid: bool | None = None
    refusal: bool | None = None
    latency_ms: float | None = Field(default=None, ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)
    #: LLM-judge scores by evaluator name (azure-ai-evaluation's 1-5 scales), when a judge is configured
    judge: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    #: why the judge gave no score for an evaluator on this item (the item's other metrics still count)
    judge_errors: dict[str, str] = Field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> bool:
        """True when the item failed permanently (its metrics are not used)."""
        return self.error is not None

    def value(self, field: str) -> float | None:
        """The per-item value of ``field`` as a float (booleans as 0/1), None when undefined or failed.

        The pseudo-field ``error`` is 1.0 for a failed item and 0.0 otherwise (the ``error_rate`` metric).
        """
        if field == "error":
            return 1.0 if self.failed else 0.0
        if self.failed:
            return None
        if field.startswith(JUDGE_PREFIX):
            return self.judge.get(field.removeprefix(JUDGE_PREFIX))
        raw = getattr(self, field)
        if raw is None:
            return None
        return float(raw)


@dataclass(frozen=True)
class MetricSpec:
    """A gate metric: the per-item field it reads, how items combine, and the default good direction."""

    name: str
    field: str
    kind: Literal["mean", "quantile"]
    greater_is_better: bool
    description: str
    quantile: float | None = None
    unit: str = ""

    @property
    def per_item(self) -> bool:
        """True when the metric is a mean of per-item scores (paired per item); False for quantiles."""
        return self.kind == "mean"

    def reduce(self, values: Sequence[float]) -> float | None:
        """The metric over ``values`` (the defined per-item values), None when there are none."""
        if not values:
            return None
        array = np.asarray(values, dtype=float)
        if self.kind == "mean":
            return float(array.mean())
        assert self.quantile is not None
        # numpy's default (linear interpolation) quantile: p95 of 20 items lies between the two slowest.
        return float(np.quantile(array, self.quantile))


def _spec(
    name: str, field: str, kind: Literal["mean", "quantile"], gib: bool, desc: str, q: float | None = None
) -> MetricSpec:
    unit = "ms" if field == "latency_ms" else ""
    return MetricSpec(name, field, kind, gib, desc, q, unit)


#: Every metric an evaluation policy may name, by name.
METRICS: dict[str, MetricSpec] = {
    s.name: s
    for s in (
        _spec("answer_f1", "answer_f1", "mean", True, "mean SQuAD token F1 against the reference answer"),
        _spec("answer_similarity", "answer_similarity", "mean", True, "mean embedding cosine vs reference"),
        _spec("groundedness", "groundedness", "mean", True, "mean share of sentences the context supports"),
        _spec("retrieval_hit_rate", "retrieval_hit", "mean", True, "share of items retrieving a source"),
        _spec("format_valid_rate", "format_valid", "mean", True, "share of answers valid for the schema"),
        _spec("refusal_rate", "refusal", "mean", False, "share of answers that refuse / don't know"),
        _spec("latency_mean_ms", "latency_ms", "mean", False, "mean latency per item"),
        _spec("latency_p50_ms", "latency_ms", "quantile", False, "median latency over items", 0.5),
        _spec("latency_p95_ms", "latency_ms", "quantile", False, "95th percentile latency", 0.95),
        _spec("prompt_tokens", "prompt_tokens", "mean", False, "mean prompt tokens per item"),
        _spec("completion_tokens", "completion_tokens", "mean", False, "mean completion tokens per item"),
        _spec("cost", "cost", "mean", False, "mean cost per item (price table)"),
        # over every item both sides ran, failed ones included: the failures are what it measures
        _spec("error_rate", "error", "mean", False, "share of items that failed permanently"),
        *(
            _spec(f"judge_{e}", f"{JUDGE_PREFIX}{e}", "mean", True, f"mean LLM-judge {e} score (1-5)")
            for e in JUDGE_EVALUATORS
        ),
    )
}


class Aggregate(BaseModel):
    """A run's metrics over its items: each value, on how many items it was defined, and the totals."""

    model_config = ConfigDict(frozen=True)

    items: int
    failed: int
    values: dict[str, float | None]
    defined: dict[str, int]
    total_prompt_tokens: int
    total_completion_tokens: int
    total_cost: float | None


def aggregate(results: Sequence[ItemResult]) -> Aggregate:
    """Every :data:`METRICS` entry over the non-failed items where it is defined, and token/cost totals.

    ``total_cost`` is None when no item has a cost (an unpriced model), else the sum over items that do.
    """
    values: dict[str, float | None] = {}
    defined: dict[str, int] = {}
    for name, spec in METRICS.items():
        per_item = [v for v in (r.value(spec.field) for r in results) if v is not None]
        values[name] = spec.reduce(per_item)
        defined[name] = len(per_item)
    ok = [r for r in results if not r.failed]
    costs = [r.cost for r in ok if r.cost is not None]
    return Aggregate(
        items=len(results),
        failed=len(results) - len(ok),
        values=values,
        defined=defined,
        total_prompt_tokens=sum(r.prompt_tokens or 0 for r in ok),
        total_completion_tokens=sum(r.completion_tokens or 0 for r in ok),
        total_cost=sum(costs) if costs else None,
    )


class PassageLike(Protocol):
    """A retrieved chunk as it went into the prompt (``orchestration.runtime.Passage`` fits)."""

    @property
    def document(self) -> str:
        """The chunk's document path or name."""

    @property
    def text(self) -> str:
        """The chunk's text."""


def score_item(
    item_id: str,
    answer: str | None,
    reference: str,
    *,
    passages: Sequence[PassageLike] | None,
    expected_sources: Sequence[str] = (),
    schema: dict[str, Any] | None = None,
    embed: Callable[[str], Sequence[float]] | None = metrics.local_embedding,
    latency_ms: float | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    price: ModelPrice | None = None,
    judge: dict[str, float] | None = None,
    judge_errors: dict[str, str] | None = None,
    error: str | None = None,
) -> ItemResult:
    """Every per-item metric of one answer, as an :class:`ItemResult`.

    ``passages`` is what was retrieved (None when the bundle retrieves nothing: groundedness and the hit
    are then None). ``embed`` turns text into a vector for ``answer_similarity`` (the local hashed embedding
    by default; pass the deployment's embeddings, or None to leave the metric out). ``price`` gives ``cost``;
    ``judge`` carries LLM-judge scores by evaluator name, ``judge_errors`` why an evaluator gave none.
    An ``error`` (or no answer at all) makes a failed item that carries only its id and the error.
    """
    if error is not None or answer is None:
        return ItemResult(item_id=item_id, error=error or "no answer was produced")
    similarity = None
    if embed is not None:
        similarity = metrics.answer_similarity(embed(answer), embed(reference))
    texts = None if passages is None else [p.text for p in passages]
    hit = (
        None if passages is None else metrics.retrieval_hit([p.document for p in passages], expected_sources)
    )
    cost = None
    if price is not None and prompt_tokens is not None and completion_tokens is not None:
        cost = price.cost(prompt_tokens, completion_tokens)
    return ItemResult(
        item_id=item_id,
        answer_f1=metrics.answer_f1(answer, reference),
        answer_similarity=similarity,
        groundedness=metrics.groundedness(answer, texts),
        retrieval_hit=hit,
        format_valid=metrics.format_valid(answer, schema),
        refusal=metrics.refusal(answer),
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        judge=dict(judge or {}),
        judge_errors=dict(judge_errors or {}),
    )
