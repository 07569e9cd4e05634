"""Run one bundle over a golden dataset, as fast as the deployment's rate limit allows and no faster.

Every item goes through :class:`~modelshift.orchestration.BundleRuntime` (the gateway's code path). Before a
request is sent its cost (prompt tokens by the model's tokenizer + ``max_tokens``) is reserved in the
deployment's :class:`~modelshift.evaluation.ratelimit.RateLimiter`; afterwards the reservation is corrected
from the usage and ``x-ratelimit-*`` headers. Concurrency is not a fixed number: :class:`Concurrency`
derives it from the limits and the observed latency (Little's law), so a big deployment with slow answers
is driven as hard as its quota allows and a small one is not flooded (bounded by ``max_concurrency``).

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
import math
import random
import time
from collections import deque
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
    #: the most requests that were on the wire at once (what the adaptive concurrency reached)
    peak_concurrency: int = 0


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

    #: the most items in flight whatever the limits allow (httpx's default pool holds 100 connections)
    max_concurrency: int = 100
    #: the fewest items in flight the runner keeps going (while any are left)
    min_concurrency: int = 2
    #: concurrency to start with when the deployment's limits are unknown (then grown while no 429 comes)
    initial_concurrency: int = 8
    #: latency assumed until the first answers are timed (seconds)
    initial_latency: float = 1.0
    #: Little's law headroom: in flight = admitted rate x latency x this (latency varies item to item)
    headroom: float = 1.25
    #: attempts per item for transient errors (429s do not count)
    max_attempts: int = 5
    #: 429s one item may see before it is recorded as failed (a guard against a stuck deployment)
    max_throttled: int = 200
    base_delay: float = 0.5
    max_delay: float = 20.0
    #: wait after a 429 that named no retry-after
    throttle_fallback: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.min_concurrency <= self.max_concurrency:
            raise ConfigError(
                f"runner concurrency bounds must satisfy 1 <= min_concurrency <= max_concurrency (got "
                f"min_concurrency={self.min_concurrency}, max_concurrency={self.max_concurrency})"
            )
        if self.initial_latency <= 0 or self.headroom < 1:
            raise ConfigError(
                f"runner initial_latency must be > 0 and headroom >= 1 (got initial_latency="
                f"{self.initial_latency}, headroom={self.headroom})"
            )


#: latencies kept for the estimate (the most recent ones)
_LATENCY_SAMPLES = 64
#: the latency percentile Little's law is applied to (a high one: slow answers hold their slot longer)
_LATENCY_QUANTILE = 0.9
#: how often the runner looks again at the limiter when no answer arrived (its buckets refill with time)
_DISPATCH_TICK_S = 0.1


class Concurrency:
    """How many items the runner keeps in flight; no fixed number, so no tuning per deployment.

    With known limits it is Little's law: in flight = admitted rate x latency. The rate is what the limits
    admit in the long run for requests of the average estimated cost (``RateLimiter.admission``), the
    latency a high percentile of the recently timed answers, times ``headroom``; and while the buckets
    still have room (an idle deployment's full first window), as many more as they admit at once, so
    that room is used now instead of trickling out at the long-run rate. The limiter still decides when
    each request goes; this only bounds how many items are prepared and waiting or on the wire.

    With unknown limits it is found like TCP's congestion window: start at ``initial_concurrency``,
    one more per answer (doubling every round trip) until the first 429, then halve on each 429 and grow
    by one per round trip. Always within ``[min_concurrency, max_concurrency]``.
    """

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self._latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._cost_total = 0
        self._cost_count = 0
        self._window = float(config.initial_concurrency)
        self._slow_start = True
        #: admitted requests waiting for their answer
        self.on_the_wire = 0
        #: the most there ever were at once
        self.peak = 0

    def latency(self) -> float:
        """Seconds an answer takes (a high percentile of recent ones; the configured guess before any)."""
        if not self._latencies:
            return self.config.initial_latency
        ordered = sorted(self._latencies)
        return ordered[min(len(ordered) - 1, int(_LATENCY_QUANTILE * len(ordered)))]

    def cost(self) -> float:
        """The average estimated cost of a request so far (1 before any: only the request limit counts)."""
        return self._cost_total / self._cost_count if self._cost_count else 1.0

    def target(self, limiter: RateLimiter) -> int:
        """Items that may be in flight now."""
        admission = limiter.admission(self.cost())
        if admission is None:
            wanted = math.floor(self._window)
        else:
            littles_law = math.ceil(admission.per_second * self.latency() * self.config.headroom)
            wanted = max(littles_law, self.on_the_wire + math.ceil(admission.now))
        return max(self.config.min_concurrency, min(self.config.max_concurrency, wanted))

    def estimated(self, tokens: int) -> None:
        """An item's request was estimated at ``tokens``."""
        self._cost_total += tokens
        self._cost_count += 1

    def sent(self) -> None:
        """A request was admitted and is on the wire."""
        self.on_the_wire += 1
        self.peak = max(self.peak, self.on_the_wire)

    def returned(self, latency: float | None) -> None:
        """A request came back; ``latency`` (seconds) when it was answered, ``None`` when it failed."""
        self.on_the_wire -= 1
        if latency is None:
            return
        self._latencies.append(latency)
        if self._slow_start:
            self._window += 1.0
        else:
            self._window += 1.0 / max(1.0, self._window)
        self._window = min(self._window, float(self.config.max_concurrency))

    def throttled(self) -> None:
        """A 429: with unknown limits, halve the window and stop doubling it."""
        self.on_the_wire -= 1
        self._slow_start = False
        self._window = max(float(self.config.min_concurrency), self._window / 2)


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
        """Every item of ``dataset`` through ``runtime``; returns one outcome per item, in order.

        Items are started as long as fewer than :meth:`Concurrency.target` are in flight; each task
        writes its outcome at its dataset position, once.
        """
        started = self._monotonic()
        counters = _Counters()
        concurrency = Concurrency(self.config)
        label = f"{runtime.bundle.app}@{runtime.bundle.version}"
        items = dataset.items
        outcomes: list[ItemOutcome | None] = [None] * len(items)
        tasks: dict[asyncio.Task[ItemOutcome], int] = {}
        next_index = 0
        try:
            while next_index < len(items) or tasks:
                target = concurrency.target(self.limiter)
                while next_index < len(items) and len(tasks) < target:
                    item = items[next_index]
                    tasks[asyncio.create_task(self._item(runtime, item, counters, concurrency))] = next_index
                    next_index += 1
                done, _ = await asyncio.wait(
                    tasks, timeout=_DISPATCH_TICK_S, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    index = tasks.pop(task)
                    outcome = task.result()
                    outcomes[index] = outcome
                    counters.done += 1
                    counters.failed += 0 if outcome.ok else 1
                    if self.progress is not None:
                        self.progress(
                            Progress(label, counters.done, len(items), counters.failed, counters.throttled)
                        )
        finally:
            for task in tasks:
                task.cancel()
        stats = RunStats(
            requests=counters.requests,
            throttled=counters.throttled,
            retries=counters.retries,
            tokens_charged=counters.tokens,
            wall_seconds=self._monotonic() - started,
            peak_concurrency=concurrency.peak,
        )
        finished = tuple(o for o in outcomes if o is not None)
        assert len(finished) == len(items), "every item has exactly one outcome"
        return BundleRun(runtime.bundle.digest, dataset.digest, RUNNER_VERSION, finished, stats)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.config.max_delay, self.config.base_delay * 2 ** (attempt - 1))
        return float(ceiling * (0.5 + 0.5 * self._rng.random()))

    async def _item(
        self, runtime: BundleRuntime, item: DatasetItem, counters: _Counters, concurrency: Concurrency
    ) -> ItemOutcome:
        try:
            prepared = runtime.prepare(item.question)
        except ModelshiftError as exc:
            return self._failed(item, exc, 0, 0, ())
        estimate = estimate_request_tokens(
            prepared.messages, tokenizer_for_model(runtime.model_name), runtime.max_tokens
        )
        concurrency.estimated(estimate)
        attempts = 0
        throttled = 0
        while True:
            reservation = await self.limiter.acquire(estimate)
            counters.requests += 1
            concurrency.sent()
            sent_at = self._monotonic()
            try:
                answer = await runtime.complete(prepared)
            except ThrottledError as exc:
                concurrency.throttled()
                self.limiter.release(reservation)
                self.limiter.throttled(exc.retry_after, self.config.throttle_fallback, reservation)
                counters.throttled += 1
                throttled += 1
                if throttled < self.config.max_throttled:
                    continue
                return self._failed(item, exc, attempts + 1, throttled, prepared.contexts)
            except ModelshiftError as exc:
                concurrency.returned(None)
                attempts += 1
                self._settle_failed(reservation, exc)
                if exc.retryable and attempts < self.config.max_attempts:
                    counters.retries += 1
                    await self._sleep(self._backoff(attempts))
                    continue
                return self._failed(item, exc, attempts, throttled, prepared.contexts)
            except BaseException:
                concurrency.returned(None)
                self.limiter.release(reservation)
                raise
            concurrency.returned(self._monotonic() - sent_at)
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
