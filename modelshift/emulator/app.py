"""The emulator's ASGI app: ARM at the root, each account's data plane under ``/accounts/{name}/``.

It is an EMULATOR and says so: every response carries ``x-modelshift-emulator: 1`` and the root page
explains what it is. Nothing here is Azure.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelshift.emulator import aml_api, arm, blob_api, control, finetune_api, inference
from modelshift.emulator.scenario import Scenario
from modelshift.emulator.state import World
from modelshift.emulator.web import AzureHTTPError, DropConnection

EMULATOR_HEADER = "x-modelshift-emulator"


class _EmulatorMiddleware:
    """Marks every response as the emulator's and turns DropConnection into a hung-up connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (EMULATOR_HEADER.encode(), b"1")]
            await send(message)

        try:
            await self.app(scope, receive, marked)
        except DropConnection:
            # Promise a body and never send it: uvicorn closes the socket mid-response, which the client
            # sees as a connection reset / incomplete read -- what an injected reset should look like.
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]}
            )


_ROOT = """<!doctype html><html><head><title>modelshift local Azure emulator</title></head><body>
<h1>modelshift local Azure emulator</h1>
<p>This is an <strong>emulator</strong> for local development and tests. It is <strong>not Azure</strong>
and serves no real models: answers come from a deterministic extractive answerer.</p>
<ul>
<li>ARM (Microsoft.CognitiveServices subset) at <code>{base}</code> &mdash;
 set <code>MODELSHIFT_ARM_URL={base_no_slash}</code></li>
<li>Each account's data plane at <code>{base}accounts/&lt;account&gt;/</code>
 (its ARM <code>properties.endpoint</code>)</li>
<li>Control endpoints under <code>{base}_emulator/</code> (clock, faults, reset)</li>
</ul></body></html>"""


def create_app(scenario: Scenario) -> FastAPI:
    """Build the emulator app for ``scenario`` (a fresh World each time)."""
    app = FastAPI(
        title="modelshift local Azure emulator (not Azure)",
        docs_url="/_emulator/docs",
        openapi_url="/_emulator/openapi.json",
        redoc_url=None,
    )
    app.state.world = World(scenario)

    @app.exception_handler(AzureHTTPError)
    async def _azure_error(request: Request, exc: AzureHTTPError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "404" if exc.status_code == 404 else str(exc.status_code)
        message = "Resource not found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def root(request: Request) -> HTMLResponse:
        base = str(request.base_url)
        return HTMLResponse(_ROOT.format(base=base, base_no_slash=base.rstrip("/")))

    @app.get("/_emulator", include_in_schema=False)
    def about(request: Request) -> dict[str, Any]:
        return {"emulator": "modelshift", "azure": False, "base_url": str(request.base_url)}

    app.include_router(control.router)
    app.include_router(arm.router)
    app.include_router(inference.router)
    app.include_router(finetune_api.router)
    app.include_router(aml_api.arm_router)
    app.include_router(aml_api.history_router)
    app.include_router(blob_api.router)
    app.include_router(aml_api.control_router)
    app.add_middleware(_EmulatorMiddleware)
    return app
