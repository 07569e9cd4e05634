"""Serve an ASGI app with uvicorn on a free loopback port in a background thread (gateway, dashboard,
emulator): the one piece behind ``running_gateway``, ``running_dashboard`` and ``running_emulator``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

STARTUP_TIMEOUT_S = 15.0


def free_socket(host: str, *, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on a free port of ``host`` (the server is handed the socket, so no race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(backlog)
    return sock


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    name: str,
    host: str = "127.0.0.1",
    backlog: int = 128,
    lifespan: Literal["on", "off"] = "on",
    graceful_shutdown_s: int = 2,
    not_started: Callable[[str], Exception],
) -> Iterator[str]:
    """Run ``app`` until the block ends; yields its base URL. ``not_started(message)`` is the error raised
    when the server is not up within :data:`STARTUP_TIMEOUT_S` (each caller names its own error type)."""
    sock = free_socket(host, backlog=backlog)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=graceful_shutdown_s,
        lifespan=lifespan,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"{name}:{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise not_started(f"the {name} did not start on {host}:{port} within {STARTUP_TIMEOUT_S:.0f}s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
