"""Run one bundle over a golden dataset, as fast as the deployment's rate limit allows and no faster.

Every item goes through :class:`~modelshift.orchestration.BundleRuntime` (the gateway's code path). Before a
request is sent its cost (prompt tokens by the model's tokenizer + ``max_tokens``) is reserved in the
deployment's :class:`~modelshift.evaluation.ratelimit.RateLimiter`; afterwards the reservation is corrected
from the usage and ``x-ratelimit-*`` headers. Concurrency is whatever the limiter admits (bounded by
``max_concurrency`` sockets), so a big deployment is driven hard and a small one is not flooded.

Failures, per item:
- 429: the limiter pauses every sender for the platform's ``retry-after``; the item is sent again. A 429
  is not an attempt: the platform did not run the request.
- transient (5xx, timeouts, resets): retried with jittered exponential backoff up to
  ``max_attempts``; then recorded as the item's error.
- permanent (400, 404, 410, ...): recorded as the item's error at once.

Each item produces exactly one :class:`ItemOutcome`, stored at its dataset position, so no item is dropped or
counted twice whatever the retries. The adapter must make ONE attempt per call
(:data:`~modelshift.orchestration.SINGLE_ATTEMPT`), otherwise 429s would be retried twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelshift.bundle import Bundle
from modelshift.errors import ConfigError, ModelshiftError, PlatformError, ThrottledError
from modelshift.evaluation.dataset import Dataset, DatasetItem
from modelshift.evaluation.pricing import PriceTable
from modelshift.evaluation.ratelimit import (
    RateLimiter,
    Reservation,
    estimate_request_tokens,
    tokenizer_for_model,
)
from modelshift.evaluation.results import ItemResult, score_item
from modelshift.orchestration.runtime import Answer, BundleRuntime, Passage

#: bump when what an item's outcome means changes; it is part of the baseline cache key
RUNNER_VERSION = "runner-1"


@dataclass(frozen=True)
class ItemOutcome:
    """What one dataset item produced on one bundle: the answer and its evidence, or the error."""

    item_id: str
    question: str
    reference: str
    sources: tuple[str, ...]
    answer: str | None
    contexts: tuple[Passage, ...] = ()
    latency_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    throttled: int = 0
    error: str | None = None
    error_kind: str | None = None
    #: LLM-judge scores by evaluator name (filled in by :mod:`modelshift.evaluation.judge`)
    judge: Mapping[str, float] = field(default_factory=dict)
    #: why the judge gave no score for an evaluator on this item
    judge_errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the item was answered."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """A JSON object (the store keeps outcomes in this form)."""
        return {
            "item_id": self.item_id,
            "question": self.question,
            "reference": self.reference,
            "sources": list(self.sources),
            "answer": self.answer,
            "contexts": [{"document": p.document, "text": p.text} for p in self.contexts],
            "latency_ms": self.latency_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "attempts": self.attempts,
            "throttled": self.throttled,
            "error": self.error,
            "error_kind": self.error_kind,
            "judge": dict(self.judge),
            "judge_errors": dict(self.judge_errors),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemOutcome:
        """Inverse of :meth:`to_json`."""
        return cls(
            item_id=str(data["item_id"]),
            question=str(data["question"]),
            reference=str(data["reference"]),
            sources=tuple(str(s) for s in data.get("sources", ())),
            answer=data.get("answer"),
            contexts=tuple(Passage(str(c["document"]), str(c["text"])) for c in data.get("contexts", ())),
            latency_ms=data.get("latency_ms"),
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            attempts=int(data.get("attempts", 0)),
            throttled=int(data.get("throttled", 0)),
            error=data.get("error"),
            error_kind=data.get("error_kind"),
            judge={str(k): float(v) for k, v in (data.get("judge") or {}).items()},
            judge_errors={str(k): str(v) for k, v in (data.get("judge_errors") or {}).items()},
        )


@dataclass(frozen=True)
class Progress:
    """Where a run is: items finished (answered or failed) out of the total."""

    bundle: str
    done: int
    total: int
    failed: int
    throttled: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class RunStats:
    """How a run went: requests sent, tokens charged, 429s and retries, wall time."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    tokens_charged: int = 0
    wall_seconds: float = 0.0


@dataclass(frozen=True)
class BundleRun:
    """A bundle's outcomes on a dataset, in dataset order; ``cached`` when no request was made for it."""

    bundle_digest: str
    dataset_digest: str
    evaluator_version: str
    outcomes: tuple[ItemOutcome, ...]
    stats: RunStats = field(default_factory=RunStats)
    cached: bool = False

    @property
    def failed(self) -> tuple[ItemOutcome, ...]:
        """Items that ended with an error."""
        return tuple(o for o in self.outcomes if not o.ok)


@dataclass(frozen=True)
class RunnerConfig:
    """Retry and concurrency knobs (the defaults suit Azure OpenAI)."""

    max_concurrency: int = 32
    #: attempts per item for transient errors (429s do not count)
    max_attempts: int = 5
    #: 429s one item may see before it is recorded as failed (a guard against a stuck deployment)
    max_throttled: int = 200
    base_delay: float = 0.5
    max_delay: float = 20.0
    #: wait after a 429 that named no retry-after
    throttle_fallback: float = 1.0
    seed: int = 0


class _Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.throttled = 0
        self.retries = 0
        self.tokens = 0
        self.done = 0
        self.failed = 0


class Runner:
    """Runs bundles over datasets against one deployment's limiter (one Runner per deployment)."""

    def __init__(
        self,
        limiter: RateLimiter | None = None,
        *,
        config: RunnerConfig | None = None,
        progress: ProgressCallback | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter if limiter is not None else RateLimiter(monotonic=monotonic, sleep=sleep)
        self.config = config or RunnerConfig()
        self.progress = progress
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = random.Random(self.config.seed)

    async def run(self, runtime: BundleRuntime, dataset: Dataset) -> BundleRun:
        """Every item of ``dataset`` through ``runtime``; returns one outcome per item, in order."""
        started = self._monotonic()
        counters = _Counters()
        semaphore = asyncio.Semaphore(self.config.max_concurrency)
        label = f"{runtime.bundle.app}@{runtime.bundle.version}"

        async def one(item: DatasetItem) -> ItemOutcome:
            async with semaphore:
                outcome = await self._item(runtime, item, counters)
            counters.done += 1
            counters.failed += 0 if outcome.ok else 1
            if self.progress is not None:
                self.progress(
                    Progress(label, counters.done, len(dataset), counters.failed, counters.throttled)
                )
            return outcome

        outcomes = await asyncio.gather(*(one(item) for item in dataset.items))
        stats = RunStats(
            requests=counters.requests,
            throttled=counters.throttled,
            retries=counters.retries,
            tokens_charged=counters.tokens,
            wall_seconds=self._monotonic() - started,
        )
        return BundleRun(runtime.bundle.digest, dataset.digest, RUNNER_VERSION, tuple(outcomes), stats)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.config.max_delay, self.config.base_delay * 2 ** (attempt - 1))
        return float(ceiling * (0.5 + 0.5 * self._rng.random()))

    async def _item(self, runtime: BundleRuntime, item: DatasetItem, counters: _Counters) -> ItemOutcome:
        try:
            prepared = runtime.prepare(item.question)
        except ModelshiftError as exc:
            return self._failed(item, exc, 0, 0, ())
        estimate = estimate_request_tokens(
            prepared.messages, tokenizer_for_model(runtime.model_name), runtime.max_tokens
        )
        attempts = 0
        throttled = 0
        while True:
            reservation = await self.limiter.acquire(estimate)
            counters.requests += 1
            try:
                answer = await runtime.complete(prepared)
            except ThrottledError as exc:
                self.limiter.release(reservation)
                self.limiter.throttled(exc.retry_after, self.config.throttle_fallback)
                counters.throttled += 1
                throttled += 1
                if throttled < self.config.max_throttled:
                    continue
                return self._failed(item, exc, attempts + 1, throttled, prepared.contexts)
            except ModelshiftError as exc:
                attempts += 1
                self._settle_failed(reservation, exc)
                if exc.retryable and attempts < self.config.max_attempts:
                    counters.retries += 1
                    await self._sleep(self._backoff(attempts))
                    continue
                return self._failed(item, exc, attempts, throttled, prepared.contexts)
            attempts += 1
            charged = answer.usage.prompt_tokens + runtime.max_tokens
            self.limiter.settle(reservation, charged, answer.rate_limit)
            counters.tokens += charged
            return self._answered(item, answer, attempts, throttled)

    def _settle_failed(self, reservation: Reservation, exc: ModelshiftError) -> None:
        # A server error after admission was charged by the platform; a refusal before admission (4xx,
        # connection failures) was not. Counting the 5xx keeps the limiter from over-admitting.
        status = exc.status_code if isinstance(exc, PlatformError) else None
        if status is not None and status >= 500:
            self.limiter.settle(reservation, reservation.tokens)
        else:
            self.limiter.release(reservation)

    @staticmethod
    def _answered(item: DatasetItem, answer: Answer, attempts: int, throttled: int) -> ItemOutcome:
        return ItemOutcome(
            item_id=item.id,
            question=item.question,
            reference=item.answer,
            sources=item.sources,
            answer=answer.content,
            contexts=answer.contexts,
            latency_ms=answer.latency_ms,
            prompt_tokens=answer.usage.prompt_tokens,
            completion_tokens=answer.usage.completion_tokens,
            attempts=attempts,
            throttled=throttled,
        )

    @staticmethod
    def _failed(
        item: DatasetItem,
        exc: ModelshiftError,
        attempts: int,
        throttled: int,
        contexts: tuple[Passage, ...],
    ) -> ItemOutcome:
        status = exc.status_code if isinstance(exc, PlatformError) else None
        return ItemOutcome(
            item_id=item.id,
            question=item.question,
            reference=item.answer,
            sources=item.sources,
            answer=None,
            contexts=contexts,
            attempts=attempts,
            throttled=throttled,
            error=str(exc),
            error_kind=f"{type(exc).__name__}" + (f" {status}" if status is not None else ""),
        )


def _schema(bundle: Bundle) -> dict[str, Any] | None:
    if bundle.manifest.evaluation.json_schema is None:
        return None
    key = "evaluation.json_schema"
    try:
        schema = json.loads(bundle.read_bytes(key))
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"{bundle.yaml_path}: evaluation.json_schema cannot be read as JSON ({exc}); fix the schema file"
        ) from None
    return schema if isinstance(schema, dict) else None


def score_run(run: BundleRun, bundle: Bundle, prices: PriceTable | None = None) -> list[ItemResult]:
    """Per-item metrics of ``run`` (``bundle`` gives the schema, whether it retrieves, and its price)."""
    if run.bundle_digest != bundle.digest:
        raise ConfigError(
            f"run of {run.bundle_digest} cannot be scored as bundle {bundle.app}@{bundle.version} "
            f"({bundle.digest}); score a run with the bundle it was made with"
        )
    model = bundle.manifest.model
    price = prices.lookup(model.name, model.version) if prices is not None else None
    schema = _schema(bundle)
    retrieves = bundle.manifest.retrieval is not None
    return [
        score_item(
            o.item_id,
            o.answer,
            o.reference,
            passages=list(o.contexts) if retrieves else None,
            expected_sources=o.sources,
            schema=schema,
            latency_ms=o.latency_ms,
            prompt_tokens=o.prompt_tokens,
            completion_tokens=o.completion_tokens,
            price=price,
            judge=dict(o.judge),
            judge_errors=dict(o.judge_errors),
            error=o.error,
        )
        for o in run.outcomes
    ]
