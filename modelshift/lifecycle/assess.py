"""Assessment: for one production bundle (or an unmanaged deployment), how its model stands on ``as_of``.

Pure: the deployment (ARM, or None when it is missing) and the location's catalog come in as values, the
date comes in as ``as_of``; nothing here reads the network or the wall clock (DESIGN §2, Assess).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelshift.clock import ensure_utc
from modelshift.lifecycle.bundleref import BundleRef
from modelshift.lifecycle.catalog import effective_retirement, find_catalog_entry, version_order_key
from modelshift.lifecycle.targets import RejectedTarget, TargetCandidate, rank_targets
from modelshift.platforms.base import (
    CatalogModel,
    Deployment,
    LifecycleStatus,
    ModelRef,
    VersionUpgradeOption,
)


class AssessmentStatus(StrEnum):
    """Where a bundle's model stands; :data:`URGENCY` orders them, most urgent first."""

    RETIRED = "retired"
    DEPLOYMENT_MISSING = "deployment_missing"
    RETIRING = "retiring"
    UNKNOWN_MODEL = "unknown_model"
    DEPRECATING = "deprecating"
    UPGRADE_AVAILABLE = "upgrade_available"
    OK = "ok"


URGENCY: dict[AssessmentStatus, int] = {status: rank for rank, status in enumerate(AssessmentStatus)}


class Risk(BaseModel):
    """Something the platform will do on its own, e.g. a pending auto-upgrade, with its date if known."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["auto_upgrade"]
    date: datetime | None
    to: ModelRef | None
    message: str


class Finding(BaseModel):
    """An observation a person should read (drift, unpinned version, missing data), with a fixed code."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class Assessment(BaseModel):
    """The result of :func:`assess`: status, dates, risks, findings and ranked target candidates."""

    model_config = ConfigDict(frozen=True)

    app: str | None
    bundle_version: str | None = None
    bundle_digest: str | None = None
    managed: bool
    fine_tuned: bool = False
    pinned_model: ModelRef
    deployed_model: ModelRef | None = None
    deployment: str | None = None
    account: str | None = None
    location: str | None = None
    sku_name: str | None = None
    capacity: int | None = None
    as_of: datetime
    horizon_days: int
    status: AssessmentStatus
    lifecycle_status: LifecycleStatus | None = None
    inference_retirement: datetime | None = None
    sku_retirement: datetime | None = None
    fine_tune_retirement: datetime | None = None
    #: the earlier of the catalog's inference date and the deployment SKU's own deprecationDate
    retirement: datetime | None = None
    retirement_source: str | None = None
    days_left: int | None = None
    version_upgrade_option: VersionUpgradeOption | None = None
    risks: list[Risk] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    targets: list[TargetCandidate] = Field(default_factory=list)
    rejected_targets: list[RejectedTarget] = Field(default_factory=list)

    @property
    def target(self) -> TargetCandidate | None:
        """The first-ranked target candidate."""
        return self.targets[0] if self.targets else None

    def urgency_key(self) -> tuple[int, float, str]:
        """Sort key: status urgency, then the soonest date (retirement or risk), then the name."""
        dates = [d for d in [self.retirement, *(r.date for r in self.risks)] if d is not None]
        soonest = min(dates).timestamp() if dates else float("inf")
        return (
            URGENCY[self.status],
            soonest,
            f"{self.app or ''}/{self.account or ''}/{self.deployment or ''}",
        )


# ------------------------------------------------------------------------------------------ assess


def _risks(
    deployment: Deployment | None,
    entry: CatalogModel | None,
    catalog: Sequence[CatalogModel],
    retirement: datetime | None,
) -> tuple[list[Risk], list[Finding]]:
    """Pending platform auto-upgrades (risks) and an unpinned or unreported upgrade option (findings)."""
    risks: list[Risk] = []
    findings: list[Finding] = []
    if deployment is None:
        return risks, findings
    vuo = deployment.version_upgrade_option
    where = f"deployment {deployment.name} in account {deployment.account.name}"
    pin = f"set versionUpgradeOption NoAutoUpgrade on {deployment.name} so only a tested migration changes it"
    if vuo is None:
        findings.append(
            Finding(
                code="upgrade_option_unknown", message=f"{where} does not report versionUpgradeOption; {pin}"
            )
        )
        return risks, findings
    if vuo == VersionUpgradeOption.NO_AUTO_UPGRADE:
        return risks, findings
    findings.append(Finding(code="not_pinned", message=f"{where} uses {vuo.value}; {pin}"))
    repl = entry.replacement if entry is not None else None
    current = deployment.model
    if vuo == VersionUpgradeOption.ONCE_NEW_DEFAULT_VERSION_AVAILABLE:
        newer_default = sorted(
            (
                e
                for e in catalog
                if e.is_default_version
                and e.model.name.lower() == current.name.lower()
                and e.model.version != current.version
            ),
            key=version_order_key,
        )
        to = repl.model if repl is not None else (newer_default[-1].model if newer_default else None)
        when = repl.auto_upgrade_start if repl is not None else None
        if when is not None or newer_default:
            at = f"from {when.date().isoformat()}" if when is not None else "whenever Azure applies it"
            risks.append(
                Risk(
                    kind="auto_upgrade",
                    date=when,
                    to=to,
                    message=f"Azure will upgrade {where} to {to} {at} "
                    f"(OnceNewDefaultVersionAvailable); {pin}",
                )
            )
    elif vuo == VersionUpgradeOption.ONCE_CURRENT_VERSION_EXPIRED and retirement is not None:
        lead = repl.upgrade_on_expiry_lead_time_days if repl is not None else None
        when = retirement - timedelta(days=lead) if lead else retirement
        to = repl.model if repl is not None else None
        lead_text = f", {lead} days before retirement" if lead else " at retirement"
        risks.append(
            Risk(
                kind="auto_upgrade",
                date=when,
                to=to,
                message=f"Azure will upgrade {where} to {to or 'the default version'} on "
                f"{when.date().isoformat()}{lead_text} (OnceCurrentVersionExpired); {pin}",
            )
        )
    return risks, findings


def _drift(bundle: BundleRef, deployment: Deployment) -> Finding | None:
    """The deployed model differs from the one the bundle pins (a fine-tuned bundle pins its ft model)."""
    deployed = deployment.model
    if bundle.fine_tuned:
        expected = bundle.fine_tuned_model
        if expected is None or deployed.name.lower() == expected.lower():
            return None
        want = expected
    else:
        if deployed.name.lower() == bundle.model.name.lower() and (deployed.version or "") == (
            bundle.model.version or ""
        ):
            return None
        want = str(bundle.model)
    return Finding(
        code="drift",
        message=f"deployment {deployment.name} serves {deployed}, but bundle {bundle.app}@{bundle.version} "
        f"pins {want}; the tested combination is not what runs. Redeploy the pinned model or migrate",
    )


def _days_left(when: datetime | None, as_of: datetime) -> int | None:
    return None if when is None else (when - as_of).days


def assess(
    bundle: BundleRef | None,
    deployment: Deployment | None,
    catalog: Sequence[CatalogModel],
    *,
    as_of: datetime,
    horizon_days: int = 90,
    target: ModelRef | None = None,
    deployment_observed: bool = True,
    target_cache: dict[tuple[object, ...], tuple[list[TargetCandidate], list[RejectedTarget]]] | None = None,
) -> Assessment:
    """Assess a production bundle (or, with ``bundle=None``, an unmanaged ``deployment``) on ``as_of``.

    ``deployment`` None with ``deployment_observed`` means the deployment is missing; with
    ``deployment_observed=False`` (a recording without deployments) the pinned model is assessed alone.
    ``catalog`` is the model list of the deployment's location. A fleet scan passes ``target_cache`` (one
    dict per scan): the ranking depends only on the key below, and 10,000 deployments share a few dozen keys.
    """
    as_of = ensure_utc(as_of)
    if bundle is None and deployment is None:
        raise ValueError("assess() needs a bundle or a deployment")  # a programming error, not user input
    findings: list[Finding] = []
    if bundle is not None:
        pinned = bundle.model
        sku = bundle.manifest.model.sku
        sku_name = deployment.sku_name if deployment is not None else (sku.name if sku else None)
        fine_tuned = bundle.fine_tuned
        if deployment is not None:
            drift = _drift(bundle, deployment)
            if drift is not None:
                findings.append(drift)
        elif not deployment_observed:
            findings.append(
                Finding(
                    code="deployment_not_recorded",
                    message=f"no deployment list was read for account {bundle.manifest.model.account}; the "
                    "pinned model was assessed, drift and auto-upgrade were not checked (pass --deployments)",
                )
            )
    else:
        assert deployment is not None
        pinned, sku_name = deployment.model, deployment.sku_name
        fine_tuned = ".ft-" in deployment.model.name
    entry = find_catalog_entry(catalog, pinned.name, pinned.version)
    retirement, sku_date, retirement_source = effective_retirement(entry, sku_name)
    days_left = _days_left(retirement, as_of)
    risks, risk_findings = _risks(deployment, entry, catalog, retirement)
    findings.extend(risk_findings)
    current_for_targets = entry.model if entry is not None else pinned
    key = (id(catalog), str(current_for_targets), sku_name, str(target) if target else None, fine_tuned)
    cached = target_cache.get(key) if target_cache is not None else None
    if cached is None:
        cached = rank_targets(
            current_for_targets,
            entry,
            catalog,
            as_of=as_of,
            sku_name=sku_name,
            explicit=target,
            needs_fine_tune=fine_tuned,
        )
        if target_cache is not None:
            target_cache[key] = cached
    targets, rejected = cached
    if fine_tuned and entry is not None and entry.fine_tune_retirement is not None:
        ft_days = _days_left(entry.fine_tune_retirement, as_of)
        if ft_days is not None and ft_days <= horizon_days:
            findings.append(
                Finding(
                    code="fine_tune_retiring",
                    message=f"fine-tuning on {pinned} ends {entry.fine_tune_retirement.date().isoformat()} "
                    f"({ft_days} days); re-run the fine-tune on a new base before inference retires",
                )
            )
    if entry is None:
        where = f"location {bundle.location}" if bundle is not None and bundle.location else "its location"
        findings.append(
            Finding(
                code="not_in_catalog",
                message=f"{pinned} is not in the catalog of {where}; check the name/version or the "
                "recorded catalog",
            )
        )
    status = _status(
        entry=entry,
        as_of=as_of,
        deployment_missing=bundle is not None and deployment is None and deployment_observed,
        retirement=retirement,
        days_left=days_left,
        horizon_days=horizon_days,
        has_target=bool(targets),
    )
    return Assessment(
        app=bundle.app if bundle is not None else None,
        bundle_version=bundle.version if bundle is not None else None,
        bundle_digest=bundle.digest if bundle is not None else None,
        managed=bundle is not None,
        fine_tuned=fine_tuned,
        pinned_model=pinned,
        deployed_model=deployment.model if deployment is not None else None,
        deployment=deployment.name if deployment is not None else (bundle.deployment if bundle else None),
        account=deployment.account.name
        if deployment is not None
        else (bundle.manifest.model.account if bundle else None),
        location=bundle.location if bundle is not None else None,
        sku_name=sku_name,
        capacity=deployment.capacity
        if deployment is not None
        else (bundle.manifest.model.sku.capacity if bundle and bundle.manifest.model.sku else None),
        as_of=as_of,
        horizon_days=horizon_days,
        status=status,
        lifecycle_status=entry.lifecycle_status if entry is not None else None,
        inference_retirement=entry.inference_retirement if entry is not None else None,
        sku_retirement=sku_date,
        fine_tune_retirement=entry.fine_tune_retirement if entry is not None else None,
        retirement=retirement,
        retirement_source=retirement_source,
        days_left=days_left,
        version_upgrade_option=deployment.version_upgrade_option if deployment is not None else None,
        risks=risks,
        findings=findings,
        targets=targets,
        rejected_targets=rejected,
    )


def _status(
    *,
    entry: CatalogModel | None,
    as_of: datetime,
    deployment_missing: bool,
    retirement: datetime | None,
    days_left: int | None,
    horizon_days: int,
    has_target: bool,
) -> AssessmentStatus:
    """Worst first: retired, missing deployment, retiring within the horizon, unknown, deprecating, ..."""
    retired = entry is not None and (
        entry.lifecycle_status == LifecycleStatus.DEPRECATED
        or (retirement is not None and retirement <= as_of)
    )
    if retired:
        return AssessmentStatus.RETIRED
    if deployment_missing:
        return AssessmentStatus.DEPLOYMENT_MISSING
    if entry is None:
        return AssessmentStatus.UNKNOWN_MODEL
    if days_left is not None and days_left <= horizon_days:
        return AssessmentStatus.RETIRING
    if entry.lifecycle_status in (LifecycleStatus.DEPRECATING, LifecycleStatus.LEGACY):
        return AssessmentStatus.DEPRECATING
    if has_target:
        return AssessmentStatus.UPGRADE_AVAILABLE
    return AssessmentStatus.OK
