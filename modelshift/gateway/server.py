"""Assembling a gateway from settings, and running one in a background thread (tests, benchmarks).

:func:`open_gateway` wires what ``modelshift gateway serve`` needs: an ARM client (to find each bundle's
endpoint and deployment limits), one pooled async HTTP client shared by every bundle runtime, and the
store. :func:`running_gateway` serves an app with uvicorn on a free loopback port until the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from modelshift.clock import Clock
from modelshift.errors import ConfigError
from modelshift.gateway.app import create_app
from modelshift.gateway.runtimes import RetrieverFor, default_factory
from modelshift.gateway.service import Gateway
from modelshift.gateway.transport import StreamTransport
from modelshift.orchestration import EndpointDirectory
from modelshift.platforms import azure
from modelshift.serving import serve_in_thread
from modelshift.settings import Settings
from modelshift.store import Store

#: with ``httpx_transport``: connections to the model endpoints, shared by every bundle runtime. Kept small
#: on purpose: httpcore scans its whole pool on every request state change, so a pool of hundreds costs
#: more CPU than the queueing it saves (measured with benchmarks/gateway_overhead.py)
MAX_CONNECTIONS = 32
#: idle connections kept for reuse; every idle one is probed (a poll syscall) on each request assignment
MAX_IDLE_CONNECTIONS = 8


def data_plane_client(*, httpx_transport: bool = False) -> httpx.AsyncClient:
    """The async client every bundle runtime shares: the lean :class:`StreamTransport` by default, or
    httpx's own pooled transport (proxies, HTTP/2) with ``httpx_transport``."""
    timeout = httpx.Timeout(60.0, connect=10.0)
    if httpx_transport:
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_IDLE_CONNECTIONS)
        return httpx.AsyncClient(timeout=timeout, limits=limits)
    return httpx.AsyncClient(timeout=timeout, transport=StreamTransport())


@contextmanager
def open_gateway(
    settings: Settings,
    store: Store,
    *,
    clock: Clock,
    retriever_for: RetrieverFor | None = None,
    ttl_s: float = 1.0,
    flush_ms: float = 200.0,
    max_rows: int = 500,
    httpx_transport: bool = False,
) -> Iterator[Gateway]:
    """A :class:`Gateway` over ``store`` whose runtimes call the platforms ``settings`` point at."""
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as arm_http:
        arm = azure.arm_client(settings, client=arm_http, clock=clock)
        client = data_plane_client(httpx_transport=httpx_transport)
        factory = default_factory(
            settings, client, EndpointDirectory(arm), clock=clock, retriever_for=retriever_for
        )
        workdir = workdir_for(settings)
        gateway = Gateway(
            store, factory, clock=clock, workdir=workdir, ttl_s=ttl_s, flush_ms=flush_ms, max_rows=max_rows
        )
        # the async client's connections live on the server's event loop: close them there, at shutdown
        gateway.closers.append(client.aclose)
        yield gateway


@contextmanager
def running_gateway(gateway: Gateway, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``gateway`` on a free port of ``host`` in a background thread; yields its base URL."""
    with serve_in_thread(
        create_app(gateway), name="gateway", host=host, backlog=512, not_started=ConfigError
    ) as url:
        yield url


def workdir_for(settings: Settings) -> Path:
    """Where the gateway materializes bundles it serves."""
    return settings.home / "gateway" / "bundles"
