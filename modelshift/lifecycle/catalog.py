"""Reading a location's catalog: find an entry, order versions, effective retirement, fine-tunability."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from modelshift.platforms.base import CatalogModel, LifecycleStatus

#: lifecycle states that count as generally available when choosing a target
GA = (LifecycleStatus.GENERALLY_AVAILABLE, LifecycleStatus.STABLE)


def same_name(a: str | None, b: str | None) -> bool:
    """Case-insensitive equality of model names or versions (None equals the empty string)."""
    return (a or "").lower() == (b or "").lower()


def find_catalog_entry(
    catalog: Sequence[CatalogModel], name: str, version: str | None
) -> CatalogModel | None:
    """The catalog entry of ``name@version``; a fine-tuned id ``<base>-<version>.ft-<hex>`` finds its base."""
    for entry in catalog:
        if same_name(entry.model.name, name) and (version is None or same_name(entry.model.version, version)):
            return entry
    if ".ft-" in name:
        base = name.split(".ft-", 1)[0].lower()
        for entry in catalog:
            if f"{entry.model.name}-{entry.model.version}".lower() == base:
                return entry
    return None


_DATE_VERSION = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def version_order_key(entry: CatalogModel) -> tuple[float, str]:
    """Newest-last ordering of versions: an ISO-date version is its date; others (``0613``, ``0125``, ``1``)
    carry no year, so the later inference retirement stands in (a newer version retires later)."""
    version = entry.model.version or ""
    match = _DATE_VERSION.match(version)
    if match:
        when = datetime(int(match[1]), int(match[2]), int(match[3])).timestamp()
    elif entry.inference_retirement is not None:
        when = entry.inference_retirement.timestamp()
    else:
        when = float("-inf")
    return (when, version)


def fine_tunable(entry: CatalogModel) -> bool:
    """True when the catalog says the model can be fine-tuned."""
    return entry.capabilities.get("fineTune", "").lower() == "true" or bool(entry.fine_tune_capabilities)


def effective_retirement(
    entry: CatalogModel | None, sku_name: str | None
) -> tuple[datetime | None, datetime | None, str | None]:
    """(effective date, the SKU's own date, which one won): the SKU's deprecationDate wins when earlier."""
    if entry is None:
        return None, None, None
    sku = entry.sku(sku_name) if sku_name else None
    sku_date = sku.deprecation_date if sku is not None else None
    inference = entry.inference_retirement
    if sku_date is not None and (inference is None or sku_date < inference):
        return sku_date, sku_date, f"skus[{sku_name}].deprecationDate"
    if inference is not None:
        return inference, sku_date, "deprecation.inference"
    return None, sku_date, None


def is_retired(entry: CatalogModel, as_of: datetime, sku_name: str | None) -> bool:
    """True when the catalog marks the version Deprecated or its effective date has passed."""
    when, _, _ = effective_retirement(entry, sku_name)
    return entry.lifecycle_status == LifecycleStatus.DEPRECATED or (when is not None and when <= as_of)
