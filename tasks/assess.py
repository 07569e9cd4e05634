"""Assess tasks: read the ARM deployment and the location catalog of production bundles, call
``modelshift.lifecycle.assess`` and return small typed results. Thin: build from settings, call, reduce."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import httpx
from prefect import task

from modelshift.clock import utcnow
from modelshift.errors import DeploymentNotFoundError, NotFoundError
from modelshift.lifecycle.assess import Assessment, assess
from modelshift.lifecycle.bundleref import BundleRef
from modelshift.migration.params import parse_target
from modelshift.platforms.azure import arm_client
from modelshift.platforms.base import CatalogModel, ModelRef
from modelshift.settings import Settings, get_settings
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
            f"app {app!r} has no production bundle in the state store; register and adopt one "
            "(`modelshift bundle register` / adopt) before migrating it",
            app=app,
        )
    return [BundleRef.from_registered(r) for r in rows]


class _Fetcher:
    """Reads deployments and location catalogs through one ARM client, each catalog once per run."""

    def __init__(self, settings: Settings, client: httpx.Client) -> None:
        self._arm = arm_client(settings, client=client)
        self._catalogs: dict[tuple[str, str], list[CatalogModel]] = {}

    def assess(
        self, bundle: BundleRef, *, as_of: datetime, horizon_days: int, target: str | None
    ) -> Assessment:
        account = bundle.account
        deployment = None
        catalog: list[CatalogModel] = []
        if account is not None and bundle.deployment:
            try:
                deployment = self._arm.get(account, bundle.deployment)
            except DeploymentNotFoundError:
                deployment = None  # assess() reports deployment_missing
            location = bundle.location
            if location:
                key = (account.subscription_id, location)
                if key not in self._catalogs:
                    self._catalogs[key] = self._arm.location_models(account.subscription_id, location)
                catalog = self._catalogs[key]
        explicit = None
        if target:
            name, version = parse_target(target)
            explicit = ModelRef(format=bundle.model.format, name=name, version=version)
        return assess(bundle, deployment, catalog, as_of=as_of, horizon_days=horizon_days, target=explicit)


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
    settings = get_settings()
    with Store.open(settings.resolved_database_url) as store:
        (bundle,) = production_bundles(store, app)
    with httpx.Client(timeout=_HTTP_TIMEOUT_S) as client:
        result = _Fetcher(settings, client).assess(
            bundle, as_of=as_of_datetime(as_of), horizon_days=horizon_days, target=target
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
    settings = get_settings()
    with Store.open(settings.resolved_database_url) as store:
        bundles = [b for b in production_bundles(store) if matches_models(b, models)]
    when = as_of_datetime(as_of)
    results: list[tuple[Any, AppAssessment]] = []
    with httpx.Client(timeout=_HTTP_TIMEOUT_S) as client:
        fetcher = _Fetcher(settings, client)
        for bundle in bundles:
            result = fetcher.assess(bundle, as_of=when, horizon_days=horizon_days, target=None)
            results.append((result.urgency_key(), reduce_assessment(bundle, result)))
    return [summary for _, summary in sorted(results, key=lambda pair: pair[0])]
