"""Client-side pacing for one deployment: a token bucket for TPM and one for RPM, kept in step with Azure.

Azure OpenAI admits a request only if its *estimated* cost (prompt tokens + ``max_tokens``) fits the
deployment's tokens-per-minute and its requests-per-minute (6 per 1000 TPM). The runner reserves that
estimate here before it sends, so it stays just under the limit instead of learning it from 429s:

- the TPM bucket holds one minute's tokens and the RPM bucket 10 seconds' requests (Azure counts requests
  over 10-second windows). Spent tokens flow back into a bucket exactly one window after they were spent,
  which is how the platform's sliding window forgets them. A bucket that refills continuously at
  limit / 60 s drifts out of step with a sliding window (it offers room while the platform still counts
  the previous burst): measured on the emulator it drew 429s and ran 0.86x as fast as a naive client
  that simply honours ``retry-after`` (see ``benchmarks/eval_throughput.py``);
- after each response the reservation is corrected to what the platform charged (its prompt count may
  differ from ours), and usage the ``x-ratelimit-remaining-*`` headers show beyond ours (other clients of
  the same deployment) is booked as well, so it is not spent twice. Our own spends that flowed back in
  the last ``MAX_EDGE_MARGIN_S`` seconds are not someone else's: the platform stamps a request a little
  after we reserve it (more so in a burst), so it may still count them, and booking them as someone
  else's would hold that room for a whole window;
- a 429 pauses every sender until the platform's ``retry-after``; the refused request was not counted, so
  its reservation is returned. A 429 the buckets did not expect means the platform's windows run behind
  ours, so the edge margin grows by what it showed (bounded by ``MAX_EDGE_MARGIN_S``).

Limits come from ARM (``capacity`` x 1000 TPM) via :meth:`RateLimits.from_capacity`, or, when unknown
(OpenAI-compatible servers), are learnt from the first response's headers; with no limits at all the
limiter only applies the 429 pauses.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
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
#: seconds Azure counts requests over (RPM / 6 per window)
REQUEST_WINDOW_S = 10.0
#: extra wait before a spend counts as gone: the platform stamps a request when it arrives, a little after
#: we reserved it, so at the exact window edge it may still count it (measured: 429s at the edge without it)
EDGE_MARGIN_S = 0.25
#: the most that margin grows to when 429s show the platform stamping our requests later still (a burst
#: queues at its front door; measured on the emulator: up to ~0.4 s after 100 requests at once)
MAX_EDGE_MARGIN_S = 2.0
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
    """A bucket of ``capacity`` whose spent amounts flow back ``window`` seconds after they were spent."""

    def __init__(self, capacity: float, window: float, memory: float = 0.0) -> None:
        self.capacity = float(capacity)
        self.window = float(window)
        #: seconds a spend is remembered after it flowed back (see :meth:`recently_freed`)
        self.memory = float(memory)
        #: [spent at, amount] per spend still inside the window, oldest first
        self._spent: deque[list[float]] = deque()
        self._total = 0.0
        #: (flowed back at, amount) of spends that left within the last ``memory`` seconds
        self._freed: deque[tuple[float, float]] = deque()

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] + self.window <= now:
            stamp, amount = self._spent.popleft()
            self._total -= amount
            if self.memory > 0:
                self._freed.append((stamp + self.window, amount))
        while self._freed and self._freed[0][0] < now - self.memory:
            self._freed.popleft()

    def recently_freed(self, now: float) -> float:
        """What flowed back within the last ``memory`` seconds (the platform may count it a little longer)."""
        self._expire(now)
        return sum(amount for _, amount in self._freed)

    def level(self, now: float) -> float:
        """What is available now."""
        self._expire(now)
        return self.capacity - self._total

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` is available (a cost above capacity only needs an empty window)."""
        self._expire(now)
        excess = self._total + min(amount, self.capacity) - self.capacity
        if excess <= 0:
            return 0.0
        freed = 0.0
        for stamp, spent in self._spent:
            freed += spent
            if freed >= excess:
                return stamp + self.window - now
        return self.window  # unreachable while amounts are positive; wait a window to be safe

    def take(self, amount: float, now: float) -> list[float]:
        """Spend ``amount`` now; returns the entry, so the amount can be corrected later."""
        self._expire(now)
        entry = [now, float(amount)]
        self._spent.append(entry)
        self._total += amount
        return entry

    def correct(self, entry: list[float], amount: float) -> None:
        """Change a spend to ``amount`` (0 returns it entirely); an expired spend is left alone."""
        if any(e is entry for e in self._spent):
            self._total += amount - entry[1]
            entry[1] = float(amount)

    def book(self, amount: float, at: float, now: float) -> None:
        """Record ``amount`` spent by someone else at ``at`` (it flows back one window after ``at``)."""
        if amount <= 0 or at + self.window <= now:
            return
        self._expire(now)
        entry = [at, float(amount)]
        # keep the deque ordered by time so expiry stays a pop from the left
        index = next((i for i, e in enumerate(self._spent) if e[0] > at), len(self._spent))
        self._spent.insert(index, entry)
        self._total += amount


@dataclass
class Reservation:
    """What one in-flight request holds in each bucket, and what it saw when it was taken."""

    tokens: int
    sent_at: float
    counter: int
    token_entry: list[float] | None = None
    request_entry: list[float] | None = None
    #: room left in each bucket right after this reservation was taken
    token_room: float = 0.0
    request_room: float = 0.0
    #: our own spends that had just flowed back when this was taken (not someone else's if still counted)
    token_freed: float = 0.0
    request_freed: float = 0.0
    request_counter: int = 0
    settled: bool = False


@dataclass(frozen=True)
class Admission:
    """Requests the limits admit: ``now`` at once (room left in both buckets), ``per_second`` sustained."""

    now: float
    per_second: float


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
        #: how long after a window a spend still counts (grown by 429s the buckets did not expect)
        self.edge_margin = EDGE_MARGIN_S
        self._margin_since = float("-inf")
        self._counter = 0
        self._request_counter = 0
        self._lock = asyncio.Lock()
        #: set when room comes back before its time (a reservation released or corrected down); one per
        #: event loop, since an asyncio.Event belongs to the loop that first waits on it
        self._room_back: asyncio.Event | None = None
        self._room_back_loop: asyncio.AbstractEventLoop | None = None
        self.limits: RateLimits | None = None
        #: 429 answers seen (for reports and the benchmark)
        self.throttled_count = 0
        if limits is not None:
            self.set_limits(limits)

    def set_limits(self, limits: RateLimits) -> None:
        """Use ``limits`` from now on (buckets start full: the platform's window is fresh to us)."""
        self.limits = limits
        self._tokens = TokenBucket(limits.tpm, WINDOW_S + self.edge_margin, MAX_EDGE_MARGIN_S)
        # Azure checks requests over 10-second windows (RPM / 6 each), so a minute's worth of requests
        # must not go out in one burst.
        self._requests = TokenBucket(
            max(1.0, limits.rpm / 6), REQUEST_WINDOW_S + self.edge_margin, MAX_EDGE_MARGIN_S
        )

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
                await self._sleep_unless_freed(wait)
            self._counter += tokens
            self._request_counter += 1
            reservation = Reservation(
                tokens=tokens, sent_at=now, counter=self._counter, request_counter=self._request_counter
            )
            if self._tokens is not None and self._requests is not None:
                reservation.token_entry = self._tokens.take(tokens, now)
                reservation.request_entry = self._requests.take(1, now)
                reservation.token_room = self._tokens.level(now)
                reservation.request_room = self._requests.level(now)
                reservation.token_freed = self._tokens.recently_freed(now)
                reservation.request_freed = self._requests.recently_freed(now)
            return reservation

    def _wake(self) -> None:
        if self._room_back is not None:
            self._room_back.set()

    async def _sleep_unless_freed(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a release gives room back: a waiter that slept the full wait
        computed from reservations a 429 then returned would hold every sender up for a window."""
        loop = asyncio.get_running_loop()
        if self._room_back is None or self._room_back_loop is not loop:
            self._room_back, self._room_back_loop = asyncio.Event(), loop
        self._room_back.clear()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        freed = asyncio.ensure_future(self._room_back.wait())
        try:
            await asyncio.wait({sleeper, freed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            freed.cancel()

    def admission(self, tokens: float) -> Admission | None:
        """What the limits admit of requests costing ``tokens`` each: at once now, and per second in the
        long run (``None`` while the limits are unknown). The runner sizes its concurrency from this."""
        if self.limits is None or self._tokens is None or self._requests is None:
            return None
        now = self._monotonic()
        cost = max(1.0, tokens)
        burst = 0.0
        if self._paused_until <= now:
            burst = max(0.0, min(self._tokens.level(now) / cost, self._requests.level(now)))
        rate = min(self.limits.rpm / WINDOW_S, self.limits.tpm / WINDOW_S / cost)
        return Admission(now=burst, per_second=rate)

    def settle(self, reservation: Reservation, charged: int, info: RateLimitInfo | None = None) -> None:
        """The request was answered: correct the reservation to ``charged``; book others' usage."""
        if reservation.settled:
            return
        reservation.settled = True
        now = self._monotonic()
        if self.limits is None and info is not None:
            self._learn(reservation, info, now)
            return
        if self._tokens is None or self._requests is None or reservation.token_entry is None:
            return
        self._tokens.correct(reservation.token_entry, charged)
        self._counter += charged - reservation.tokens
        if charged < reservation.tokens:
            self._wake()
        if info is None:
            return
        # What the platform had left beyond what we expected is someone else's usage; requests we sent
        # after this one may have reached the platform first, so they do not count as someone else's.
        later_tokens = self._counter - reservation.counter
        expected = reservation.token_room + (reservation.tokens - charged)
        if info.remaining_tokens is not None:
            other = expected - info.remaining_tokens - later_tokens - reservation.token_freed
            self._tokens.book(other, reservation.sent_at, now)
        if info.remaining_requests is not None:
            later_requests = self._request_counter - reservation.request_counter
            mine = later_requests + reservation.request_freed
            other = reservation.request_room - info.remaining_requests - mine
            self._requests.book(other, reservation.sent_at, now)

    def release(self, reservation: Reservation) -> None:
        """The platform did not count the request (429 or a refusal before admission): return its cost."""
        if reservation.settled:
            return
        reservation.settled = True
        self._counter -= reservation.tokens
        if self._tokens is not None and reservation.token_entry is not None:
            self._tokens.correct(reservation.token_entry, 0)
        if self._requests is not None and reservation.request_entry is not None:
            self._requests.correct(reservation.request_entry, 0)
        self._wake()

    def throttled(
        self, retry_after: float | None, fallback: float = 1.0, reservation: Reservation | None = None
    ) -> None:
        """A 429: hold every sender until the platform's wait is over.

        With ``reservation`` (the refused request's, reserved while the buckets had room for it) and known
        limits, the platform's windows run behind ours: it stamped a spend later than we did. The edge
        margin then grows by that request's round trip plus the platform's wait (up to
        ``MAX_EDGE_MARGIN_S``), once per change: requests sent before the last change say nothing new.
        """
        self.throttled_count += 1
        now = self._monotonic()
        wait = retry_after if retry_after is not None and retry_after >= 0 else fallback
        self._paused_until = max(self._paused_until, now + wait)
        if (
            reservation is None
            or retry_after is None
            or retry_after < 0
            or self._tokens is None
            or self._requests is None
            or reservation.token_entry is None
            or reservation.sent_at < self._margin_since
        ):
            return
        margin = min(MAX_EDGE_MARGIN_S, self.edge_margin + (now - reservation.sent_at) + retry_after)
        if margin > self.edge_margin:
            self.edge_margin = margin
            self._margin_since = now
            self._tokens.window = WINDOW_S + margin
            self._requests.window = REQUEST_WINDOW_S + margin

    def _learn(self, reservation: Reservation, info: RateLimitInfo, now: float) -> None:
        # Prefer the explicit limit headers; else the first remaining count plus what this request cost
        # is the window's budget as the platform saw it.
        tpm = info.limit_tokens
        if tpm is None and info.remaining_tokens is not None:
            tpm = info.remaining_tokens + reservation.tokens
        rpm = info.limit_requests
        if rpm is None and info.remaining_requests is not None:
            # the header counts a 10-second window: RPM is six of them
            rpm = (info.remaining_requests + 1) * 6
        if tpm and tpm > 0:
            self.set_limits(RateLimits(tpm=tpm, rpm=rpm if rpm and rpm > 0 else max(1, tpm // 1000 * 6)))
            assert self._tokens is not None and self._requests is not None
            # this request is in the platform's window already
            self._tokens.book(reservation.tokens, reservation.sent_at, now)
            self._requests.book(1, reservation.sent_at, now)


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
