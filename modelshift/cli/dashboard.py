"""``modelshift dashboard [--host] [--port]``: the fleet page, its JSON API and the operator's actions.

Reading needs nothing; actions need ``MODELSHIFT_DASHBOARD_TOKEN`` (see ``modelshift.dashboard.auth``).
Register with :func:`register` in ``modelshift/cli/__init__.py``.
"""

from __future__ import annotations

import typer

from modelshift.cli._common import command, err_console, settings


def dashboard(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 behind a proxy)."),
    port: int = typer.Option(8090, "--port", help="TCP port."),
    lifecycle_seconds: float = typer.Option(
        60.0, "--lifecycle-seconds", help="Read the lifecycle from ARM at most this often."
    ),
) -> None:
    """Serve the fleet dashboard: GET /, /apps/APP, /migrations/ID, /api/fleet, /api/migrations/ID."""
    from modelshift import launcher
    from modelshift.dashboard.server import open_dashboard, serve

    cfg = settings()
    # before anything imports Prefect: dry runs started here use <home>/prefect unless a server is set
    launcher.use_local_prefect_home(cfg)
    with open_dashboard(cfg, lifecycle_ttl_s=lifecycle_seconds) as dash:
        actions = "actions on" if dash.auth.enabled else "read-only: set MODELSHIFT_DASHBOARD_TOKEN to act"
        err_console.print(
            f"modelshift dashboard on http://{host}:{port} (store {dash.store.url}; {actions}; "
            f"migrations start {dash.start_mode.replace('_', '-')})",
            highlight=False,
        )
        serve(dash, host, port)


def register(app: typer.Typer) -> None:
    """Add the top-level ``dashboard`` command to the ``modelshift`` CLI."""
    app.command("dashboard")(command(dashboard))
