"""The client-side limiter: token buckets, reservations corrected by usage and headers, 429 pauses."""

from __future__ import annotations

import asyncio

import pytest

from modelshift.errors import ConfigError
from modelshift.evaluation.ratelimit import (
    EDGE_MARGIN_S,
    MAX_EDGE_MARGIN_S,
    RateLimiter,
    RateLimits,
    TokenBucket,
    estimate_request_tokens,
    tokenizer_for_model,
)
from modelshift.platforms.base import RateLimitInfo


class FakeTime:
    """A monotonic clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(limits: RateLimits | None, clock: FakeTime) -> RateLimiter:
    return RateLimiter(limits, monotonic=clock.monotonic, sleep=clock.sleep)


@pytest.mark.parametrize(
    ("capacity", "tpm", "rpm"),
    [(1, 1000, 6), (2, 2000, 12), (50, 50_000, 300), (450, 450_000, 2700)],
)
def test_limits_from_capacity(capacity: int, tpm: int, rpm: int) -> None:
    assert RateLimits.from_capacity(capacity) == RateLimits(tpm=tpm, rpm=rpm)


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_below_one_is_refused(capacity: int) -> None:
    with pytest.raises(ConfigError, match="capacity"):
        RateLimits.from_capacity(capacity)


@pytest.mark.parametrize(("tpm", "rpm"), [(0, 6), (1000, 0)])
def test_non_positive_limits_are_refused(tpm: int, rpm: int) -> None:
    with pytest.raises(ConfigError, match="positive"):
        RateLimits(tpm=tpm, rpm=rpm)


@pytest.mark.parametrize(
    ("spends", "amount", "now", "wait"),
    [
        ([(0.0, 400.0)], 600.0, 0.0, 0.0),  # exactly enough: no wait
        ([(0.0, 400.0)], 601.0, 0.0, 60.0),  # one token short: until the spend leaves the window
        ([(0.0, 400.0), (30.0, 600.0)], 400.0, 30.0, 30.0),  # the older spend frees just enough
        ([(0.0, 400.0), (30.0, 600.0)], 401.0, 30.0, 60.0),  # one more token: both must leave
        ([(0.0, 1000.0)], 1.0, 59.999, 0.001),
        ([(0.0, 1000.0)], 1.0, 60.0, 0.0),  # boundary: a spend leaves exactly one window later
        ([(0.0, 100.0)], 5000.0, 0.0, 60.0),  # above capacity: wait for an empty window only
        ([], 5000.0, 0.0, 0.0),
    ],
)
def test_bucket_wait(spends: list[tuple[float, float]], amount: float, now: float, wait: float) -> None:
    bucket = TokenBucket(capacity=1000, window=60)
    for at, spent in spends:
        bucket.take(spent, at)
    assert bucket.wait_for(amount, now) == pytest.approx(wait)


def test_bucket_corrections_and_booking() -> None:
    bucket = TokenBucket(capacity=100, window=60)
    entry = bucket.take(80, 0.0)
    bucket.correct(entry, 30)  # charged less than reserved
    assert bucket.level(1.0) == 70
    bucket.book(50, 0.5, 1.0)  # someone else spent 50 at t=0.5
    assert bucket.level(1.0) == 20
    bucket.book(10, -100.0, 1.0)  # already out of the window: ignored
    bucket.book(-5, 1.0, 1.0)  # nothing to book
    assert bucket.level(1.0) == 20
    assert bucket.level(60.0) == 50  # our spend left; the booked one leaves at 60.5
    assert bucket.level(60.5) == 100
    bucket.correct(entry, 0)  # correcting an expired spend changes nothing
    assert bucket.level(60.5) == 100


def test_acquire_waits_for_the_token_bucket() -> None:
    clock = FakeTime()
    rl = limiter(RateLimits(tpm=6000, rpm=600), clock)

    async def go() -> None:
        for _ in range(6):
            await rl.acquire(1000)  # the fresh window holds exactly six
        assert clock.sleeps == []
        await rl.acquire(1000)  # the seventh waits until the first leaves the 60 s window

    asyncio.run(go())
    assert clock.now == pytest.approx(60.25)


@pytest.mark.parametrize(
    ("rpm", "requests", "seconds"),
    [
        (6, 1, 0.0),
        (6, 2, 10.25),  # 6 per minute, at most 1 per 10 s window (+ the edge margin)
        (60, 10, 0.0),  # a 10-second window's worth goes at once ...
        (60, 11, 10.25),  # ... and no more until that window has passed
        (60, 20, 10.25),
        (60, 21, 20.5),
    ],
)
def test_acquire_waits_for_the_request_bucket(rpm: int, requests: int, seconds: float) -> None:
    clock = FakeTime()
    rl = limiter(RateLimits(tpm=1_000_000, rpm=rpm), clock)

    async def go() -> None:
        for _ in range(requests):
            await rl.acquire(10)

    asyncio.run(go())
    assert clock.now == pytest.approx(seconds)


def test_settle_gives_back_an_over_estimate() -> None:
    clock = FakeTime()
    rl = limiter(RateLimits(tpm=1000, rpm=600), clock)

    async def go() -> None:
        r = await rl.acquire(1000)
        rl.settle(r, 400)  # the platform charged less than we held
        await rl.acquire(600)
        rl.settle(r, 400)  # settling twice changes nothing

    asyncio.run(go())
    assert clock.sleeps == []


def test_headers_clamp_the_bucket() -> None:
    clock = FakeTime()
    rl = limiter(RateLimits(tpm=6000, rpm=600), clock)

    async def go() -> None:
        r = await rl.acquire(1000)
        # someone else used the deployment too: the platform has only 1000 tokens left, not 5000
        rl.settle(r, 1000, RateLimitInfo(remaining_tokens=1000, remaining_requests=50))
        await rl.acquire(1000)
        assert clock.now == 0.0
        await rl.acquire(1000)

    asyncio.run(go())
    assert clock.now == pytest.approx(60.25)


def test_our_own_later_requests_are_not_booked_as_someone_elses() -> None:
    clock = FakeTime()
    rl = limiter(RateLimits(tpm=6000, rpm=600), clock)

    async def go() -> None:
        first = await rl.acquire(1000)
        await rl.acquire(1000)  # reached the platform before the first did
        rl.settle(first, 1000, RateLimitInfo(remaining_tokens=4000))
        for _ in range(4):
            await rl.acquire(1000)

    asyncio.run(go())
    assert clock.now == 0.0


def test_throttled_pauses_everyone_and_release_returns_tokens() -> None:
    clock = FakeTime()
    rl = limiter(RateLimits(tpm=60_000, rpm=600), clock)

    async def go() -> None:
        r = await rl.acquire(1000)
        rl.release(r)
        rl.throttled(retry_after=3.0)
        await rl.acquire(10)

    asyncio.run(go())
    assert rl.throttled_count == 1
    assert clock.now >= 3.0


@pytest.mark.parametrize(("retry_after", "expected"), [(None, 2.0), (-1.0, 2.0), (0.0, 0.0), (7.5, 7.5)])
def test_throttle_wait_without_limits(retry_after: float | None, expected: float) -> None:
    clock = FakeTime()
    rl = limiter(None, clock)
    rl.throttled(retry_after, fallback=2.0)

    async def go() -> None:
        await rl.acquire(10)

    asyncio.run(go())
    assert clock.now == pytest.approx(expected)


@pytest.mark.parametrize(
    ("info", "tpm", "rpm"),
    [
        (RateLimitInfo(limit_tokens=30_000, limit_requests=180), 30_000, 180),
        (RateLimitInfo(remaining_tokens=9_000, remaining_requests=9), 10_000, 60),  # 10 per 10 s
        (RateLimitInfo(remaining_tokens=9_000), 10_000, 60),
    ],
)
def test_limits_are_learnt_from_headers(info: RateLimitInfo, tpm: int, rpm: int) -> None:
    clock = FakeTime()
    rl = limiter(None, clock)

    async def go() -> None:
        r = await rl.acquire(1000)
        rl.settle(r, 1000, info)

    asyncio.run(go())
    assert rl.limits == RateLimits(tpm=tpm, rpm=rpm)


def test_no_headers_no_limits() -> None:
    clock = FakeTime()
    rl = limiter(None, clock)

    async def go() -> None:
        for _ in range(100):
            r = await rl.acquire(100_000)
            rl.settle(r, 100_000, RateLimitInfo())

    asyncio.run(go())
    assert rl.limits is None
    assert clock.sleeps == []


def test_estimate_counts_chat_format_and_max_tokens() -> None:
    enc = tokenizer_for_model("gpt-4o")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    text_tokens = sum(len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages)
    assert estimate_request_tokens(messages, enc, 100) == 3 + 2 * 3 + text_tokens + 100
    named = [{"role": "user", "content": "hi", "name": "bob"}]
    assert estimate_request_tokens(named, enc, 0) == estimate_request_tokens(
        [{"role": "user", "content": "hi"}], enc, 0
    ) + 1 + len(enc.encode("bob"))


def test_unknown_model_is_estimated_with_o200k() -> None:
    assert tokenizer_for_model("llama-3-8b").name == "o200k_base"


def test_admission_is_the_room_now_and_the_long_run_rate() -> None:
    clock = FakeTime()
    lim = limiter(RateLimits.from_capacity(60), clock)  # 60k TPM, 360 RPM: 60 requests per 10 s
    first = lim.admission(1000)
    assert first is not None
    assert (first.now, first.per_second) == (60.0, 1.0)  # tokens for 60, the request window holds 60
    asyncio.run(lim.acquire(10_000))
    after = lim.admission(1000)
    assert after is not None and after.now == pytest.approx(50.0)
    assert lim.admission(10) == type(first)(now=59.0, per_second=6.0)  # small requests: RPM binds
    lim.throttled(2.0)
    paused = lim.admission(1000)
    assert paused is not None and paused.now == 0.0 and paused.per_second == 1.0
    assert limiter(None, clock).admission(1000) is None


def test_a_429_the_buckets_did_not_expect_grows_the_edge_margin() -> None:
    """The platform stamped a request later than we reserved it: hold spends longer, once per change."""
    clock = FakeTime()
    lim = limiter(RateLimits.from_capacity(10), clock)  # 10k TPM, 10 requests per 10 s
    asyncio.run(lim.acquire(10_000))
    clock.now = 60.0 + EDGE_MARGIN_S  # our window lets that spend go
    early = asyncio.run(lim.acquire(5_000))
    also_early = asyncio.run(lim.acquire(5_000))
    clock.now += 0.1  # the 429 comes back 0.1 s later: the platform counts the old spend 0.3 s more
    lim.release(early)
    lim.throttled(0.3, reservation=early)
    assert lim.edge_margin == pytest.approx(EDGE_MARGIN_S + 0.4)
    lim.release(also_early)
    lim.throttled(0.3, reservation=also_early)  # sent before the change: nothing new
    assert lim.edge_margin == pytest.approx(EDGE_MARGIN_S + 0.4)
    again = asyncio.run(lim.acquire(10_000))  # after the pause
    assert again.sent_at == pytest.approx(60.0 + EDGE_MARGIN_S + 0.4)
    following = asyncio.run(lim.acquire(1))  # a spend now counts for 60 s + the grown margin
    assert following.sent_at == pytest.approx(again.sent_at + 60.0 + EDGE_MARGIN_S + 0.4)
    lim.release(following)
    lim.throttled(30.0, reservation=following)
    assert lim.edge_margin == MAX_EDGE_MARGIN_S  # bounded: someone else's burst is not our lag


def test_unknown_limits_or_no_reservation_leave_the_margin() -> None:
    clock = FakeTime()
    known = limiter(RateLimits.from_capacity(1), clock)
    known.throttled(0.5)
    unknown = limiter(None, clock)
    unknown.throttled(0.5, reservation=asyncio.run(unknown.acquire(100)))
    assert known.edge_margin == unknown.edge_margin == EDGE_MARGIN_S


@pytest.mark.parametrize(
    ("after_expiry", "booked"),
    [
        (0.1, 0),  # our spend left our window 0.1 s ago: the platform still counting it is lag, not others
        (MAX_EDGE_MARGIN_S + 1.0, 5000),  # long gone from both windows: what the platform counts is others'
    ],
)
def test_our_own_just_freed_spends_are_not_booked_as_someone_elses(after_expiry: float, booked: int) -> None:
    clock = FakeTime()
    rl = limiter(RateLimits.from_capacity(10), clock)  # 10k TPM

    async def go() -> float:
        first = await rl.acquire(5000)
        rl.settle(first, 5000)
        clock.now = 60.0 + EDGE_MARGIN_S + after_expiry
        second = await rl.acquire(5000)
        # the platform counts 5000 tokens besides this request: ours, stamped late, or someone else's
        rl.settle(second, 5000, RateLimitInfo(remaining_tokens=0))
        admission = rl.admission(5000)
        assert admission is not None
        return admission.now * 5000

    room = asyncio.run(go())
    assert room == pytest.approx(10_000 - 5000 - booked)


@pytest.mark.parametrize("how", ["released", "settled lower"])
def test_a_waiter_wakes_when_room_comes_back_early(how: str) -> None:
    """A waiter's wait is computed from the reservations it saw; when a 429 returns them (or an answer
    costs less), it must not sleep out the window they would have held (real clock, one event loop)."""
    rl = RateLimiter(RateLimits.from_capacity(10))  # 10k TPM, 10 requests per 10 s

    async def go() -> float:
        first = await rl.acquire(10_000)
        waiter = asyncio.create_task(rl.acquire(5000))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # the window is full for a minute
        started = asyncio.get_running_loop().time()
        if how == "released":
            rl.release(first)
        else:
            rl.settle(first, 4000)
        await asyncio.wait_for(waiter, timeout=5)
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(go()) < 1.0
