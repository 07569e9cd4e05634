"""The gateway's HTTP surface (Starlette, no request models: parsing by hand keeps the overhead small).

- ``POST /apps/{app}/chat``: ``{question, conversation?, user?, session_id?}`` -> ``{answer, sources, bundle,
  request_id, usage}``.
- ``POST /openai/deployments/{app}/chat/completions?api-version=...`` (and
  ``POST /openai/v1/chat/completions`` with the app as ``model``): the Azure OpenAI chat request shape
  (``messages``; the last user message is the question, earlier user/assistant turns are the conversation,
  the caller's system messages are replaced by the bundle's prompt) -> a ``chat.completion`` object, so an
  application points its SDK's endpoint at the gateway and uses the app name as its deployment.
- ``POST /apps/{app}/feedback``: ``{request_id, score (0..1) | thumbs ("up"/"down")}``.
- ``GET /healthz``.

Every answer carries ``x-modelshift-bundle: app@version``, ``x-modelshift-digest`` and
``x-modelshift-request-id``. Errors are JSON naming the resource and the next step; a platform 429 passes its
``retry-after`` through.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelshift.errors import ConfigError, ThrottledError
from modelshift.gateway.metrics import feedback_value, set_feedback
from modelshift.gateway.routing import sticky_key
from modelshift.gateway.service import Gateway, GatewayCallError, Served, status_of
from modelshift.orchestration import Answer

#: header an Azure-compatible caller may use to stick a session to a bundle (the body's ``user`` wins)
SESSION_HEADER = "x-modelshift-session-id"
_ROLES = frozenset({"system", "developer", "user", "assistant"})


class BadRequest(Exception):
    """The caller's request body is wrong; the message says which field and how to fix it."""


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    # Azure's error envelope, so an SDK pointed at the gateway surfaces the message as it would Azure's
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=dict(headers or {}))


def _call_error(exc: GatewayCallError) -> JSONResponse:
    error = exc.error
    status = status_of(error)
    headers = exc.served.headers
    if isinstance(error, ThrottledError) and error.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
        headers["retry-after-ms"] = str(int(error.retry_after * 1000))
    return _error(status, type(error).__name__, error.message, headers)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON; send a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string, got {type(value).__name__}")
    return value


def _turns(value: Any, field: str) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"'{field}' must be a list of {{role, content}} messages")
    turns: list[dict[str, str]] = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise BadRequest(
                f"'{field}[{i}]' must be an object with role one of {sorted(_ROLES)} and string content"
            )
        content = message.get("content")
        if isinstance(content, list):  # the SDK's content-parts form: keep the text parts
            content = "\n".join(
                str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
        if not isinstance(content, str):
            raise BadRequest(f"'{field}[{i}].content' must be a string (or a list of text parts)")
        turns.append({"role": str(message["role"]), "content": content})
    return turns


def _question(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{field}' must be a non-empty string")
    return value


def _sources(answer: Answer) -> list[str]:
    return list(dict.fromkeys(p.source for p in answer.contexts))


def create_app(gateway: Gateway) -> Starlette:
    """The gateway's ASGI app; its lifespan starts and stops the metrics writer."""

    async def chat(request: Request) -> Response:
        app = request.path_params["app"]
        try:
            body = await _body(request)
            question = _question(body.get("question"), "question")
            conversation = _turns(body.get("conversation"), "conversation")
            key = sticky_key(_optional_str(body, "user"), _optional_str(body, "session_id"))
        except BadRequest as exc:
            return _error(400, "BadRequest", f"POST /apps/{app}/chat: {exc}")
        try:
            answer, served = await gateway.serve(app, question, conversation, key)
        except GatewayCallError as exc:
            return _call_error(exc)
        payload = {
            "answer": answer.content,
            "sources": _sources(answer),
            "bundle": {"app": answer.app, "version": answer.version, "digest": answer.digest},
            "request_id": served.request_id,
            "usage": {
                "prompt_tokens": answer.usage.prompt_tokens,
                "completion_tokens": answer.usage.completion_tokens,
            },
        }
        return JSONResponse(payload, headers=served.headers)

    async def completions(request: Request) -> Response:
        # classic route: the app is the deployment in the path; v1 route: the app is the body's "model"
        app = request.path_params.get("app")
        where = f"POST {request.url.path}"
        try:
            body = await _body(request)
            if app is None:
                app = _optional_str(body, "model")
                if not app:
                    raise BadRequest("'model' must name the app (the gateway routes it to the app's bundles)")
            if body.get("stream"):
                raise BadRequest("stream=true is not supported by the modelshift gateway; send stream=false")
            messages = _turns(body.get("messages"), "messages")
            last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
            if last_user is None:
                raise BadRequest("'messages' must contain a user message (the question)")
            question = _question(messages[last_user]["content"], f"messages[{last_user}].content")
            # the bundle's own system prompt is the one that goes out; the caller's is dropped
            conversation = [m for m in messages[:last_user] if m["role"] in ("user", "assistant")]
            key = sticky_key(_optional_str(body, "user"), request.headers.get(SESSION_HEADER))
        except BadRequest as exc:
            return _error(400, "BadRequest", f"{where}: {exc}")
        try:
            answer, served = await gateway.serve(app, question, conversation, key)
        except GatewayCallError as exc:
            return _call_error(exc)
        usage = answer.usage
        payload = {
            "id": f"chatcmpl-{served.request_id}",
            "object": "chat.completion",
            "created": int(gateway.clock().timestamp()),
            "model": answer.model.replace("@", "-"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.content},
                    "finish_reason": answer.finish_reason or "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
            },
        }
        return JSONResponse(payload, headers=served.headers)

    async def feedback(request: Request) -> Response:
        app = request.path_params["app"]
        try:
            body = await _body(request)
            request_id = _question(body.get("request_id"), "request_id")
            thumbs = body.get("thumbs")
            score = body.get("score")
            if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
                raise BadRequest(f"'score' must be a number between 0 and 1, got {score!r}")
            value = feedback_value(None if score is None else float(score), thumbs)
        except (BadRequest, ConfigError) as exc:
            return _error(400, "BadRequest", f"POST /apps/{app}/feedback: {exc}")
        # the request's own record may still be queued: write it first, then attach the feedback
        await asyncio.to_thread(gateway.writer.flush)
        found = await asyncio.to_thread(set_feedback, gateway.store, app, request_id, value, gateway.clock())
        if not found:
            return _error(
                404,
                "NotFound",
                f"no request {request_id!r} of app {app!r} was recorded; send the request_id the chat "
                "response returned (x-modelshift-request-id)",
            )
        return JSONResponse({"request_id": request_id, "feedback": value})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    routes = [
        Route("/apps/{app}/chat", chat, methods=["POST"]),
        Route("/apps/{app}/feedback", feedback, methods=["POST"]),
        Route("/openai/deployments/{app}/chat/completions", completions, methods=["POST"]),
        Route("/openai/v1/chat/completions", completions, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


__all__ = ["SESSION_HEADER", "Served", "create_app"]
