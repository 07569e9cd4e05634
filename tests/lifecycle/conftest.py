"""Builders for lifecycle tests: catalog entries, deployments and the example bundles as BundleRefs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelshift.bundle import load_bundle
from modelshift.lifecycle import BundleRef, FamilyTable, load_families
from modelshift.platforms.base import (
    AccountRef,
    CatalogModel,
    Deployment,
    LifecycleStatus,
    ModelRef,
    ModelSku,
    Replacement,
    VersionUpgradeOption,
)

REPO = Path(__file__).resolve().parents[2]
AS_OF = datetime(2026, 1, 15, tzinfo=UTC)


def day(text: str) -> datetime:
    """An aware UTC midnight from YYYY-MM-DD."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(
    name: str,
    version: str,
    *,
    status: LifecycleStatus = LifecycleStatus.GENERALLY_AVAILABLE,
    default: bool = False,
    inference: str | None = None,
    fine_tune: str | None = None,
    sku_dates: dict[str, str | None] | None = None,
    replacement: tuple[str, str] | None = None,
    auto_upgrade: str | None = None,
    lead_days: int | None = None,
    caps: dict[str, str] | None = None,
) -> CatalogModel:
    """A catalog entry; ``sku_dates`` maps SKU name -> its own deprecationDate (or None)."""
    skus = tuple(
        ModelSku(name=n, deprecation_date=day(d) if d else None)
        for n, d in (sku_dates or {"Standard": None, "GlobalStandard": None}).items()
    )
    repl = None
    if replacement:
        repl = Replacement(
            model=ModelRef(name=replacement[0], version=replacement[1]),
            auto_upgrade_start=day(auto_upgrade) if auto_upgrade else None,
            upgrade_on_expiry_lead_time_days=lead_days,
        )
    return CatalogModel(
        model=ModelRef(name=name, version=version),
        lifecycle_status=status,
        is_default_version=default,
        inference_retirement=day(inference) if inference else None,
        fine_tune_retirement=day(fine_tune) if fine_tune else None,
        replacement=repl,
        skus=skus,
        capabilities=caps if caps is not None else {"chatCompletion": "true", "fineTune": "true"},
    )


def deployment(
    name: str,
    model: str,
    version: str | None,
    *,
    account: str = "contoso-aoai-eus",
    sku: str = "GlobalStandard",
    capacity: int = 50,
    vuo: VersionUpgradeOption | None = VersionUpgradeOption.NO_AUTO_UPGRADE,
    rg: str = "rg-support",
) -> Deployment:
    """An ARM deployment result."""
    return Deployment(
        name=name,
        account=AccountRef(
            subscription_id="00000000-0000-0000-0000-000000000001", resource_group=rg, name=account
        ),
        model=ModelRef(name=model, version=version),
        sku_name=sku,
        capacity=capacity,
        version_upgrade_option=vuo,
    )


def example(app: str) -> BundleRef:
    """One of the repo's example bundles."""
    return BundleRef.from_bundle(load_bundle(REPO / "bundles" / app / "1.0.0"))


def with_model(bundle: BundleRef, **changes: Any) -> BundleRef:
    """A copy of ``bundle`` with model fields changed (e.g. name/version)."""
    model = bundle.manifest.model.model_copy(update=changes)
    return bundle.model_copy(update={"manifest": bundle.manifest.model_copy(update={"model": model})})


@pytest.fixture(scope="session")
def families() -> FamilyTable:
    """The default family table."""
    return load_families()
