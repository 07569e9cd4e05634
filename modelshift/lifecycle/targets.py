"""Target candidates, in order: explicit target; else ``replacementConfig``; else the newest GA default
version of the same model name; else the newest GA version. Each candidate says why it was chosen."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from modelshift.lifecycle.catalog import (
    GA,
    find_catalog_entry,
    fine_tunable,
    is_retired,
    same_name,
    version_order_key,
)
from modelshift.platforms.base import CatalogModel, LifecycleStatus, ModelRef

TargetSource = Literal["explicit", "replacement_config", "default_version", "newest_ga"]


class TargetCandidate(BaseModel):
    """A model version the bundle could move to, and why it was chosen at this rank."""

    model_config = ConfigDict(frozen=True)

    model: ModelRef
    source: TargetSource
    why: str
    in_catalog: bool
    lifecycle_status: LifecycleStatus | None = None
    inference_retirement: datetime | None = None
    fine_tunable: bool | None = None


class RejectedTarget(BaseModel):
    """A version that was considered and left out, and why."""

    model_config = ConfigDict(frozen=True)

    model: ModelRef
    why: str


def _candidate(
    model: ModelRef, source: TargetSource, why: str, entry: CatalogModel | None
) -> TargetCandidate:
    return TargetCandidate(
        model=entry.model if entry is not None else model,
        source=source,
        why=why,
        in_catalog=entry is not None,
        lifecycle_status=entry.lifecycle_status if entry is not None else None,
        inference_retirement=entry.inference_retirement if entry is not None else None,
        fine_tunable=fine_tunable(entry) if entry is not None else None,
    )


def rank_targets(
    current: ModelRef,
    current_entry: CatalogModel | None,
    catalog: Sequence[CatalogModel],
    *,
    as_of: datetime,
    sku_name: str | None,
    explicit: ModelRef | None = None,
    needs_fine_tune: bool = False,
) -> tuple[list[TargetCandidate], list[RejectedTarget]]:
    """Ranked candidates (deduplicated, the first reason kept and later ones appended) and the rejected."""
    raw: list[TargetCandidate] = []
    if explicit is not None:
        entry = find_catalog_entry(catalog, explicit.name, explicit.version)
        why = "named explicitly (--target)"
        if entry is None:
            why += "; not in this location's catalog, so its dates and capabilities are unknown"
        raw.append(_candidate(explicit, "explicit", why, entry))
    repl = current_entry.replacement if current_entry is not None else None
    if repl is not None:
        entry = find_catalog_entry(catalog, repl.model.name, repl.model.version)
        if entry is None and repl.model.version is None:
            entry = _default_of(catalog, repl.model.name)
        why = f"Azure's replacementConfig for {current} names it"
        raw.append(_candidate(repl.model, "replacement_config", why, entry))
    siblings = [e for e in catalog if same_name(e.model.name, current.name) and e.lifecycle_status in GA]
    defaults = sorted((e for e in siblings if e.is_default_version), key=version_order_key)
    if defaults:
        newest = defaults[-1]
        why = f"the newest GA default version of {current.name}"
        raw.append(_candidate(newest.model, "default_version", why, newest))
    if siblings:
        newest = sorted(siblings, key=version_order_key)[-1]
        raw.append(_candidate(newest.model, "newest_ga", f"the newest GA version of {current.name}", newest))

    targets: list[TargetCandidate] = []
    rejected: list[RejectedTarget] = []
    seen: dict[tuple[str, str], int] = {}
    for cand in raw:
        key = (cand.model.name.lower(), (cand.model.version or "").lower())
        if key in seen:
            i = seen[key]
            targets[i] = targets[i].model_copy(update={"why": f"{targets[i].why}; also {cand.why}"})
            continue
        reason = _reject_reason(cand, current, catalog, as_of=as_of, sku_name=sku_name, ft=needs_fine_tune)
        if reason is not None:
            if all(r.model != cand.model for r in rejected):
                rejected.append(RejectedTarget(model=cand.model, why=reason))
            continue
        seen[key] = len(targets)
        targets.append(cand)
    return targets, rejected


def _default_of(catalog: Sequence[CatalogModel], name: str) -> CatalogModel | None:
    defaults = [e for e in catalog if same_name(e.model.name, name) and e.is_default_version]
    return sorted(defaults, key=version_order_key)[-1] if defaults else None


def _reject_reason(
    cand: TargetCandidate,
    current: ModelRef,
    catalog: Sequence[CatalogModel],
    *,
    as_of: datetime,
    sku_name: str | None,
    ft: bool,
) -> str | None:
    if same_name(cand.model.name, current.name) and same_name(cand.model.version, current.version):
        return "it is the version the bundle runs now"
    if cand.source == "explicit" and not cand.in_catalog:
        return None  # the user asked for it: keep it, its `why` says what is unknown
    entry = find_catalog_entry(catalog, cand.model.name, cand.model.version)
    if entry is None:
        return "not offered in this location's catalog"
    if is_retired(entry, as_of, sku_name):
        return "retired (or past its retirement date) on the assessment date"
    if ft and not fine_tunable(entry):
        return "the bundle is fine-tuned and this model cannot be fine-tuned (capabilities.fineTune)"
    return None
