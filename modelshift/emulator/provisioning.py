"""Validation of deployment PUTs as Azure does it: catalog, lifecycle, SKU, capacity and quota."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelshift.emulator.scenario import ModelRef
from modelshift.emulator.state import Account, World
from modelshift.emulator.web import AzureHTTPError

_UPGRADE_OPTIONS = ("OnceNewDefaultVersionAvailable", "OnceCurrentVersionExpired", "NoAutoUpgrade")


@dataclass(frozen=True)
class PutSpec:
    """A validated deployment PUT."""

    model: ModelRef
    sku_name: str
    capacity: int
    upgrade: str


def _describe(model: ModelRef) -> str:
    return (
        f"'Publisher: , Format: {model.format}, Name: {model.name}, Version: {model.version}, "
        "Source: , SourceAccount: '"
    )


def parse_model(body: dict[str, Any]) -> ModelRef:
    """``properties.model`` of a PUT body; 400 when missing or malformed."""
    props = body.get("properties")
    model = props.get("model") if isinstance(props, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not model["name"]:
        raise AzureHTTPError(
            400,
            "InvalidResourceProperties",
            "The deployment body needs properties.model with at least 'format' and 'name'.",
            target="properties.model",
        )
    return ModelRef(
        format=str(model.get("format") or "OpenAI"),
        name=model["name"],
        version=str(model.get("version") or ""),
    )


def validate_put(world: World, account: Account, name: str, body: Any) -> PutSpec:
    """Check a PUT body against the catalog, lifecycle, SKU limits and quota; 400 with Azure's codes."""
    if not isinstance(body, dict):
        raise AzureHTTPError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    model = parse_model(body)
    sku = body.get("sku")
    if not isinstance(sku, dict) or not isinstance(sku.get("name"), str):
        raise AzureHTTPError(400, "InvalidResourceProperties", "The deployment needs sku.name.", target="sku")
    capacity = sku.get("capacity", 1)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise AzureHTTPError(
            400, "InvalidCapacity", "sku.capacity must be a positive integer.", target="sku.capacity"
        )
    upgrade = (body.get("properties") or {}).get("versionUpgradeOption") or "OnceNewDefaultVersionAvailable"
    if upgrade not in _UPGRADE_OPTIONS:
        raise AzureHTTPError(
            400,
            "InvalidResourceProperties",
            f"versionUpgradeOption '{upgrade}' is not one of {', '.join(_UPGRADE_OPTIONS)}.",
            target="properties.versionUpgradeOption",
        )

    world.clock()  # read once so all checks below use one consistent time
    account.finetune.settle(world.clock())
    fine_tuned = account.finetune.models.get(model.name)
    if fine_tuned is not None:
        if model.version not in ("", "1"):
            raise AzureHTTPError(
                400,
                "DeploymentModelNotSupported",
                f"The fine-tuned model {model.name} has version '1' only, not '{model.version}'.",
            )
        model = ModelRef(format="OpenAI", name=model.name, version="1")
        base = world.catalog_for_base_id(fine_tuned.base_model)
    else:
        base = world.catalog_model(model.name, model.version or None, account.location)
        if base is not None and not model.version:
            model = ModelRef(format=model.format, name=model.name, version=base.version)
    if base is None or base.format != model.format:
        raise AzureHTTPError(
            400,
            "DeploymentModelNotSupported",
            f"The model {_describe(model)} is not supported in location '{account.location}' for account "
            f"'{account.name}'. List the location's models to see what can be deployed.",
        )
    if base.kind == "AIServices" and account.kind != "AIServices":
        raise AzureHTTPError(
            400,
            "DeploymentModelNotSupported",
            f"The model {_describe(model)} can only be deployed into an AIServices account; "
            f"'{account.name}' is of kind {account.kind}.",
        )
    now = world.clock()
    retired_on = base.deprecation.inference
    if base.lifecycle_status == "Deprecated" or (retired_on is not None and now >= retired_on):
        since = (retired_on or now).strftime("%m/%d/%Y %H:%M:%S")
        raise AzureHTTPError(
            400, "ServiceModelDeprecated", f"The model {_describe(model)} has been deprecated since {since}."
        )
    catalog_sku = world.catalog_sku(base, sku["name"]) if fine_tuned is None else None
    if fine_tuned is None:
        if catalog_sku is None:
            raise AzureHTTPError(
                400,
                "InvalidResourceProperties",
                f"The specified SKU '{sku['name']}' for model '{base.name} {base.version}' is not "
                f"supported in this region '{account.location}'.",
                target="sku.name",
            )
        if catalog_sku.deprecation_date is not None and now >= catalog_sku.deprecation_date:
            raise AzureHTTPError(
                400,
                "ServiceModelDeprecated",
                f"The model {_describe(model)} with SKU '{catalog_sku.name}' has been deprecated since "
                f"{catalog_sku.deprecation_date.strftime('%m/%d/%Y %H:%M:%S')}.",
            )
        if capacity > catalog_sku.capacity.maximum:
            raise AzureHTTPError(
                400,
                "InvalidCapacity",
                f"The capacity {capacity} is above the maximum {catalog_sku.capacity.maximum} of SKU "
                f"'{catalog_sku.name}' for model '{base.name} {base.version}'.",
                target="sku.capacity",
            )
    sku_name = catalog_sku.name if catalog_sku is not None else sku["name"]
    usage = world.usage_name(base, sku_name, fine_tuned=fine_tuned is not None)
    current = world.usage_current(account.subscription, account.location, usage, exclude=(account.name, name))
    limit = world.usage_limit(account.location, usage)
    if current + capacity > limit:
        raise AzureHTTPError(
            400,
            "InsufficientQuota",
            f"This operation require {capacity} new capacity in quota Tokens Per Minute (thousands) - "
            f"{usage}, which is bigger than the current available capacity {max(0, limit - current)}. "
            f"The current quota usage is {current} and the quota limit is {limit} for quota {usage}.",
        )
    return PutSpec(model=model, sku_name=sku_name, capacity=capacity, upgrade=upgrade)
