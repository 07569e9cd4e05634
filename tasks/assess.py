"""Assess tasks: read the fleet from ARM (``modelshift.lifecycle.fetch_live``), assess production bundles
(``assess_bundle`` / ``scan_fleet``) and return small typed results. Thin: build, call, reduce."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

import httpx
from prefect import task

from modelshift.clock import utcnow
from modelshift.errors import NotFoundError
from modelshift.lifecycle import (
    Assessment,
    AsyncArmReader,
    BundleRef,
    FleetSnapshot,
    assess_bundle,
    fetch_live,
    parse_target,
    scan_fleet,
)
from modelshift.settings import get_settings
from modelshift.store import Store
from tasks.results import AppAssessment
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, retry_condition_fn

_HTTP_TIMEOUT_S = 30.0


def as_of_datetime(as_of: date | datetime | None) -> datetime:
    """The assessment instant: the given day at 00:00 UTC, or now (read here, at the edge)."""
    if as_of is None:
        return utcnow()
    if isinstance(as_of, datetime):
        return as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)


def reduce_assessment(bundle: BundleRef, result: Assessment) -> AppAssessment:
    """The flow-facing summary of one assessment (the full one stays in ``detail``)."""
    target = result.target
    return AppAssessment(
        app=bundle.app,
        bundle_version=bundle.version,
        baseline_digest=bundle.digest,
        model=str(result.pinned_model),
        deployment=result.deployment,
        account=result.account,
        status=str(result.status),
        retirement=result.retirement.date().isoformat() if result.retirement else None,
        days_left=result.days_left,
        target=str(target.model) if target is not None else None,
        target_source=target.source if target is not None else None,
        risks=[r.message for r in result.risks],
        detail=result.model_dump(mode="json"),
    )


def matches_models(bundle: BundleRef, models: Iterable[str] | None) -> bool:
    """True when ``models`` is empty/None, or names the bundle's model (``name`` or ``name@version``)."""
    wanted = [m.strip().lower() for m in (models or []) if m and m.strip()]
    if not wanted:
        return True
    pinned = bundle.model
    for ref in wanted:
        name, _, version = ref.partition("@")
        if name == pinned.name.lower() and (not version or version == (pinned.version or "").lower()):
            return True
    return False


def production_bundles(store: Store, app: str | None = None) -> list[BundleRef]:
    """Every production bundle (of one app), as BundleRefs."""
    rows = store.list_bundles(app=app, status="production")
    if app is not None and not rows:
        raise NotFoundError(
            f"app {app!r} has no production bundle in the state store; register it with "
            "`modelshift bundle register --adopt bundles/<app>/<version>` before migrating it",
            app=app,
        )
    return [BundleRef.from_registered(r) for r in rows]


def live_snapshot(bundles: Sequence[BundleRef]) -> FleetSnapshot:
    """Read the deployments, catalogs and quota these bundles need from ARM (MODELSHIFT_ARM_URL)."""
    settings = get_settings()

    async def read() -> FleetSnapshot:
        async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_S) as client:
            reader = AsyncArmReader.from_settings(client, settings)
            return await fetch_live(reader, bundles, discover_accounts=False)

    return asyncio.run(read())


def load_production(app: str | None = None) -> list[BundleRef]:
    """The production bundles of the store the settings name."""
    with Store.open(get_settings().resolved_database_url) as store:
        return production_bundles(store, app)


@task(
    name="assess-app",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def assess_app(
    app: str, target: str | None = None, as_of: date | None = None, horizon_days: int = 90
) -> AppAssessment:
    """Assess one app's production bundle against its live deployment and the location catalog."""
    (bundle,) = load_production(app)
    explicit = parse_target(target) if target else None
    result = assess_bundle(
        bundle,
        live_snapshot([bundle]),
        as_of=as_of_datetime(as_of),
        horizon_days=horizon_days,
        target=explicit,
    )
    return reduce_assessment(bundle, result)


@task(
    name="assess-fleet",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def assess_fleet(
    as_of: date | None = None, horizon_days: int = 90, models: list[str] | None = None
) -> list[AppAssessment]:
    """Assess every production bundle (only those on ``models``, when given), most urgent first."""
    bundles = [b for b in load_production() if matches_models(b, models)]
    if not bundles:
        return []
    report = scan_fleet(
        bundles, live_snapshot(bundles), as_of=as_of_datetime(as_of), horizon_days=horizon_days
    )
    by_app = {b.app: b for b in bundles}
    return [reduce_assessment(by_app[row.app], row) for row in report.managed if row.app in by_app]
