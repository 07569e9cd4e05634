"""The fleet scan: every production bundle with its assessment, plus unmanaged deployments, most urgent first;
and the plan for one app from the same snapshot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from modelshift.clock import ensure_utc
from modelshift.errors import ConfigError
from modelshift.lifecycle.assess import Assessment, AssessmentStatus, Finding, assess
from modelshift.lifecycle.bundleref import BundleRef
from modelshift.lifecycle.families import FamilyTable
from modelshift.lifecycle.plan import MigrationPlan, build_plan
from modelshift.lifecycle.sources import FleetSnapshot
from modelshift.lifecycle.targets import RejectedTarget, TargetCandidate
from modelshift.platforms.base import Deployment, ModelRef

DEFAULT_HORIZON_DAYS = 90


class ScanReport(BaseModel):
    """The result of :func:`scan_fleet`; ``rows`` are sorted by urgency (status, then soonest date)."""

    model_config = ConfigDict(frozen=True)

    as_of: datetime
    horizon_days: int
    origin: str
    sources: list[str] = Field(default_factory=list)
    rows: list[Assessment]

    @property
    def managed(self) -> list[Assessment]:
        """Rows of production bundles."""
        return [r for r in self.rows if r.managed]

    @property
    def unmanaged(self) -> list[Assessment]:
        """Rows of deployments no bundle owns."""
        return [r for r in self.rows if not r.managed]

    def counts(self) -> dict[str, int]:
        """Number of managed rows per status."""
        return dict(Counter(r.status.value for r in self.managed))

    def needs_migration(self) -> list[Assessment]:
        """Managed rows whose model is retired, retiring within the horizon, or deprecating."""
        urgent = {AssessmentStatus.RETIRED, AssessmentStatus.RETIRING, AssessmentStatus.DEPRECATING}
        return [r for r in self.managed if r.status in urgent]


def _owner_key(dep: Deployment) -> tuple[str, str]:
    return dep.account.name.lower(), dep.name.lower()


DeploymentIndex = dict[tuple[str, str, str], Deployment]


def index_deployments(snapshot: FleetSnapshot) -> DeploymentIndex:
    """The snapshot's deployments by (subscription, account, name), lower-cased; first one wins."""
    index: DeploymentIndex = {}
    for dep in snapshot.deployments or []:
        index.setdefault((dep.account.subscription_id.lower(), *_owner_key(dep)), dep)
    return index


def _find_deployment(
    bundle: BundleRef, snapshot: FleetSnapshot, index: DeploymentIndex | None = None
) -> Deployment | None:
    acct = bundle.account
    if acct is None or snapshot.deployments is None or bundle.deployment is None:
        return None
    # one dict lookup per bundle: a fleet scan of N bundles over M deployments stays O(N + M)
    index = index if index is not None else index_deployments(snapshot)
    return index.get((acct.subscription_id.lower(), acct.name.lower(), bundle.deployment.lower()))


def assess_bundle(
    bundle: BundleRef,
    snapshot: FleetSnapshot,
    *,
    as_of: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    target: ModelRef | None = None,
    index: DeploymentIndex | None = None,
) -> Assessment:
    """Assess one production bundle against the snapshot (pure); ``index`` from :func:`index_deployments`
    saves rebuilding it when many bundles are assessed against one snapshot."""
    if bundle.account is None:
        result = assess(
            bundle,
            None,
            snapshot.catalog_for(bundle.location),
            as_of=as_of,
            horizon_days=horizon_days,
            target=target,
            deployment_observed=False,
        )
        note = Finding(
            code="platform_not_scanned",
            message=f"bundle {bundle.app} runs on {bundle.platform}; only Azure OpenAI deployments are read "
            "from ARM, so its model was assessed against the catalog alone",
        )
        return result.model_copy(update={"findings": [*result.findings, note]})
    return assess(
        bundle,
        _find_deployment(bundle, snapshot, index),
        snapshot.catalog_for(bundle.location),
        as_of=as_of,
        horizon_days=horizon_days,
        target=target,
        deployment_observed=snapshot.observed(bundle.account),
    )


def scan_fleet(
    bundles: Sequence[BundleRef],
    snapshot: FleetSnapshot,
    *,
    as_of: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    targets: Mapping[str, ModelRef] | None = None,
) -> ScanReport:
    """Every production bundle with its assessment, plus deployments owned by no bundle, most urgent first."""
    as_of = ensure_utc(as_of)
    targets = targets or {}
    index = index_deployments(snapshot)
    rows = [
        assess_bundle(
            b, snapshot, as_of=as_of, horizon_days=horizon_days, target=targets.get(b.app), index=index
        )
        for b in bundles
    ]
    owned = {
        (b.account.name.lower(), b.deployment.lower())
        for b in bundles
        if b.account is not None and b.deployment is not None
    }
    # a recorded deployment carries no location; an account a bundle names has the bundle's location
    # catalogs live as long as the snapshot, so id(catalog) in the cache key is stable for this scan
    cache: dict[tuple[object, ...], tuple[list[TargetCandidate], list[RejectedTarget]]] = {}
    known = {b.account.name.lower(): b.location for b in bundles if b.account is not None and b.location}
    for dep in snapshot.deployments or []:
        if _owner_key(dep) in owned:
            continue
        location = snapshot.location_of(dep.account) or known.get(dep.account.name.lower())
        row = assess(
            None,
            dep,
            snapshot.catalog_for(location),
            as_of=as_of,
            horizon_days=horizon_days,
            target_cache=cache,
        )
        rows.append(row.model_copy(update={"location": location}))
    rows.sort(key=lambda r: (not r.managed, *r.urgency_key()))
    return ScanReport(
        as_of=as_of, horizon_days=horizon_days, origin=snapshot.origin, sources=snapshot.sources, rows=rows
    )


def plan_migration(
    bundle: BundleRef,
    snapshot: FleetSnapshot,
    families: FamilyTable,
    *,
    as_of: datetime,
    target: ModelRef | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> MigrationPlan:
    """Assess ``bundle`` and build its migration plan from the same snapshot (pure; changes nothing)."""
    assessment = assess_bundle(
        bundle, snapshot, as_of=ensure_utc(as_of), horizon_days=horizon_days, target=target
    )
    return build_plan(
        bundle,
        assessment,
        snapshot.catalog_for(bundle.location),
        snapshot.usages_for(bundle.location),
        families,
    )


def parse_target(value: str) -> ModelRef:
    """``NAME@VERSION`` (or ``NAME``) as a ModelRef; a malformed value is a ConfigError naming the format."""
    name, _, version = value.strip().partition("@")
    if not name or (value.count("@") > 1) or ("@" in value and not version):
        raise ConfigError(f"--target {value!r}: expected NAME@VERSION, e.g. gpt-4o@2024-11-20")
    return ModelRef(name=name, version=version or None)
