"""The gateway's view of each app's router: read from the store, cached briefly, with the lease switch.

Each app's router state, its production bundle and the versions of its bundles are cached for ``ttl_s``
(1 s by default); the revision is then re-read in the background (the bundle list only when the revision
moved), while requests keep being served from the cached state.
The serving plan is computed per request from the cached state and the injected clock, so a lease that
lapses mid-cache takes effect at once. When it has lapsed while a canary has weight, the gateway serves
100 % production and, once per revision, reverts the stored router by compare-and-set to production only,
writing a ``router.lease_expired`` audit event in the same transaction, so every replica agrees and the
store says why. A replica that loses the compare-and-set simply re-reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from modelshift import audit
from modelshift.clock import Clock
from modelshift.errors import NotFoundError, RouterConflictError, StateError
from modelshift.gateway.routing import Plan, serving_plan
from modelshift.store import BundleStatus, RouterState, Store
from modelshift.store.engine import run_write
from modelshift.store.routing import Change, route

log = logging.getLogger(__name__)

#: who the gateway's own router writes are attributed to
GATEWAY_ACTOR = "gateway"


class NoProductionError(StateError):
    """The app has bundles but none serves (no production bundle, no weights): 503 until one is adopted."""

    retryable = True


@dataclass(frozen=True)
class AppRouting:
    """One app's cached router state and the identity of the bundles it may route to."""

    app: str
    state: RouterState
    production: str | None
    #: digest -> version of every registered bundle of the app
    versions: dict[str, str] = field(default_factory=dict)
    fetched_at: float = 0.0


def expire_lease(store: Store, app: str, state: RouterState, production: str, now_actor: Change) -> bool:
    """Revert ``app``'s router to 100 % ``production`` if it is still at ``state.revision``; audited.

    Returns False when another writer moved the router first (nothing written by us)."""

    def work(session: Session) -> None:
        after = route(session, app, {production: 100}, now_actor, expected_revision=state.revision)
        audit.append(
            session,
            occurred_at=now_actor.now,
            actor=now_actor.actor,
            reason=audit.Reason.ROUTER_LEASE_EXPIRED,
            subject=f"router:{app}",
            data={
                "app": app,
                "revision": state.revision,
                "reverted_to_revision": after.revision,
                "weights": dict(state.weights),
                "production_digest": production,
                "lease_expires_at": None
                if state.lease_expires_at is None
                else audit.format_time(state.lease_expires_at),
                "why": "the canary lease lapsed (the migration stopped renewing it); "
                "serving 100 % production",
            },
            migration_id=now_actor.migration_id,
        )

    try:
        run_write(store.engine, work, url=store.engine.url)
    except RouterConflictError:
        return False
    return True


class RouterView:
    """Cached router state per app, the serving plan per request, and the lease dead-man's switch."""

    def __init__(
        self, store: Store, clock: Clock, *, ttl_s: float = 1.0, revert_on_lapse: bool = True
    ) -> None:
        self.store = store
        self.clock = clock
        self.ttl_s = ttl_s
        self.revert_on_lapse = revert_on_lapse
        self._cache: dict[str, AppRouting] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: apps whose cached routing is being re-read in the background
        self._refreshing: set[str] = set()
        #: (app, revision) pairs whose lapse this replica already handled
        self._lapsed: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: store reads made (tests assert the cache works)
        self.reads = 0

    async def routing(self, app: str) -> AppRouting:
        """The app's routing; NotFoundError for unknown apps.

        Only the first request of an app waits for the store. After ``ttl_s`` the cached routing is still
        served while ONE background read refreshes it (stale-while-revalidate), so a slow store read never
        sits in a request's latency; the lease is checked per request against the clock either way."""
        cached = self._cache.get(app)
        if cached is not None:
            if time.monotonic() - cached.fetched_at >= self.ttl_s and app not in self._refreshing:
                self._refreshing.add(app)
                self._spawn(self._refresh(app, cached))
            return cached
        async with self._locks.setdefault(app, asyncio.Lock()):
            cached = self._cache.get(app)
            if cached is None:
                cached = await asyncio.to_thread(self._load, app, None)
                self._cache[app] = cached
        return cached

    async def _refresh(self, app: str, previous: AppRouting) -> None:
        try:
            self._cache[app] = await asyncio.to_thread(self._load, app, previous)
        except NotFoundError:
            self._cache.pop(app, None)  # the app's bundles are gone: the next request gets the 404
        except StateError as exc:
            # the store is unreachable: keep routing by the last known state (the lease still applies)
            log.warning("gateway: could not refresh the router of %s, serving the cached one: %s", app, exc)
        finally:
            self._refreshing.discard(app)

    def _load(self, app: str, previous: AppRouting | None) -> AppRouting:
        self.reads += 1
        state = self.store.get_router(app)
        if previous is not None and previous.state.revision == state.revision:
            return AppRouting(app, state, previous.production, previous.versions, time.monotonic())
        bundles = self.store.list_bundles(app)
        if not bundles:
            raise NotFoundError(
                f"no app {app!r} is known to the gateway (no bundle registered); check the URL, or register "
                f"its bundle with `modelshift bundle register` and adopt it",
                app=app,
            )
        production = next((b.digest for b in bundles if b.status is BundleStatus.PRODUCTION), None)
        versions = {b.digest: b.version for b in bundles}
        return AppRouting(app, state, production, versions, time.monotonic())

    def plan(self, routing: AppRouting) -> Plan:
        """What to serve now; a lapsed lease yields 100 % production and triggers the revert (once)."""
        if not routing.state.weights:
            raise NoProductionError(
                f"app {routing.app!r} has no production bundle receiving traffic; adopt one with "
                f"`modelshift bundle register --adopt` (or promote a canary with `modelshift promote "
                f"{routing.app}`)",
                app=routing.app,
            )
        plan = serving_plan(
            routing.state.weights, routing.state.lease_expires_at, routing.production, self.clock()
        )
        if plan.lease_expired:
            key = (routing.app, routing.state.revision)
            if key not in self._lapsed:
                self._lapsed.add(key)
                self._spawn(self._revert(routing))
        return plan

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _revert(self, routing: AppRouting) -> None:
        if not self.revert_on_lapse or routing.production is None:
            return
        change = Change(now=self.clock(), actor=GATEWAY_ACTOR, reason="router.lease_expired")
        try:
            won = await asyncio.to_thread(
                expire_lease, self.store, routing.app, routing.state, routing.production, change
            )
        except StateError as exc:
            # keep serving production from memory; the next lapse check of a new revision tries again
            log.warning("gateway: could not revert the lapsed router of %s: %s", routing.app, exc)
            return
        log.warning(
            "gateway: canary lease of %s lapsed at %s; %s",
            routing.app,
            routing.state.lease_expires_at,
            "router reverted to 100 %% production" if won else "another writer moved the router first",
        )
        self._cache.pop(routing.app, None)

    async def drain(self) -> None:
        """Wait for pending refreshes and lease reverts (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
