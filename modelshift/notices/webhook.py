"""The Azure notice webhook: ``POST /notices/azure?token=SECRET`` and ``GET /healthz``.

Order of checks, cheapest and least trusting first: token (401), size while reading (413), JSON and schema
(400), the Event Grid handshake, classification (202 ignored), dedupe + claim in the store (200 duplicate),
dispatch (202 accepted, or 503 so that Azure's retry dispatches again).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelshift.clock import Clock
from modelshift.errors import ConfigError, ModelshiftError
from modelshift.notices.dispatch import Dispatcher
from modelshift.notices.log import NoticeLog
from modelshift.notices.model import NoticeKind, NoticeParseError
from modelshift.notices.parse import classify, parse_notice
from modelshift.settings import Settings

log = logging.getLogger(__name__)

#: largest body accepted (Service Health payloads are a few KiB; Azure caps webhook bodies far below this)
MAX_BODY_BYTES = 256 * 1024
#: seconds Azure (or a person) should wait before resending after a 503
RETRY_AFTER_SECONDS = 30
_VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    # Count what actually arrives: a chunked body has no Content-Length at all.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": "rejected", "error": error, "detail": detail, **extra}, status_code=status)


def _validation_code(body: bytes) -> str:
    try:
        events = json.loads(body)
    except ValueError:
        raise ValueError("the Event Grid validation body is not JSON") from None
    if not isinstance(events, list) or not events or not isinstance(events[0], dict):
        raise ValueError("the Event Grid validation body must be a JSON array of events")
    first = events[0]
    data = first.get("data")
    code = data.get("validationCode") if isinstance(data, dict) else None
    if first.get("eventType") != _VALIDATION_EVENT or not isinstance(code, str) or not code:
        raise ValueError(f"expected a {_VALIDATION_EVENT} with data.validationCode")
    return code


def require_secret(settings: Settings) -> bytes:
    """The webhook secret as bytes, or a ConfigError that says how to set one (the server will not start)."""
    value = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not value.strip():
        raise ConfigError(
            "MODELSHIFT_WEBHOOK_SECRET is not set; the notice webhook will not start without a shared "
            "secret. Generate one (`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
            "export it, and put it in the action group's webhook URL as ?token=<secret>"
        )
    return value.encode()


def create_app(settings: Settings, store: NoticeLog, dispatcher: Dispatcher, clock: Clock) -> FastAPI:
    """The webhook ASGI app. Refuses to build without ``MODELSHIFT_WEBHOOK_SECRET`` (ConfigError)."""
    secret = require_secret(settings)
    app = FastAPI(title="modelshift notice webhook", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.clock = clock

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/notices/azure")
    async def receive(request: Request) -> JSONResponse:
        token = request.query_params.get("token", "")
        # compare_digest on bytes: constant time whatever the length or content of the guess
        if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), secret):
            return _error(401, "unauthorized", "missing or wrong ?token=; use the URL with the shared secret")
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
        except _TooLarge:
            return _error(
                413,
                "too_large",
                f"body is over {MAX_BODY_BYTES} bytes; Service Health notices are far smaller",
            )
        if request.headers.get("aeg-event-type", "").lower() == "subscriptionvalidation":
            try:
                return JSONResponse({"validationResponse": _validation_code(body)})
            except ValueError as exc:
                return _error(400, "bad_validation_event", str(exc))
        try:
            notice = parse_notice(body)
        except NoticeParseError as exc:
            return _error(400, str(exc.problem), exc.message, field=exc.field)
        verdict = classify(notice)
        if verdict.kind is not NoticeKind.AZURE_OPENAI_RETIREMENT:
            return JSONResponse(
                {"status": "ignored", "kind": str(verdict.kind), "reason": verdict.reason}, status_code=202
            )
        key = notice.key
        try:
            recorded = await run_in_threadpool(store.record, key, notice)
        except ModelshiftError as exc:
            log.error("notice %s not recorded: %s", key, exc)
            return _error(503, "store_unavailable", str(exc), retry_after=RETRY_AFTER_SECONDS)
        if not recorded.claimed:
            return JSONResponse({"status": "duplicate", "notice_id": notice.notice_id}, status_code=200)
        try:
            await run_in_threadpool(dispatcher.dispatch, notice)
        except Exception as exc:
            # Any failure leaves the notice claimable: Azure's retry of this delivery dispatches it again.
            log.warning("dispatch of notice %s failed (attempt %d): %s", key, recorded.attempts, exc)
            try:
                await run_in_threadpool(store.mark_failed, key, f"{type(exc).__name__}: {exc}")
            except ModelshiftError as mark_exc:  # the claim then expires after CLAIM_LEASE
                log.error("could not mark notice %s failed: %s", key, mark_exc)
            return JSONResponse(
                {
                    "status": "dispatch_failed",
                    "notice_id": notice.notice_id,
                    "detail": str(exc),
                    "retry_after": RETRY_AFTER_SECONDS,
                },
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        try:
            await run_in_threadpool(store.mark_dispatched, key)
        except ModelshiftError as exc:
            # Dispatched but not marked: a resend may dispatch again, which Prefect dedupes by event id.
            log.error("notice %s dispatched but not marked: %s", key, exc)
        return JSONResponse(
            {
                "status": "accepted",
                "notice_id": notice.notice_id,
                "tracking_id": notice.tracking_id,
                "models": [m.ref for m in notice.models if not m.replacement],
                "reason": verdict.reason,
            },
            status_code=202,
        )

    return app
