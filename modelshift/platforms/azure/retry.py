"""The one retry policy of the Azure adapters (sync and async).

Retried: errors whose ``retryable`` is true — :class:`ThrottledError` (429) and
:class:`TransientPlatformError` (408, 5xx, timeouts, connection resets), which the transport produces.
The wait is the platform's ``retry-after-ms`` / ``retry-after`` when it gave one, else jittered exponential
backoff. Attempts stop at ``max_attempts`` or when the next wait would overrun ``total_budget`` seconds.

Only idempotent verbs (GET, PUT, DELETE, HEAD) are retried blindly. A POST is retried only when the caller
says how: :data:`SAFE_TO_REPEAT` for POSTs that create nothing (chat completions, embeddings, cancel), or a
*guard* — a function that looks for the thing the POST would have created (file by name, job by suffix) and
returns it, so a POST whose response was lost is not repeated.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from modelshift.errors import ModelshiftError, ThrottledError

T = TypeVar("T")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "PUT", "DELETE", "HEAD", "OPTIONS"})


class _SafeToRepeat:
    """Marker: this POST has no side effects a repeat could duplicate."""

    def __repr__(self) -> str:
        return "SAFE_TO_REPEAT"


SAFE_TO_REPEAT: Final = _SafeToRepeat()

#: a guard returns the already-created result, or None when the POST did not take effect
Guard = Callable[[], T | None]
AsyncGuard = Callable[[], Awaitable[T | None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff parameters plus the injected sleep/clock (tests pass fakes so nothing really sleeps)."""

    max_attempts: int = 6
    total_budget: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: fraction of each backoff delay that is randomised (0 = none, 1 = "full jitter")
    jitter: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: the platform's ask, else jittered exponential."""
        if retry_after is not None and retry_after >= 0:
            return retry_after
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(attempt - 1, 0)))
        return float(ceiling * (1 - self.jitter * self.rng.random()))

    def _may_retry(self, method: str, guarded: bool) -> bool:
        return method.upper() in IDEMPOTENT_METHODS or guarded

    def _next_wait(self, exc: ModelshiftError, attempt: int, started: float) -> float | None:
        """The wait before the next attempt, or None when the attempts or the time budget are used up."""
        if not exc.retryable or attempt >= self.max_attempts:
            return None
        retry_after = exc.retry_after if isinstance(exc, ThrottledError) else None
        wait = self.backoff(attempt, retry_after)
        if self.monotonic() - started + wait > self.total_budget:
            return None
        return wait

    def _give_up(self, exc: ModelshiftError, attempt: int, started: float) -> ModelshiftError:
        if exc.retryable and attempt > 1:
            spent = self.monotonic() - started
            exc.message = f"{exc.message} (gave up after {attempt} attempts in {spent:.1f}s)"
            exc.args = (exc.message,)
        return exc

    def run(
        self,
        call: Callable[[], T],
        *,
        method: str,
        guard: Guard[T] | _SafeToRepeat | None = None,
    ) -> T:
        """Call ``call`` until it succeeds, a non-retryable error occurs, or the policy gives up."""
        guarded = guard is not None
        if not self._may_retry(method, guarded):
            return call()
        started = self.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except ModelshiftError as exc:
                wait = self._next_wait(exc, attempt, started)
                if wait is None:
                    raise self._give_up(exc, attempt, started) from exc.__cause__
                self.sleep(wait)
                if callable(guard):
                    found = guard()
                    if found is not None:
                        return found

    async def run_async(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        method: str,
        guard: AsyncGuard[T] | _SafeToRepeat | None = None,
    ) -> T:
        """Async twin of :meth:`run` (uses ``async_sleep``)."""
        guarded = guard is not None
        if not self._may_retry(method, guarded):
            return await call()
        started = self.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except ModelshiftError as exc:
                wait = self._next_wait(exc, attempt, started)
                if wait is None:
                    raise self._give_up(exc, attempt, started) from exc.__cause__
                await self.async_sleep(wait)
                if callable(guard):
                    found = await guard()
                    if found is not None:
                        return found
