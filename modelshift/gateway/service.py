"""The gateway's one request path: route -> the chosen bundle's runtime -> answer, recorded either way.

:class:`Gateway` ties together the cached router view (with the lease switch), the per-digest runtime
cache and the batched metrics writer. Both HTTP endpoints (the native chat API and the Azure-OpenAI
compatible one) call :meth:`Gateway.serve`, so they route, answer and record identically.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from modelshift.clock import Clock
from modelshift.errors import (
    ConfigError,
    ModelshiftError,
    NotFoundError,
    PlatformError,
    StateError,
    ThrottledError,
)
from modelshift.gateway.metrics import RequestRecord, insert_records
from modelshift.gateway.router_view import NoProductionError, RouterView
from modelshift.gateway.routing import choose, key_hash
from modelshift.gateway.runtimes import RuntimeCache, RuntimeFactory
from modelshift.gateway.writer import MetricsWriter
from modelshift.orchestration import Answer
from modelshift.store import Store


@dataclass(frozen=True)
class Served:
    """Which bundle a request went to (known once routed, even when the call then failed)."""

    request_id: str
    app: str
    digest: str | None = None
    version: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """``x-modelshift-*`` response headers naming the request and the bundle that served it."""
        headers = {"x-modelshift-request-id": self.request_id}
        if self.digest is not None:
            headers["x-modelshift-bundle"] = f"{self.app}@{self.version}"
            headers["x-modelshift-digest"] = self.digest
        return headers


class GatewayCallError(Exception):
    """A request failed after (or while) routing; carries the modelshift error and what was served."""

    def __init__(self, error: ModelshiftError, served: Served) -> None:
        super().__init__(str(error))
        self.error = error
        self.served = served


class Gateway:
    """Routes each request to one bundle, answers through that bundle's runtime and records it."""

    def __init__(
        self,
        store: Store,
        factory: RuntimeFactory,
        *,
        clock: Clock,
        workdir: Path,
        ttl_s: float = 1.0,
        flush_ms: float = 200.0,
        max_rows: int = 500,
        revert_on_lapse: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self.router = RouterView(store, clock, ttl_s=ttl_s, revert_on_lapse=revert_on_lapse)
        self.runtimes = RuntimeCache(store, factory, workdir)
        #: awaited by :meth:`stop` on the serving loop (e.g. the shared HTTP client's aclose)
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.writer = MetricsWriter(
            lambda batch: insert_records(store, batch), flush_ms=flush_ms, max_rows=max_rows
        )

    def start(self) -> None:
        """Start the metrics writer."""
        self.writer.start()

    async def stop(self) -> None:
        """Finish pending lease reverts and write the queued metrics."""
        await self.router.drain()
        self.writer.close()
        self.runtimes.close()
        for close in self.closers:
            await close()

    async def serve(
        self,
        app: str,
        question: str,
        conversation: Sequence[Mapping[str, str]] | None,
        key: str | None,
    ) -> tuple[Answer, Served]:
        """Answer ``question`` for ``app`` with the bundle the router picks for ``key``; always recorded."""
        served = Served(request_id=uuid.uuid4().hex, app=app)
        started_at = self.clock()
        t0 = time.perf_counter()
        try:
            routing = await self.router.routing(app)
            digest = choose(app, self.router.plan(routing), key)
            if digest is None:  # pragma: no cover - plan() refuses empty weights first
                raise AssertionError(f"router of {app} chose no bundle")
            served = Served(served.request_id, app, digest, routing.versions.get(digest, "?"))
            runtime = await self.runtimes.get(digest)
            answer = await runtime.answer(question, conversation)
        except ModelshiftError as exc:
            self._record(served, started_at, t0, status_of(exc), type(exc).__name__, key, 0, 0)
            raise GatewayCallError(exc, served) from exc
        self._record(
            served,
            started_at,
            t0,
            200,
            None,
            key,
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
        )
        return answer, served

    def _record(
        self,
        served: Served,
        started_at: datetime,
        t0: float,
        status: int,
        error_class: str | None,
        key: str | None,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        self.writer.record(
            RequestRecord(
                request_id=served.request_id,
                app=served.app,
                bundle_digest=served.digest,
                started_at=started_at,
                latency_ms=(time.perf_counter() - t0) * 1000.0,
                status=status,
                error_class=error_class,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                user_key_hash=None if key is None else key_hash(key),
            )
        )


def status_of(exc: ModelshiftError) -> int:
    """The HTTP status the gateway answers (and records) for a modelshift error."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ThrottledError):
        return 429
    if isinstance(exc, PlatformError):
        return 502  # the bundle's deployment failed: a bad gateway, not the caller's fault
    if isinstance(exc, NoProductionError | StateError):
        return 503
    if isinstance(exc, ConfigError):
        return 500  # a bundle the gateway cannot build or run: the operator's configuration
    return 500
