"""Pydantic models of the Azure payloads we read (ARM and data plane), tolerant by design.

Every model ignores unknown fields (newer api-versions add them) and makes optional whatever older
api-versions leave out. ARM dates are ISO-8601 strings; data-plane dates are unix seconds; both become
aware UTC datetimes. ``to_result()`` converts a wire model into the plain results of
:mod:`modelshift.platforms.base`, so nothing of this module crosses an interface.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from modelshift.platforms import base


def _to_datetime(value: Any) -> Any:
    """Unix seconds (int/float/digit string) or ISO-8601 (with or without zone) → aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


AwareDatetime = Annotated[datetime | None, BeforeValidator(_to_datetime)]
RequiredDatetime = Annotated[datetime, BeforeValidator(_to_datetime)]


class Wire(BaseModel):
    """Base of every wire model: unknown fields are ignored, aliases are the JSON names."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


T = TypeVar("T", bound=BaseModel)


class ArmPage(Wire, Generic[T]):
    """One page of an ARM list: ``{value: [...], nextLink}``."""

    value: list[T] = Field(default_factory=list)
    next_link: str | None = Field(default=None, alias="nextLink")


class ArmError(Wire):
    """The inner ``error`` object of ARM and data-plane error bodies."""

    code: str | None = None
    message: str | None = None
    target: str | None = None
    details: list[ArmError] = Field(default_factory=list)


class ErrorBody(Wire):
    """``{"error": {...}}``."""

    error: ArmError


# ------------------------------------------------------------------------------------------- ARM


class ArmModelRef(Wire):
    """DeploymentModel: ``{format, name, version, publisher, source}``."""

    format: str | None = None
    name: str
    version: str | None = None
    publisher: str | None = None
    source: str | None = None

    def to_result(self) -> base.ModelRef:
        """As a :class:`~modelshift.platforms.base.ModelRef`."""
        return base.ModelRef(format=self.format or "OpenAI", name=self.name, version=self.version)


class ArmDeprecation(Wire):
    """``deprecation{fineTune, inference, deprecationStatus}`` (ISO strings)."""

    fine_tune: AwareDatetime = Field(default=None, alias="fineTune")
    inference: AwareDatetime = None
    deprecation_status: str | None = Field(default=None, alias="deprecationStatus")


class ArmReplacementConfig(Wire):
    """``replacementConfig`` (newer api-versions)."""

    target_model_name: str | None = Field(default=None, alias="targetModelName")
    target_model_version: str | None = Field(default=None, alias="targetModelVersion")
    auto_upgrade_start_date: AwareDatetime = Field(default=None, alias="autoUpgradeStartDate")
    upgrade_on_expiry_lead_time_days: int | None = Field(default=None, alias="upgradeOnExpiryLeadTimeDays")


class ArmSkuCapacity(Wire):
    """``skus[].capacity``."""

    default: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    step: int | None = None


class ArmModelSku(Wire):
    """``skus[]`` of a catalog model, with its own ``deprecationDate``."""

    name: str
    usage_name: str | None = Field(default=None, alias="usageName")
    deprecation_date: AwareDatetime = Field(default=None, alias="deprecationDate")
    capacity: ArmSkuCapacity | None = None

    def to_result(self) -> base.ModelSku:
        """As a :class:`~modelshift.platforms.base.ModelSku`."""
        cap = self.capacity or ArmSkuCapacity()
        return base.ModelSku(
            name=self.name,
            usage_name=self.usage_name,
            deprecation_date=self.deprecation_date,
            capacity_default=cap.default,
            capacity_min=cap.minimum,
            capacity_max=cap.maximum,
        )


class ArmAccountModel(ArmModelRef):
    """AccountModel: a DeploymentModel plus lifecycle, deprecation, replacement and SKUs."""

    base_model: ArmModelRef | None = Field(default=None, alias="baseModel")
    is_default_version: bool | None = Field(default=None, alias="isDefaultVersion")
    max_capacity: int | None = Field(default=None, alias="maxCapacity")
    capabilities: dict[str, str] = Field(default_factory=dict)
    finetune_capabilities: dict[str, str] = Field(default_factory=dict, alias="finetuneCapabilities")
    deprecation: ArmDeprecation | None = None
    lifecycle_status: str | None = Field(default=None, alias="lifecycleStatus")
    replacement_config: ArmReplacementConfig | None = Field(default=None, alias="replacementConfig")
    skus: list[ArmModelSku] = Field(default_factory=list)

    def to_result(self, kind: str | None = None) -> base.CatalogModel:  # type: ignore[override]
        """As a :class:`~modelshift.platforms.base.CatalogModel`."""
        dep = self.deprecation or ArmDeprecation()
        repl = self.replacement_config
        replacement = None
        if repl is not None and repl.target_model_name:
            replacement = base.Replacement(
                model=base.ModelRef(
                    format=self.format or "OpenAI",
                    name=repl.target_model_name,
                    version=repl.target_model_version,
                ),
                auto_upgrade_start=repl.auto_upgrade_start_date,
                upgrade_on_expiry_lead_time_days=repl.upgrade_on_expiry_lead_time_days,
            )
        status = base.LifecycleStatus.parse(self.lifecycle_status)
        return base.CatalogModel(
            model=super().to_result(),
            kind=kind,
            lifecycle_status=status,
            lifecycle_status_raw=self.lifecycle_status,
            is_default_version=bool(self.is_default_version),
            inference_retirement=dep.inference,
            fine_tune_retirement=dep.fine_tune,
            deprecation_status=dep.deprecation_status,
            replacement=replacement,
            skus=tuple(s.to_result() for s in self.skus),
            capabilities={k: str(v) for k, v in self.capabilities.items()},
            fine_tune_capabilities={k: str(v) for k, v in self.finetune_capabilities.items()},
            max_capacity=self.max_capacity,
            base_model=self.base_model.to_result() if self.base_model else None,
        )


class ArmLocationModel(Wire):
    """One item of ``locations/{loc}/models``: ``{kind, skuName, model: AccountModel}``."""

    kind: str | None = None
    sku_name: str | None = Field(default=None, alias="skuName")
    model: ArmAccountModel

    def to_result(self) -> base.CatalogModel:
        """As a :class:`~modelshift.platforms.base.CatalogModel`."""
        return self.model.to_result(kind=self.kind)


class ArmSku(Wire):
    """A deployment's ``sku``; capacity may be absent."""

    name: str
    capacity: int | None = None
    tier: str | None = None


class ArmDeploymentProperties(Wire):
    """Deployment ``properties`` (the fields modelshift reads)."""

    model: ArmModelRef | None = None
    provisioning_state: str | None = Field(default=None, alias="provisioningState")
    version_upgrade_option: str | None = Field(default=None, alias="versionUpgradeOption")
    deployment_state: str | None = Field(default=None, alias="deploymentState")
    rai_policy_name: str | None = Field(default=None, alias="raiPolicyName")
    current_capacity: int | None = Field(default=None, alias="currentCapacity")
    scale_settings: dict[str, Any] | None = Field(default=None, alias="scaleSettings")


class ArmDeployment(Wire):
    """A deployment resource."""

    id: str | None = None
    name: str
    type: str | None = None
    sku: ArmSku | None = None
    properties: ArmDeploymentProperties = Field(default_factory=ArmDeploymentProperties)

    def to_result(self, account: base.AccountRef) -> base.Deployment:
        """As a :class:`~modelshift.platforms.base.Deployment` of ``account``."""
        props = self.properties
        vuo: base.VersionUpgradeOption | None
        try:
            vuo = (
                base.VersionUpgradeOption(props.version_upgrade_option)
                if props.version_upgrade_option
                else None
            )
        except ValueError:
            vuo = None  # a value a newer api-version added; treat as "not pinned" (the cautious reading)
        capacity = self.sku.capacity if self.sku and self.sku.capacity is not None else props.current_capacity
        if capacity is None and props.scale_settings:
            capacity = props.scale_settings.get("capacity")
        return base.Deployment(
            name=self.name,
            account=account,
            model=props.model.to_result() if props.model else base.ModelRef(name="unknown"),
            sku_name=self.sku.name if self.sku else "Standard",
            capacity=capacity,
            provisioning_state=base.ProvisioningState.parse(props.provisioning_state),
            version_upgrade_option=vuo,
            deployment_state=props.deployment_state,
            rai_policy_name=props.rai_policy_name,
        )


class ArmAsyncOperation(Wire):
    """Body of an ``Azure-AsyncOperation`` status URL."""

    status: str | None = None
    error: ArmError | None = None


class ArmUsageName(Wire):
    """``usages[].name``."""

    value: str
    localized_value: str | None = Field(default=None, alias="localizedValue")


class ArmUsage(Wire):
    """One quota usage line."""

    name: ArmUsageName
    current_value: float = Field(default=0.0, alias="currentValue")
    limit: float = 0.0
    unit: str | None = None

    def to_result(self) -> base.QuotaUsage:
        """As a :class:`~modelshift.platforms.base.QuotaUsage`."""
        return base.QuotaUsage(
            name=self.name.value, current_value=self.current_value, limit=self.limit, unit=self.unit
        )


class ArmSubscription(Wire):
    """An item of ``GET /subscriptions``."""

    subscription_id: str = Field(alias="subscriptionId")
    display_name: str | None = Field(default=None, alias="displayName")
    state: str | None = None

    def to_result(self) -> base.Subscription:
        """As a :class:`~modelshift.platforms.base.Subscription`."""
        return base.Subscription(
            subscription_id=self.subscription_id, display_name=self.display_name, state=self.state
        )


class ArmAccountProperties(Wire):
    """Account ``properties`` (endpoint is the data-plane base URL)."""

    endpoint: str | None = None
    provisioning_state: str | None = Field(default=None, alias="provisioningState")


class ArmAccount(Wire):
    """A Cognitive Services account resource."""

    id: str
    name: str
    location: str = ""
    kind: str | None = None
    sku: ArmSku | None = None
    properties: ArmAccountProperties = Field(default_factory=ArmAccountProperties)

    def to_result(self) -> base.Account:
        """As a :class:`~modelshift.platforms.base.Account` (subscription and group read from ``id``)."""
        parts = self.id.strip("/").split("/")
        lowered = [p.lower() for p in parts]
        sub = parts[lowered.index("subscriptions") + 1] if "subscriptions" in lowered else ""
        rg = parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered else ""
        return base.Account(
            ref=base.AccountRef(subscription_id=sub, resource_group=rg, name=self.name),
            location=self.location,
            kind=self.kind,
            endpoint=self.properties.endpoint,
            sku_name=self.sku.name if self.sku else None,
        )
