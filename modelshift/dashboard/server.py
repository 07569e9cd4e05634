"""Assembling a dashboard from settings, and serving one with uvicorn (the CLI; a background thread in tests).

:func:`open_dashboard` wires the store, the live ARM lifecycle scan, the operator token and how real
migrations start (through the Prefect deployment when a Prefect server is configured, else in-process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from modelshift.clock import Clock, utcnow
from modelshift.dashboard.app import Dashboard, create_app
from modelshift.dashboard.auth import Authenticator
from modelshift.dashboard.lifecycle import LifecycleCache, SnapshotReader, live_reader
from modelshift.errors import ConfigError
from modelshift.serving import serve_in_thread
from modelshift.settings import Settings
from modelshift.store import Store


def start_mode() -> str:
    """``deployment`` when ``PREFECT_API_URL`` names a Prefect server (a worker runs migrations), else
    ``in_process`` (the dashboard's own process runs them, like ``modelshift migrate``)."""
    return "deployment" if os.environ.get("PREFECT_API_URL") else "in_process"


@contextmanager
def open_dashboard(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    reader: SnapshotReader | None = None,
    lifecycle_ttl_s: float = 60.0,
    mode: str | None = None,
    refresh_seconds: float = 5.0,
) -> Iterator[Dashboard]:
    """A :class:`Dashboard` over the settings' store; the store is closed when the block ends."""
    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token else None
    store = Store.open(settings.resolved_database_url)
    try:
        yield Dashboard(
            settings=settings,
            store=store,
            clock=clock,
            lifecycle=LifecycleCache(
                reader or live_reader(settings, clock=clock), clock=clock, ttl_s=lifecycle_ttl_s
            ),
            auth=Authenticator(token, clock=clock),
            start_mode=mode or start_mode(),
            refresh_seconds=refresh_seconds,
            prefect_ui_url=os.environ.get("PREFECT_UI_URL") or None,
        )
    finally:
        store.close()


@contextmanager
def running_dashboard(dashboard: Dashboard, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``dashboard`` on a free port of ``host`` in a background thread; yields its base URL."""
    with serve_in_thread(create_app(dashboard), name="dashboard", host=host, not_started=ConfigError) as url:
        yield url


def serve(dashboard: Dashboard, host: str, port: int) -> None:
    """Serve ``dashboard`` in the foreground until interrupted (``modelshift dashboard``)."""
    uvicorn.run(create_app(dashboard), host=host, port=port, log_level="info", access_log=False)
