"""Test helpers for the Azure adapter tests: a fake clock/sleep and MockTransport builders (no real waits)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from modelshift.platforms.azure.auth import ApiKeyCredential, Credential
from modelshift.platforms.azure.http import AsyncAzureHttp, AzureHttp
from modelshift.platforms.azure.retry import RetryPolicy

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeTime:
    """A monotonic clock that only moves when something sleeps; records every sleep."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def policy(self, **kwargs: Any) -> RetryPolicy:
        return RetryPolicy(
            sleep=self.sleep,
            async_sleep=self.async_sleep,
            monotonic=self.monotonic,
            rng=random.Random(7),
            **kwargs,
        )


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(responses: Iterable[httpx.Response | Exception]) -> tuple[Handler, list[httpx.Request]]:
    """A handler that answers each request with the next scripted response (or raises the exception)."""
    queue = list(responses)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if not queue:
            raise AssertionError(f"unexpected extra request {request.method} {request.url}")
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def error(
    status: int, code: str = "X", message: str = "m", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


def ok(body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body or {}).encode(), headers=headers)


def sync_http(
    handler: Handler, fake: FakeTime, credential: Credential | None = None, **policy: Any
) -> AzureHttp:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return AzureHttp(
        client, credential or ApiKeyCredential("k"), policy=fake.policy(**policy), clock=fake.wall
    )


def async_http(
    handler: Handler, fake: FakeTime, credential: Credential | None = None, **policy: Any
) -> AsyncAzureHttp:
    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(ahandler))
    return AsyncAzureHttp(
        client, credential or ApiKeyCredential("k"), policy=fake.policy(**policy), clock=fake.wall
    )


def fresh(script: Iterable[httpx.Response | Exception]) -> list[httpx.Response | Exception]:
    """Copies of scripted responses, so a module-level table can be used by several tests."""
    return [
        httpx.Response(i.status_code, headers=i.headers, content=i.content)
        if isinstance(i, httpx.Response)
        else i
        for i in script
    ]
