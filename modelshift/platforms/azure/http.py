"""The one place where the Azure adapters talk HTTP and translate failures into :mod:`modelshift.errors`.

Every ARM and data-plane call goes through :class:`AzureHttp` (or :class:`AsyncAzureHttp`): it adds the
credential's headers, runs the shared :class:`~modelshift.platforms.azure.retry.RetryPolicy`, and turns
non-2xx responses and httpx exceptions into the project's error tree. No httpx exception leaves this module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from modelshift.clock import Clock, ensure_utc, utcnow
from modelshift.errors import (
    AuthError,
    BadRequestError,
    DeploymentNotFoundError,
    DeploymentPausedError,
    ModelRetiredError,
    PlatformError,
    QuotaExceededError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.platforms.azure.auth import Credential
from modelshift.platforms.azure.retry import AsyncGuard, Guard, RetryPolicy, _SafeToRepeat

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

#: where send_once records a response's wall-clock latency (ms); a measurement, not a business clock
LATENCY_KEY = "modelshift.latency_ms"

_QUOTA_CODES = frozenset({"insufficientquota", "quotaexceeded", "specialfeatureorquotaidrequired"})


@dataclass(frozen=True)
class Target:
    """What a request is about, so error messages can name the resource and the next step."""

    plane: str
    account: str | None = None
    deployment: str | None = None
    resource: str | None = None

    def describe(self) -> str:
        """E.g. ``deployment chat-4o in account contoso-aoai``."""
        where = f" in account {self.account}" if self.account else ""
        if self.deployment:
            return f"deployment {self.deployment}{where}"
        if self.resource:
            return f"{self.resource}{where}"
        return f"{self.plane} request{where}"


def parse_retry_after(headers: Mapping[str, str], *, clock: Clock = utcnow) -> float | None:
    """Seconds the platform asked to wait: ``retry-after-ms``, else ``retry-after`` (seconds or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass  # malformed: fall through to retry-after
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max((ensure_utc(when) - clock()).total_seconds(), 0.0)


def error_code_and_message(response: httpx.Response) -> tuple[str | None, str]:
    """Azure's ``{"error": {"code", "message"}}`` (or bare ``{"code", "message"}``), tolerant of non-JSON."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        return None, text[:300] if text else response.reason_phrase
    err = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(err, dict):
        return None, str(err)[:300]
    code = err.get("code")
    message = err.get("message") or response.reason_phrase
    return (str(code) if code is not None else None), str(message)


def translate_response(
    response: httpx.Response, target: Target, credential: Credential, *, clock: Clock = utcnow
) -> PlatformError:
    """The project error for a non-2xx response (the single status → error table of the adapter)."""
    status = response.status_code
    code, message = error_code_and_message(response)
    tag = f"{status} {code}" if code and code != str(status) else str(status)
    what = target.describe()
    request = f"{response.request.method} {response.request.url.copy_with(query=None)}"
    common: dict[str, Any] = {"status_code": status, "code": code, "request": request}
    if status in (401, 403):
        return AuthError(
            f"{target.plane} refused {credential.describe()} for {what} ({tag}): {message}. "
            f"{credential.remedy()}",
            **common,
        )
    if status == 400:
        if code and code.lower() in _QUOTA_CODES:
            return QuotaExceededError(
                f"not enough quota for {what} ({tag}): {message}. Lower the capacity or request more quota",
                **common,
            )
        return BadRequestError(f"{what} was rejected ({tag}): {message}", **common)
    if status == 404:
        if target.deployment:
            return DeploymentNotFoundError(
                f"{what} does not exist ({tag}): {message}. Check the name against "
                f"`az cognitiveservices account deployment list` or create the deployment",
                **common,
            )
        return DeploymentNotFoundError(f"{what} was not found ({tag}): {message}", **common)
    if status == 410:
        return ModelRetiredError(
            f"{what} is retired ({tag}); run `modelshift scan` to find the apps that use it, "
            f"then `modelshift plan APP` to migrate them",
            **common,
        )
    if status == 423:
        return DeploymentPausedError(
            f"{what} is paused ({tag}); resume it (ARM POST .../deployments/NAME/resume) "
            "or route traffic elsewhere",
            **common,
        )
    if status == 429:
        wait = parse_retry_after(response.headers, clock=clock)
        asked = f"; Azure asked to wait {wait:g}s" if wait is not None else ""
        return ThrottledError(
            f"{what} was throttled ({tag}){asked}. Lower concurrency or raise the deployment's capacity",
            retry_after=wait,
            **common,
        )
    if status == 408 or status >= 500:
        return TransientPlatformError(f"{what} failed on the platform side ({tag}): {message}", **common)
    return PlatformError(f"{what} failed ({tag}): {message}", **common)


def translate_exception(exc: Exception, target: Target) -> PlatformError:
    """The project error for an httpx exception (timeouts, resets, refused connections, bad URLs)."""
    what = target.describe()
    if isinstance(exc, httpx.TimeoutException):
        return TransientPlatformError(
            f"{what} timed out ({type(exc).__name__}); the platform may be overloaded"
        )
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol):
        return TransientPlatformError(
            f"{what} could not be completed: {type(exc).__name__}: {exc}. Check the endpoint URL and network"
        )
    return PlatformError(f"{what} could not be sent: {type(exc).__name__}: {exc}. Check the endpoint URL")


def parse_body(model: type[M], response: httpx.Response, target: Target) -> M:
    """Validate a JSON response body into ``model``; a wrong shape is a PlatformError, not a crash."""
    try:
        return model.model_validate(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlatformError(
            f"{target.describe()}: {response.status_code} response is not JSON ({exc}); "
            "is the URL an Azure endpoint?",
            status_code=response.status_code,
        ) from exc
    except ValidationError as exc:
        raise PlatformError(
            f"{target.describe()}: unexpected {model.__name__} shape: {exc.errors()[0].get('msg')} at "
            f"{'.'.join(str(p) for p in exc.errors()[0].get('loc', ()))}; check the api-version setting",
            status_code=response.status_code,
        ) from exc


_HTTP_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


class AzureHttp:
    """Blocking HTTP for the Azure adapters: auth, retry and error translation around an ``httpx.Client``."""

    def __init__(
        self,
        client: httpx.Client,
        credential: Credential,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.client = client
        self.credential = credential
        self.policy = policy or RetryPolicy()
        self.clock = clock

    def send_once(self, method: str, url: str, target: Target, **kwargs: Any) -> httpx.Response:
        """One attempt: a 2xx response, or a translated PlatformError."""
        headers = {**kwargs.pop("headers", {}), **self.credential.headers()}
        try:
            started = time.perf_counter()
            response = self.client.request(method, url, headers=headers, **kwargs)
            response.read()
            response.extensions[LATENCY_KEY] = (time.perf_counter() - started) * 1000.0
        except _HTTP_ERRORS as exc:
            raise translate_exception(exc, target) from exc
        if response.is_success:
            return response
        raise translate_response(response, target, self.credential, clock=self.clock)

    def request(
        self,
        method: str,
        url: str,
        target: Target,
        *,
        guard: Guard[httpx.Response] | _SafeToRepeat | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send under the retry policy; ``kwargs`` go to ``httpx.Client.request`` (params, json, files)."""
        return self.policy.run(
            lambda: self.send_once(method, url, target, **dict(kwargs)), method=method, guard=guard
        )

    def call(
        self,
        method: str,
        call: Callable[[], T],
        *,
        guard: Guard[T] | _SafeToRepeat | None = None,
    ) -> T:
        """Run a whole request-and-parse step under the retry policy (guards return parsed results)."""
        return self.policy.run(call, method=method, guard=guard)


class AsyncAzureHttp:
    """Async twin of :class:`AzureHttp` around an ``httpx.AsyncClient``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        credential: Credential,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.client = client
        self.credential = credential
        self.policy = policy or RetryPolicy()
        self.clock = clock

    async def send_once(self, method: str, url: str, target: Target, **kwargs: Any) -> httpx.Response:
        """One attempt: a 2xx response, or a translated PlatformError."""
        headers = {**kwargs.pop("headers", {}), **(await self.credential.aheaders())}
        try:
            started = time.perf_counter()
            response = await self.client.request(method, url, headers=headers, **kwargs)
            await response.aread()
            response.extensions[LATENCY_KEY] = (time.perf_counter() - started) * 1000.0
        except _HTTP_ERRORS as exc:
            raise translate_exception(exc, target) from exc
        if response.is_success:
            return response
        raise translate_response(response, target, self.credential, clock=self.clock)

    async def request(
        self,
        method: str,
        url: str,
        target: Target,
        *,
        guard: AsyncGuard[httpx.Response] | _SafeToRepeat | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with the retry policy; ``kwargs`` go to ``httpx.AsyncClient.request``."""

        def attempt() -> Awaitable[httpx.Response]:
            return self.send_once(method, url, target, **dict(kwargs))

        return await self.policy.run_async(attempt, method=method, guard=guard)
