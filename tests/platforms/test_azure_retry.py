"""The one retry policy: what is retried, how long it waits, when it gives up, and POST idempotency."""

from __future__ import annotations

import asyncio
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from azure_fakes import EPOCH, FakeTime, async_http, error, fresh, ok, scripted, sync_http

from modelshift.errors import (
    BadRequestError,
    ModelRetiredError,
    PlatformError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.platforms.azure.http import Target
from modelshift.platforms.azure.retry import SAFE_TO_REPEAT, RetryPolicy

T = Target("ARM", account="acct", deployment="dep")
URL = "https://example.test/x"


def _req() -> httpx.Request:
    return httpx.Request("GET", URL)


# (name, scripted responses, expected outcome: status code or error class, expected sleeps or None = any)
RETRY_TABLE: list[tuple[str, list[Any], Any, list[float] | None]] = [
    ("200 first try", [ok()], 200, []),
    ("503 then ok", [error(503), ok()], 200, None),
    ("500 502 504 then ok", [error(500), error(502), error(504), ok()], 200, None),
    ("408 then ok", [error(408), ok()], 200, None),
    (
        "429 retry-after-ms wins",
        [error(429, headers={"retry-after-ms": "250", "retry-after": "9"}), ok()],
        200,
        [0.25],
    ),
    ("429 retry-after seconds", [error(429, headers={"retry-after": "3"}), ok()], 200, [3.0]),
    ("429 retry-after zero", [error(429, headers={"retry-after": "0"}), ok()], 200, [0.0]),
    (
        "429 retry-after http date",
        [error(429, headers={"retry-after": format_datetime(EPOCH.replace(second=12), usegmt=True)}), ok()],
        200,
        [12.0],
    ),
    (
        "429 malformed ms falls back",
        [error(429, headers={"retry-after-ms": "soon", "retry-after": "2"}), ok()],
        200,
        [2.0],
    ),
    ("connect error then ok", [httpx.ConnectError("refused", request=_req()), ok()], 200, None),
    ("read timeout then ok", [httpx.ReadTimeout("slow", request=_req()), ok()], 200, None),
    ("reset then ok", [httpx.RemoteProtocolError("reset by peer", request=_req()), ok()], 200, None),
    ("400 not retried", [error(400)], BadRequestError, []),
    ("410 not retried", [error(410, "ModelDeprecated")], ModelRetiredError, []),
    ("409 not retried", [error(409, "Conflict")], PlatformError, []),
    ("503 six times gives up", [error(503)] * 6, TransientPlatformError, None),
    (
        "timeouts six times",
        [httpx.ReadTimeout("t", request=_req()) for _ in range(6)],
        TransientPlatformError,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "script", "outcome", "sleeps"), RETRY_TABLE, ids=[r[0] for r in RETRY_TABLE]
)
def test_get_retry_table(name: str, script: list[Any], outcome: Any, sleeps: list[float] | None) -> None:
    fake = FakeTime()
    handler, seen = scripted(fresh(script))
    http = sync_http(handler, fake)
    if isinstance(outcome, int):
        assert http.request("GET", URL, T).status_code == outcome
        assert len(seen) == len(script)
    else:
        with pytest.raises(outcome) as info:
            http.request("GET", URL, T)
        assert type(info.value) is outcome
        assert not isinstance(info.value, httpx.HTTPError)
        assert len(seen) == len(script)
        if len(script) > 1:
            assert f"gave up after {len(script)} attempts" in str(info.value)
    if sleeps is not None:
        assert fake.sleeps == pytest.approx(sleeps)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_idempotent_verbs_are_retried(method: str) -> None:
    handler, seen = scripted([error(503), ok()])
    assert sync_http(handler, FakeTime()).request(method, URL, T).status_code == 200
    assert len(seen) == 2


@pytest.mark.parametrize("status", [429, 503])
def test_post_without_guard_is_not_retried(status: int) -> None:
    handler, seen = scripted([error(status)])
    with pytest.raises((ThrottledError, TransientPlatformError)):
        sync_http(handler, FakeTime()).request("POST", URL, T)
    assert len(seen) == 1


def test_post_safe_to_repeat_is_retried() -> None:
    handler, seen = scripted([error(429, headers={"retry-after-ms": "10"}), ok({"a": 1})])
    assert sync_http(handler, FakeTime()).request("POST", URL, T, guard=SAFE_TO_REPEAT).json() == {"a": 1}
    assert len(seen) == 2


def test_post_guard_finds_the_created_thing_and_does_not_repeat() -> None:
    handler, seen = scripted([httpx.ReadTimeout("lost response", request=_req())])
    found = ok({"id": "file-1"})
    result = sync_http(handler, FakeTime()).request("POST", URL, T, guard=lambda: found)
    assert result is found and len(seen) == 1


def test_post_guard_finding_nothing_repeats_the_post() -> None:
    handler, seen = scripted([error(503), ok({"id": "job"}, status=201)])
    result = sync_http(handler, FakeTime()).request("POST", URL, T, guard=lambda: None)
    assert result.status_code == 201 and len(seen) == 2


@pytest.mark.parametrize(
    ("budget", "retry_after", "attempts"),
    [
        (10.0, "100", 1),  # the asked wait alone overruns the budget: give up at once
        (10.0, "10", 2),  # exactly at the budget: one retry
        (10.0, "4", 3),  # 4 + 4 = 8 fits, a third wait of 4 would not
        (1000.0, "1", 6),  # budget is not the limit: max_attempts is
    ],
)
def test_total_time_budget(budget: float, retry_after: str, attempts: int) -> None:
    fake = FakeTime()
    handler, seen = scripted([error(429, headers={"retry-after": retry_after})] * 6)
    with pytest.raises(ThrottledError) as info:
        sync_http(handler, fake, total_budget=budget).request("GET", URL, T)
    assert len(seen) == attempts
    assert info.value.retry_after == float(retry_after)
    assert sum(fake.sleeps) <= budget


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
def test_max_attempts(max_attempts: int) -> None:
    handler, seen = scripted([error(500)] * max_attempts)
    with pytest.raises(TransientPlatformError):
        sync_http(handler, FakeTime(), max_attempts=max_attempts).request("GET", URL, T)
    assert len(seen) == max_attempts


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = FakeTime().policy(base_delay=1.0, max_delay=8.0, jitter=0.5)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (12, 8.0)]:
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered, not a constant
    assert policy.backoff(3, retry_after=0.2) == 0.2


def test_no_jitter_is_deterministic() -> None:
    policy = RetryPolicy(base_delay=0.5, jitter=0.0)
    assert [policy.backoff(a) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]


# ---------------------------------------------------------------------------------------- async


@pytest.mark.parametrize(
    ("name", "script", "outcome", "sleeps"), RETRY_TABLE, ids=[r[0] for r in RETRY_TABLE]
)
def test_async_retry_table(name: str, script: list[Any], outcome: Any, sleeps: list[float] | None) -> None:
    fake = FakeTime()
    handler, seen = scripted(fresh(script))
    http = async_http(handler, fake)

    async def go() -> int:
        return (await http.request("GET", URL, T)).status_code

    if isinstance(outcome, int):
        assert asyncio.run(go()) == outcome
    else:
        with pytest.raises(outcome):
            asyncio.run(go())
    assert len(seen) == len(script)
    if sleeps is not None:
        assert fake.sleeps == pytest.approx(sleeps)


def test_async_post_guard_and_no_guard() -> None:
    fake = FakeTime()
    handler, seen = scripted([error(503)])
    http = async_http(handler, fake)
    with pytest.raises(TransientPlatformError):
        asyncio.run(http.request("POST", URL, T))
    assert len(seen) == 1

    handler2, seen2 = scripted([error(503)])
    http2 = async_http(handler2, fake)
    found = ok({"id": "x"})

    async def guard() -> httpx.Response:
        return found

    assert asyncio.run(http2.request("POST", URL, T, guard=guard)) is found
    assert len(seen2) == 1
