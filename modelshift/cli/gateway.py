"""``modelshift gateway serve``: the traffic gateway in front of an app's bundles.

Register with :func:`register` in ``modelshift/cli/__init__.py``.
"""

from __future__ import annotations

import gc
import logging

import typer

from modelshift.cli._common import command, err_console, open_store, settings
from modelshift.clock import utcnow

app = typer.Typer(help="Serve the bundle gateway (sticky canary routing, recorded for analysis).")


@app.command()
@command
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 behind a proxy)."),
    port: int = typer.Option(8080, "--port", help="TCP port."),
    flush_ms: float = typer.Option(
        200.0, "--flush-ms", help="Write request metrics at least this often (milliseconds)."
    ),
    cache_seconds: float = typer.Option(
        1.0, "--cache-seconds", help="How long router weights are cached before the store is re-read."
    ),
    httpx_transport: bool = typer.Option(
        False,
        "--httpx-transport",
        help="Call model endpoints through httpx's own transport (needed for proxies or HTTP/2; slower).",
    ),
) -> None:
    """Serve POST /apps/{app}/chat, POST /openai/deployments/{app}/chat/completions, feedback and /healthz."""
    import uvicorn

    from modelshift.gateway.app import create_app
    from modelshift.gateway.server import open_gateway

    cfg = settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = open_store(cfg)
    try:
        with open_gateway(
            cfg,
            store,
            clock=utcnow,
            ttl_s=cache_seconds,
            flush_ms=flush_ms,
            httpx_transport=httpx_transport,
        ) as gateway:
            err_console.print(
                f"modelshift gateway on http://{host}:{port} (store {store.url}); "
                f"point an Azure OpenAI SDK at it with the app name as the deployment"
            )
            # everything built so far lives for the whole process: keep the collector from rescanning it
            gc.freeze()
            # no access log: every request is already recorded in request_metrics
            uvicorn.run(create_app(gateway), host=host, port=port, log_level="warning", access_log=False)
    finally:
        store.close()


def register(root: typer.Typer) -> None:
    """Add the ``gateway`` sub-app to the root CLI."""
    root.add_typer(app, name="gateway")
