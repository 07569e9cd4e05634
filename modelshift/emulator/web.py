"""HTTP plumbing shared by the emulator's routers: Azure error bodies, auth, api-version checks, paging."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse

from modelshift.emulator.state import World

ARM_API_VERSIONS = frozenset(
    {
        "2023-05-01",
        "2024-04-01-preview",
        "2024-06-01-preview",
        "2024-10-01",
        "2025-04-01-preview",
        "2025-06-01",
        "2025-07-01-preview",
        "2025-09-01",
        "2025-10-01-preview",
        "2025-12-01",
        "2026-03-01",
        "2026-05-01",
        "2026-07-01",
        "2026-09-01",
    }
)
# GET /subscriptions belongs to Microsoft.Resources, which has its own api-versions (`az account list`)
RESOURCES_API_VERSIONS = frozenset({"2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01"})
DATA_PLANE_API_VERSIONS = frozenset(
    {
        "2024-02-01",
        "2024-06-01",
        "2024-08-01-preview",
        "2024-10-01-preview",
        "2024-10-21",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    }
)


class AzureHTTPError(Exception):
    """Raised inside a handler to answer with an Azure-shaped error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        """The error as Azure sends it: ``{"error": {"code", "message", ...}}``."""
        return JSONResponse(
            {"error": {"code": self.code, "message": self.message, **self.extra}},
            status_code=self.status,
            headers=self.headers,
        )


class DropConnection(Exception):
    """Raised by a handler to make the server hang up on the client (an injected connection reset)."""


def world_of(request: Request) -> World:
    """The World the app was built with."""
    world: World = request.app.state.world
    return world


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_arm_auth(request: Request) -> None:
    """ARM accepts only ``Authorization: Bearer <token>`` with a token from the scenario."""
    world = world_of(request)
    token = _bearer(request)
    if token is None:
        raise AzureHTTPError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing. "
            "(modelshift emulator: send 'Authorization: Bearer <token>' with a token from the scenario)",
        )
    if token not in world.scenario.auth.bearer_tokens:
        raise AzureHTTPError(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid. "
            "(modelshift emulator: the token is not in the scenario's auth.bearer_tokens)",
        )


def require_data_auth(request: Request) -> None:
    """The data plane accepts ``api-key`` or ``Authorization: Bearer`` from the scenario."""
    world = world_of(request)
    key = request.headers.get("api-key")
    token = _bearer(request)
    keys, tokens = world.scenario.auth.api_keys, world.scenario.auth.bearer_tokens
    # the v1 (OpenAI-compatible) surface also takes the api-key as a bearer, as the openai SDK sends it
    v1_key_as_bearer = "/openai/v1/" in request.url.path and token in keys
    if (key is not None and key in keys) or (token is not None and token in tokens) or v1_key_as_bearer:
        return
    raise AzureHTTPError(
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
        "key for an active subscription and use a correct regional API endpoint for your resource.",
    )


def require_arm_api_version(request: Request) -> str:
    """The ARM api-version query parameter: 400 when missing or not one the emulator supports."""
    version = request.query_params.get("api-version")
    if not version:
        raise AzureHTTPError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    allowed = (
        ARM_API_VERSIONS | RESOURCES_API_VERSIONS
        if request.url.path == "/subscriptions"
        else ARM_API_VERSIONS
    )
    if version not in allowed:
        raise AzureHTTPError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(sorted(allowed, reverse=True))}'.",
        )
    return version


def require_data_api_version(request: Request) -> str:
    """The data-plane api-version: 400 when missing, 404 (as Azure answers) when unsupported."""
    version = request.query_params.get("api-version")
    if not version:
        raise AzureHTTPError(
            400, "BadRequest", "Missing required query parameter: api-version (e.g. ?api-version=2024-10-21)."
        )
    if version not in DATA_PLANE_API_VERSIONS:
        raise AzureHTTPError(404, "404", "Resource not found")
    return version


def paged(request: Request, items: list[dict[str, Any]], page_size: int) -> dict[str, Any]:
    """ARM paging: ``{value, nextLink}`` with a ``$skipToken`` offset in the next link."""
    raw = request.query_params.get("$skipToken", "0")
    try:
        offset = max(0, int(raw))
    except ValueError as exc:
        raise AzureHTTPError(400, "InvalidSkipToken", f"The $skipToken '{raw}' is not valid.") from exc
    page = items[offset : offset + page_size]
    body: dict[str, Any] = {"value": page}
    if offset + page_size < len(items):
        # Azure writes the token literally as $skipToken=...; keep every other query parameter
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "$skipToken"]
        query.append(("$skipToken", str(offset + page_size)))
        encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in query)
        body["nextLink"] = str(request.url.replace(query=encoded))
    return body


def base_url(request: Request) -> str:
    """This server's base URL as the client reached it, with a trailing slash."""
    return str(request.base_url)


def endpoint_of(request: Request, account: str) -> str:
    """The data-plane endpoint of ``account`` on this server (what ARM ``properties.endpoint`` says)."""
    return f"{base_url(request)}accounts/{account}/"
