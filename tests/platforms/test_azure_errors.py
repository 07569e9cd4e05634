"""Error translation at the Azure adapter boundary: every status and httpx failure becomes a project error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from azure_fakes import FakeTime, async_http, sync_http

from modelshift.errors import (
    AuthError,
    BadRequestError,
    DeploymentNotFoundError,
    DeploymentPausedError,
    ModelRetiredError,
    ModelshiftError,
    PlatformError,
    QuotaExceededError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.platforms import base
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.azure.auth import ApiKeyCredential, StaticBearerCredential
from modelshift.platforms.azure.http import Target, parse_body, translate_exception, translate_response
from modelshift.platforms.azure.openai import AsyncAzureOpenAIClient, AzureOpenAIClient
from modelshift.platforms.azure.openai_models import DpFile

DP = Target("Azure OpenAI data plane", account="contoso-aoai", deployment="chat-4o")
REQ = httpx.Request(
    "POST", "https://contoso-aoai.openai.azure.com/openai/deployments/chat-4o/chat/completions"
)


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None, text: str | None = None
) -> Any:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=REQ)
    return httpx.Response(status, json=body, headers=headers, request=REQ)


def err(code: str, message: str = "msg") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# (status, body, headers, class, retryable, fragments the message must contain)
TABLE: list[tuple[int, Any, dict[str, str] | None, type[PlatformError], bool, list[str]]] = [
    (
        400,
        err("InvalidPayload", "messages is required"),
        None,
        BadRequestError,
        False,
        ["chat-4o", "400 InvalidPayload", "messages is required"],
    ),
    (
        400,
        err("InsufficientQuota", "only 10 left"),
        None,
        QuotaExceededError,
        False,
        ["quota", "only 10 left"],
    ),
    (
        401,
        err("401", "Access denied due to invalid subscription key"),
        None,
        AuthError,
        False,
        ["api-key from MODELSHIFT_API_KEY", "(401)", "check MODELSHIFT_API_KEY"],
    ),
    (
        403,
        err("AuthorizationFailed", "no role"),
        None,
        AuthError,
        False,
        ["api-key from", "403 AuthorizationFailed"],
    ),
    (
        404,
        err("DeploymentNotFound", "The API deployment for this resource does not exist."),
        None,
        DeploymentNotFoundError,
        False,
        [
            "deployment chat-4o in account contoso-aoai does not exist",
            "404 DeploymentNotFound",
            "create the deployment",
        ],
    ),
    (
        410,
        err("ModelDeprecated", "deprecated"),
        None,
        ModelRetiredError,
        False,
        ["deployment chat-4o in account contoso-aoai is retired (410 ModelDeprecated)", "modelshift plan"],
    ),
    (
        423,
        err("DeploymentPaused", "paused"),
        None,
        DeploymentPausedError,
        False,
        ["is paused (423", "resume"],
    ),
    (
        429,
        err("429", "Please retry after 6 seconds."),
        {"retry-after-ms": "6000"},
        ThrottledError,
        True,
        ["throttled (429)", "wait 6s"],
    ),
    (429, err("429"), None, ThrottledError, True, ["throttled"]),
    (408, err("Timeout"), None, TransientPlatformError, True, ["408"]),
    (500, err("InternalServerError"), None, TransientPlatformError, True, ["500 InternalServerError"]),
    (502, None, None, TransientPlatformError, True, ["502"]),
    (503, err("ServiceUnavailable"), None, TransientPlatformError, True, ["503"]),
    (599, err("Weird"), None, TransientPlatformError, True, ["599"]),
    (409, err("Conflict", "busy"), None, PlatformError, False, ["409 Conflict", "busy"]),
    (422, {"unexpected": "shape"}, None, PlatformError, False, ["422"]),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "retryable", "fragments"),
    TABLE,
    ids=[f"{row[0]}-{row[3].__name__}" for row in TABLE],
)
def test_status_table(
    status: int,
    body: Any,
    headers: dict[str, str] | None,
    cls: type[PlatformError],
    retryable: bool,
    fragments: list[str],
) -> None:
    error = translate_response(response(status, body, headers), DP, ApiKeyCredential("k"))
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.status_code == status
    for fragment in fragments:
        assert fragment in error.message, (fragment, error.message)
    assert error.message != "k"  # the secret itself is never in a message


def test_throttled_carries_retry_after_seconds() -> None:
    error = translate_response(response(429, err("429"), {"retry-after": "17"}), DP, ApiKeyCredential("k"))
    assert isinstance(error, ThrottledError) and error.retry_after == 17.0


def test_non_json_error_body() -> None:
    error = translate_response(response(502, text="<html>Bad Gateway</html>"), DP, ApiKeyCredential("k"))
    assert isinstance(error, TransientPlatformError) and "Bad Gateway" in error.message


def test_auth_error_names_bearer_credential_and_remedy() -> None:
    error = translate_response(
        response(401, err("InvalidAuthenticationToken")), DP, StaticBearerCredential("t")
    )
    assert isinstance(error, AuthError)
    assert "static bearer token from MODELSHIFT_ARM_TOKEN" in error.message
    assert "az account get-access-token" in error.message


def test_404_without_deployment_names_the_resource() -> None:
    target = Target("Azure OpenAI data plane", account="a", resource="fine-tuning job ft-1")
    error = translate_response(response(404, err("notFound")), target, ApiKeyCredential("k"))
    assert isinstance(error, DeploymentNotFoundError) and "fine-tuning job ft-1 in account a" in error.message


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("refused"), TransientPlatformError),
        (httpx.ConnectTimeout("t"), TransientPlatformError),
        (httpx.ReadTimeout("t"), TransientPlatformError),
        (httpx.WriteTimeout("t"), TransientPlatformError),
        (httpx.PoolTimeout("t"), TransientPlatformError),
        (httpx.ReadError("reset"), TransientPlatformError),
        (httpx.RemoteProtocolError("peer closed"), TransientPlatformError),
        (httpx.ProxyError("proxy"), TransientPlatformError),
        (httpx.UnsupportedProtocol("ftp"), PlatformError),
        (httpx.DecodingError("gzip"), PlatformError),
        (httpx.TooManyRedirects("loop"), PlatformError),
        (httpx.InvalidURL("bad"), PlatformError),
    ],
)
def test_exception_table(exc: Exception, cls: type[PlatformError]) -> None:
    translated = translate_exception(exc, DP)
    assert type(translated) is cls and "chat-4o" in translated.message


def test_parse_body_wrong_shapes() -> None:
    with pytest.raises(PlatformError, match="not JSON"):
        parse_body(DpFile, response(200, text="<html/>"), DP)
    with pytest.raises(PlatformError, match="unexpected DpFile shape"):
        parse_body(DpFile, response(200, {"no": "id"}), DP)


# ------------------------------------------------ no httpx exception escapes any public adapter call

ACCOUNT = base.AccountRef(subscription_id="s", resource_group="g", name="a")
RAISERS: list[Exception] = [
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("reset"),
    httpx.UnsupportedProtocol("nope"),
]
SYNC_CALLS: dict[str, Callable[[ArmClient, AzureOpenAIClient], Any]] = {
    "subscriptions": lambda arm, _: arm.subscriptions(),
    "accounts": lambda arm, _: arm.accounts("s", "g"),
    "location_models": lambda arm, _: arm.location_models("s", "eastus"),
    "account_models": lambda arm, _: arm.account_models(ACCOUNT),
    "usages": lambda arm, _: arm.usages("s", "eastus"),
    "list": lambda arm, _: arm.list(ACCOUNT),
    "get": lambda arm, _: arm.get(ACCOUNT, "d"),
    "create_or_update": lambda arm, _: arm.create_or_update(
        ACCOUNT, "d", base.DeploymentSpec(model=base.ModelRef(name="gpt-4o", version="2024-08-06"))
    ),
    "delete": lambda arm, _: arm.delete(ACCOUNT, "d"),
    "list_models": lambda _, dp: dp.list_models(),
    "get_model": lambda _, dp: dp.get_model("gpt-4o"),
    "chat": lambda _, dp: dp.chat("d", [{"role": "user", "content": "hi"}]),
    "embed": lambda _, dp: dp.embed("d", ["a"]),
    "list_files": lambda _, dp: dp.list_files(),
    "upload_file": lambda _, dp: dp.upload_file("t.jsonl", b"{}"),
    "list_jobs": lambda _, dp: dp.list_jobs(),
    "create_job": lambda _, dp: dp.create_job(base.FineTuneJobSpec(model="m", training_file="f", suffix="s")),
    "get_job": lambda _, dp: dp.get_job("ft-1"),
    "list_events": lambda _, dp: dp.list_events("ft-1"),
    "cancel_job": lambda _, dp: dp.cancel_job("ft-1"),
}


@pytest.mark.parametrize("exc", RAISERS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("call", sorted(SYNC_CALLS))
def test_no_httpx_exception_escapes(call: str, exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    fake = FakeTime()
    http = sync_http(handler, fake, max_attempts=2)
    arm = ArmClient(http, base_url="https://arm.test")
    dp = AzureOpenAIClient(http, "https://contoso.openai.azure.com/")
    with pytest.raises(ModelshiftError) as info:
        SYNC_CALLS[call](arm, dp)
    assert isinstance(info.value, PlatformError)
    assert not isinstance(info.value, httpx.HTTPError)


@pytest.mark.parametrize("exc", RAISERS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("call", ["chat", "embed"])
def test_no_httpx_exception_escapes_async(call: str, exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    dp = AsyncAzureOpenAIClient(async_http(handler, FakeTime(), max_attempts=2), "https://c.openai.azure.com")
    coro = dp.chat("d", [{"role": "user", "content": "x"}]) if call == "chat" else dp.embed("d", ["x"])
    with pytest.raises(PlatformError):
        asyncio.run(coro)
