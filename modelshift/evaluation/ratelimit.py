"""Client-side pacing for one deployment: a token bucket for TPM and one for RPM, corrected by the platform.

Azure OpenAI admits a request only if its *estimated* cost (prompt tokens + ``max_tokens``) fits the
deployment's tokens-per-minute and its requests-per-minute (6 per 1000 TPM). The runner reserves that
estimate here before it sends, so it stays just under the limit instead of learning it from 429s:

- both buckets start full (a fresh window) and refill continuously at limit / 60 s; the request bucket
  holds 10 seconds' worth, since Azure counts requests over 10-second windows;
- after each response the reservation is corrected to what the platform charged (its prompt count may
  differ from ours by a few tokens), and the bucket is clamped to the ``x-ratelimit-remaining-*`` headers,
  which also covers other clients spending the same deployment's quota;
- a 429 pauses every sender until the platform's ``retry-after`` and empties the buckets, since the
  platform just said there is no room; the refused request was not counted, so its tokens come back.

Limits come from ARM (``capacity`` x 1000 TPM) via :meth:`RateLimits.from_capacity`, or, when unknown
(OpenAI-compatible servers), are learnt from the first response's headers; with no limits at all the
limiter only applies the 429 pauses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tiktoken

from modelshift.errors import ConfigError
from modelshift.grounding.tokenizers import encoding_for_model, get_encoding
from modelshift.platforms.base import RateLimitInfo

#: Azure OpenAI grants 6 requests per minute per 1000 tokens per minute
RPM_PER_1000_TPM = 6
#: seconds the platform's windows are measured over (the bucket's refill horizon)
WINDOW_S = 60.0
_EPSILON_S = 1e-6


@dataclass(frozen=True)
class RateLimits:
    """Tokens and requests per minute a deployment admits."""

    tpm: int
    rpm: int

    def __post_init__(self) -> None:
        if self.tpm < 1 or self.rpm < 1:
            raise ConfigError(f"rate limits must be positive (got tpm={self.tpm}, rpm={self.rpm})")

    @classmethod
    def from_capacity(cls, capacity: int) -> RateLimits:
        """Limits of a deployment with ``capacity`` units (ARM ``sku.capacity``; 1 unit = 1000 TPM)."""
        if capacity < 1:
            raise ConfigError(f"deployment capacity {capacity} must be at least 1 (unit = 1000 TPM)")
        return cls(tpm=capacity * 1000, rpm=capacity * RPM_PER_1000_TPM)


class TokenBucket:
    """A bucket of ``capacity`` that refills at ``per_second``; its level may go below zero (debt)."""

    def __init__(self, capacity: float, per_second: float, now: float) -> None:
        self.capacity = float(capacity)
        self.per_second = float(per_second)
        self.level = float(capacity)
        self._stamp = now

    def refill(self, now: float) -> None:
        """Add what accrued since the last call (never above capacity)."""
        if now > self._stamp:
            self.level = min(self.capacity, self.level + (now - self._stamp) * self.per_second)
            self._stamp = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` is available (a cost above capacity only needs a full bucket)."""
        self.refill(now)
        needed = min(amount, self.capacity) - self.level
        return 0.0 if needed <= 0 else needed / self.per_second

    def take(self, amount: float, now: float) -> None:
        """Spend ``amount`` (the caller checked :meth:`wait_for` first)."""
        self.refill(now)
        self.level -= amount

    def give(self, amount: float, now: float) -> None:
        """Return ``amount`` (an over-estimate, or a request the platform did not count)."""
        self.refill(now)
        self.level = min(self.capacity, self.level + amount)

    def clamp(self, ceiling: float, now: float) -> None:
        """Never believe there is more room than ``ceiling`` (what the platform reported)."""
        self.refill(now)
        self.level = min(self.level, ceiling)


@dataclass
class Reservation:
    """Tokens held for one in-flight request, and where the reservation counter stood after it."""

    tokens: int
    sent_at: float
    counter: int
    settled: bool = False


class RateLimiter:
    """Paces requests of one deployment (async, one event loop); see the module docstring."""

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens: TokenBucket | None = None
        self._requests: TokenBucket | None = None
        self._paused_until = 0.0
        self._counter = 0
        self._lock = asyncio.Lock()
        self.limits: RateLimits | None = None
        #: 429 answers seen (for reports and the benchmark)
        self.throttled_count = 0
        if limits is not None:
            self.set_limits(limits)

    def set_limits(self, limits: RateLimits) -> None:
        """Use ``limits`` from now on (buckets start full: the platform's window is fresh to us)."""
        now = self._monotonic()
        self.limits = limits
        self._tokens = TokenBucket(limits.tpm, limits.tpm / WINDOW_S, now)
        # Azure checks requests over 10-second windows (RPM / 6 each), so a minute's worth of requests
        # must not go out in one burst.
        self._requests = TokenBucket(max(1.0, limits.rpm / 6), limits.rpm / WINDOW_S, now)

    async def acquire(self, tokens: int) -> Reservation:
        """Wait until one request costing ``tokens`` fits both buckets and no 429 pause holds; reserve it."""
        # One waiter at a time: requests are admitted in arrival order, so a big one is not starved.
        async with self._lock:
            while True:
                now = self._monotonic()
                wait = self._paused_until - now
                if self._tokens is not None and self._requests is not None:
                    wait = max(wait, self._tokens.wait_for(tokens, now), self._requests.wait_for(1, now))
                # below a microsecond float rounding could keep the loop waiting for nothing
                if wait <= _EPSILON_S:
                    break
                await self._sleep(wait)
            if self._tokens is not None and self._requests is not None:
                self._tokens.take(tokens, now)
                self._requests.take(1, now)
            self._counter += tokens
            return Reservation(tokens=tokens, sent_at=now, counter=self._counter)

    def settle(self, reservation: Reservation, charged: int, info: RateLimitInfo | None = None) -> None:
        """The request was answered: correct the reservation to ``charged`` and clamp to the headers."""
        if reservation.settled:
            return
        reservation.settled = True
        now = self._monotonic()
        if self.limits is None and info is not None:
            self._learn(reservation, info)
        if self._tokens is None or self._requests is None:
            return
        diff = reservation.tokens - charged
        if diff > 0:
            self._tokens.give(diff, now)
        elif diff < 0:
            self._tokens.take(-diff, now)
        self._counter -= diff
        if info is None:
            return
        # The headers describe the moment this request was admitted; what we reserved since then is gone
        # from that room, and what the window refilled since then is added to it.
        elapsed = max(0.0, now - reservation.sent_at)
        if info.remaining_tokens is not None:
            later = self._counter - reservation.counter
            room = info.remaining_tokens - later + elapsed * self._tokens.per_second
            self._tokens.clamp(room, now)
        if info.remaining_requests is not None:
            self._requests.clamp(info.remaining_requests + elapsed * self._requests.per_second, now)

    def release(self, reservation: Reservation) -> None:
        """The platform did not count the request (429 or a failure before admission): return its cost."""
        if reservation.settled:
            return
        reservation.settled = True
        self._counter -= reservation.tokens
        if self._tokens is not None and self._requests is not None:
            now = self._monotonic()
            self._tokens.give(reservation.tokens, now)
            self._requests.give(1, now)

    def throttled(self, retry_after: float | None, fallback: float = 1.0) -> None:
        """A 429: hold every sender until the platform's wait is over and assume no room is left."""
        self.throttled_count += 1
        now = self._monotonic()
        wait = retry_after if retry_after is not None and retry_after >= 0 else fallback
        self._paused_until = max(self._paused_until, now + wait)
        if self._tokens is not None and self._requests is not None:
            self._tokens.clamp(0.0, now)
            self._requests.clamp(0.0, now)

    def _learn(self, reservation: Reservation, info: RateLimitInfo) -> None:
        # Prefer the explicit limit headers; else the first remaining count plus what this request cost
        # is the window's budget as the platform saw it.
        tpm = info.limit_tokens
        if tpm is None and info.remaining_tokens is not None:
            tpm = info.remaining_tokens + reservation.tokens
        rpm = info.limit_requests
        if rpm is None and info.remaining_requests is not None:
            rpm = info.remaining_requests + 1
        if tpm and tpm > 0:
            self.set_limits(RateLimits(tpm=tpm, rpm=rpm if rpm and rpm > 0 else max(1, tpm // 1000 * 6)))


def tokenizer_for_model(model_name: str) -> tiktoken.Encoding:
    """The model's own tokenizer; models without a known one are estimated with o200k_base."""
    try:
        return encoding_for_model(model_name)
    except ConfigError:
        return get_encoding("o200k_base")


def estimate_request_tokens(
    messages: Sequence[Mapping[str, Any]], encoding: tiktoken.Encoding, max_tokens: int
) -> int:
    """What the platform will charge up front: chat-format prompt tokens plus ``max_tokens``."""
    total = 3  # the reply is primed with 3 tokens
    for message in messages:
        total += 3
        total += len(encoding.encode(str(message.get("role", "")), disallowed_special=()))
        total += len(encoding.encode(str(message.get("content", "")), disallowed_special=()))
        if message.get("name"):
            total += 1 + len(encoding.encode(str(message["name"]), disallowed_special=()))
    return total + max_tokens
