"""The router view on a real store: caching, unknown apps, no production, the lease switch on two replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from modelshift.audit import Reason
from modelshift.errors import NotFoundError
from modelshift.gateway.router_view import NoProductionError, RouterView
from modelshift.registry import register
from modelshift.store import Store
from tests.gateway.gateway_helpers import MovableClock, adopt, start_canary, write_bundle


def _lease_events(store: Store) -> list[object]:
    return [e for e in store.audit_events() if e.reason == Reason.ROUTER_LEASE_EXPIRED]


def test_routing_is_cached_for_the_ttl_then_re_read(
    store: Store, clock: MovableClock, tmp_path: Path
) -> None:
    prod = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
    adopt(store, prod)
    view = RouterView(store, clock, ttl_s=60)

    async def go() -> None:
        first = await view.routing("shop")
        again = await view.routing("shop")
        assert first is again and view.reads == 1
        assert first.production == prod.digest and first.versions == {prod.digest: "1.0.0"}
        view.ttl_s = 0  # expire the cache: the revision is re-read, the unchanged bundle list is reused
        stale = await view.routing("shop")
        assert stale is first  # served at once from the cache while one background read refreshes it
        await view.drain()
        fresh = await view.routing("shop")
        assert view.reads == 2 and fresh is not first and fresh.versions == first.versions
        await view.drain()

    asyncio.run(go())


def test_unknown_app_and_app_without_production(store: Store, clock: MovableClock, tmp_path: Path) -> None:
    register(store, write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o"), actor="test")
    view = RouterView(store, clock)

    async def go() -> None:
        with pytest.raises(NotFoundError, match="'nope'"):
            await view.routing("nope")
        routing = await view.routing("shop")
        with pytest.raises(NoProductionError, match="modelshift bundle register --adopt"):
            view.plan(routing)

    asyncio.run(go())


def test_two_replicas_see_the_lapse_and_only_one_reverts_and_audits(
    store: Store, clock: MovableClock, tmp_path: Path
) -> None:
    prod = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
    canary = write_bundle(tmp_path, "shop", "2.0.0", "blue", "faq-4o-mini")
    adopt(store, prod)
    start_canary(store, canary, 25, lease_expires_at=clock.now + timedelta(seconds=30))
    replicas = [RouterView(store, clock, ttl_s=60), RouterView(store, clock, ttl_s=60)]

    async def go() -> None:
        routings = [await r.routing("shop") for r in replicas]
        for replica, routing in zip(replicas, routings, strict=True):
            plan = replica.plan(routing)
            assert not plan.lease_expired and plan.canary == canary.digest
        clock.advance(30)  # the lease ends now: lapsed
        for _ in range(3):  # many requests per replica, one revert attempt per replica and revision
            for replica, routing in zip(replicas, routings, strict=True):
                plan = replica.plan(routing)
                assert plan.lease_expired and dict(plan.weights) == {prod.digest: 100}
        for replica in replicas:
            await replica.drain()

    asyncio.run(go())
    assert store.get_router("shop").weights == {prod.digest: 100}
    events = _lease_events(store)
    assert len(events) == 1  # the second replica lost the compare-and-set and wrote nothing
    assert store.verify_audit().ok


def test_revert_can_be_turned_off(store: Store, clock: MovableClock, tmp_path: Path) -> None:
    prod = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
    canary = write_bundle(tmp_path, "shop", "2.0.0", "blue", "faq-4o-mini")
    adopt(store, prod)
    start_canary(store, canary, 25, lease_expires_at=clock.now - timedelta(seconds=1))
    view = RouterView(store, clock, revert_on_lapse=False)

    async def go() -> None:
        plan = view.plan(await view.routing("shop"))
        assert dict(plan.weights) == {prod.digest: 100}  # still served from production only
        await view.drain()

    asyncio.run(go())
    assert store.get_router("shop").weights == {prod.digest: 75, canary.digest: 25}
    assert _lease_events(store) == []
