"""The emulator's scenario file: pydantic models (extra=forbid) and a loader whose errors name file and field.

A scenario describes one fake Azure estate: the scenario clock, credentials, subscriptions -> resource
groups -> accounts -> deployments, the model catalog with lifecycle dates, quota per location, and
behaviour profiles (quality, context window, latency, error rate, fine-tune outcome) per model version.
"""

from __future__ import annotations

import math
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelshift.clock import ensure_utc
from modelshift.errors import ScenarioError

#: the scenario that ships inside the package
DEFAULT_SCENARIO_NAME = "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockSpec(_Strict):
    """Where the scenario clock starts and how fast it runs (scenario seconds per real second)."""

    start: datetime
    speed: float = Field(default=1.0, gt=0)

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value)


class AuthSpec(_Strict):
    """Credentials the emulator accepts: data-plane api-keys and bearer tokens (both planes)."""

    api_keys: list[str] = Field(default_factory=lambda: ["emulator-key"], min_length=1)
    bearer_tokens: list[str] = Field(default_factory=lambda: ["emulator-token"], min_length=1)


class LatencySpec(_Strict):
    """A lognormal latency distribution given by its median and 95th percentile (milliseconds)."""

    median_ms: float = Field(default=300.0, gt=0)
    p95_ms: float = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LatencySpec:
        if self.p95_ms < self.median_ms:
            raise ValueError("p95_ms must be >= median_ms")
        return self

    @property
    def sigma(self) -> float:
        """The lognormal sigma that puts p95 where the scenario says (z_0.95 = 1.645)."""
        return math.log(self.p95_ms / self.median_ms) / 1.6448536269514722


class FineTuneOutcome(_Strict):
    """What a fine-tuning job on this base model does: succeed or fail, after how long (scenario clock)."""

    outcome: Literal["succeed", "fail"] = "succeed"
    duration_minutes: float = Field(default=60.0, ge=0)
    queue_minutes: float = Field(default=5.0, ge=0)
    #: answer quality of a model fine-tuned from this base (None: the base model's quality)
    quality: float | None = Field(default=None, ge=0, le=1)


class DegradedSpec(_Strict):
    """How a model version behaves under sustained live load (``BehaviourProfile.degrades_after_requests``).

    Each field that is set replaces the healthy profile's value; unset fields keep it."""

    error_rate: float | None = Field(default=None, ge=0, le=1)
    latency: LatencySpec | None = None
    quality: float | None = Field(default=None, ge=0, le=1)


class BehaviourProfile(_Strict):
    """How a model version behaves in the emulator.

    ``degrades_after_requests: N`` with a ``degraded`` profile makes the version worse under sustained live
    load, deterministically: each deployment of it counts the chat requests it has served, and from request
    ``N + 1`` on it behaves as ``degraded`` says. An offline evaluation (fewer than N calls) sees the healthy
    profile; a canary that keeps sending traffic sees the errors and the latency."""

    quality: float = Field(default=0.9, ge=0, le=1)
    context_window: int = Field(default=128_000, ge=64)
    latency: LatencySpec = Field(default_factory=LatencySpec)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    fine_tune: FineTuneOutcome = Field(default_factory=FineTuneOutcome)
    embedding_dims: int = Field(default=256, ge=8, le=4096)
    degrades_after_requests: int | None = Field(default=None, ge=0)
    degraded: DegradedSpec | None = None

    @model_validator(mode="after")
    def _degradation_pairs(self) -> BehaviourProfile:
        if (self.degrades_after_requests is None) != (self.degraded is None):
            raise ValueError(
                "degrades_after_requests and degraded go together: set both (after how many chat requests "
                "a deployment degrades, and how it behaves then) or neither"
            )
        return self

    def under_load(self, served: int) -> BehaviourProfile:
        """This profile for a deployment's ``served``-th chat request (1-based): degraded past N."""
        if self.degraded is None or self.degrades_after_requests is None:
            return self
        if served <= self.degrades_after_requests:
            return self
        changes = self.degraded.model_dump(exclude_none=True)
        if self.degraded.latency is not None:
            changes["latency"] = self.degraded.latency
        return self.model_copy(update=changes)


class FaultSpec(_Strict):
    """Injected faults for one deployment; rates are probabilities per request."""

    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_503: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_seconds: float = Field(default=30.0, ge=0)
    reset_rate: float = Field(default=0.0, ge=0, le=1)
    provision_fail: bool = False


class ModelRef(_Strict):
    """A deployment's model: format, name and version."""

    format: str = "OpenAI"
    name: str
    version: str


class DeploymentSku(_Strict):
    """A deployment's SKU; capacity is in units of 1000 TPM."""

    name: str = "Standard"
    capacity: int = Field(default=10, ge=1)


class DeploymentSpec(_Strict):
    """A deployment that exists when the scenario starts."""

    name: str
    model: ModelRef
    sku: DeploymentSku = Field(default_factory=DeploymentSku)
    version_upgrade_option: Literal[
        "OnceNewDefaultVersionAvailable", "OnceCurrentVersionExpired", "NoAutoUpgrade"
    ] = "NoAutoUpgrade"
    state: Literal["Running", "Paused"] = "Running"
    profile: str | None = None
    faults: FaultSpec | None = None


class FineTunedModelSpec(_Strict):
    """A fine-tuned model that already exists in an account (``<base>-<version>.ft-<32 hex>``)."""

    id: str
    base_model: str
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value)


class AccountSpec(_Strict):
    """A Microsoft.CognitiveServices account (OpenAI or AIServices kind)."""

    name: str
    location: str
    kind: Literal["OpenAI", "AIServices"] = "OpenAI"
    sku: str = "S0"
    deployments: list[DeploymentSpec] = Field(default_factory=list)
    fine_tuned_models: list[FineTunedModelSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> AccountSpec:
        names = [d.name for d in self.deployments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate deployment names: {', '.join(dupes)}")
        return self


class MaapFineTuneOutcome(_Strict):
    """What an Azure ML (MaaP) fine-tuning job on a catalog model does, on the scenario clock; a ``fail``
    outcome ends the job Failed with ``error_code`` / ``error_message`` in its run-history error."""

    outcome: Literal["succeed", "fail"] = "succeed"
    queue_minutes: float = Field(default=5.0, ge=0)
    duration_minutes: float = Field(default=60.0, ge=0)
    error_code: str = "ExecutionFailed"
    error_message: str = "The fine-tuning job failed (emulator scenario outcome: fail)."


class OnlineDeploymentSpec(_Strict):
    """A managed online deployment under an endpoint when the scenario starts."""

    name: str = Field(min_length=3, max_length=32)
    model: str
    instance_type: str = "Standard_NC24ads_A100_v4"
    instance_count: int = Field(default=1, ge=1)


class OnlineEndpointSpec(_Strict):
    """A managed online endpoint of a workspace, its deployments and its live traffic split."""

    name: str = Field(min_length=3, max_length=32)
    deployments: list[OnlineDeploymentSpec] = Field(default_factory=list)
    traffic: dict[str, int] = Field(default_factory=dict)


class WorkspaceSpec(_Strict):
    """An Azure ML / AI Foundry workspace (Microsoft.MachineLearningServices): its default blob datastore,
    its online endpoints, and what fine-tuning jobs on each catalog model (keyed by the registry model's
    name, e.g. ``Meta-Llama-3.1-8B-Instruct``) do."""

    name: str
    location: str
    datastore: str = "workspaceblobstore"
    storage_account: str | None = Field(default=None, pattern=r"^[a-z0-9]{3,24}$")
    container: str = "azureml-blobstore"
    storage_key: str = "ZW11bGF0b3Itc3RvcmFnZS1rZXk="
    fine_tune: dict[str, MaapFineTuneOutcome] = Field(default_factory=dict)
    default_fine_tune: MaapFineTuneOutcome = Field(default_factory=MaapFineTuneOutcome)
    online_endpoints: list[OnlineEndpointSpec] = Field(default_factory=list)

    @property
    def account_name(self) -> str:
        """The storage account behind the default datastore."""
        return self.storage_account or ("".join(c for c in self.name.lower() if c.isalnum()) + "store")[:24]


class ResourceGroupSpec(_Strict):
    """A resource group, its accounts and its Azure ML workspaces."""

    name: str
    accounts: list[AccountSpec] = Field(default_factory=list)
    workspaces: list[WorkspaceSpec] = Field(default_factory=list)


class SubscriptionSpec(_Strict):
    """A subscription and its resource groups."""

    id: str
    display_name: str = "modelshift emulator subscription"
    resource_groups: list[ResourceGroupSpec] = Field(default_factory=list)


class SkuCapacity(_Strict):
    """Allowed capacities of a model SKU."""

    default: int = 10
    maximum: int = 1000
    minimum: int = 1
    step: int = 1


class CatalogSku(_Strict):
    """One SKU a catalog model can be deployed with, with its own retirement date if any."""

    name: str
    usage_name: str | None = None
    deprecation_date: datetime | None = None
    capacity: SkuCapacity = Field(default_factory=SkuCapacity)

    @field_validator("deprecation_date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return ensure_utc(value) if value else None


class Deprecation(_Strict):
    """Retirement dates of a model version: inference and fine-tune."""

    inference: datetime | None = None
    fine_tune: datetime | None = None
    status: Literal["Planned", "Tentative"] | None = None

    @field_validator("inference", "fine_tune")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return ensure_utc(value) if value else None


class Replacement(_Strict):
    """Azure's replacementConfig: the model version Azure recommends instead."""

    target_model_name: str
    target_model_version: str
    auto_upgrade_start_date: datetime | None = None
    upgrade_on_expiry_lead_time_days: int | None = None


LifecycleStatus = Literal["Stable", "Preview", "GenerallyAvailable", "Deprecating", "Deprecated", "Legacy"]


class CatalogModel(_Strict):
    """A model version in the catalog of one or more locations."""

    name: str
    version: str
    format: str = "OpenAI"
    kind: Literal["OpenAI", "AIServices"] = "OpenAI"
    publisher: str | None = None
    locations: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    lifecycle_status: LifecycleStatus = "GenerallyAvailable"
    is_default_version: bool = False
    deprecation: Deprecation = Field(default_factory=Deprecation)
    replacement: Replacement | None = None
    capabilities: dict[str, str] = Field(
        default_factory=lambda: {"chatCompletion": "true", "inference": "true"}
    )
    max_capacity: int = 1000
    skus: list[CatalogSku] = Field(default_factory=lambda: [CatalogSku(name="Standard")])
    created_at: datetime | None = None

    @property
    def key(self) -> str:
        """``name@version``, the key behaviour profiles use."""
        return f"{self.name}@{self.version}"

    def offered_in(self, location: str) -> bool:
        """True when this model is in ``location``'s catalog."""
        return "*" in self.locations or location.lower() in {loc.lower() for loc in self.locations}


class UsageSpec(_Strict):
    """A quota counter in a location (e.g. OpenAI.Standard.gpt-4o); current value comes from deployments."""

    name: str
    limit: int = Field(ge=0)
    unit: str = "Count"


class Scenario(_Strict):
    """A whole emulator scenario."""

    clock: ClockSpec
    auth: AuthSpec = Field(default_factory=AuthSpec)
    latency_scale: float = Field(default=0.02, ge=0, description="real sleep = sampled latency x this")
    page_size: int = Field(default=50, ge=1)
    lro_delay_seconds: float = Field(default=2.0, ge=0, description="scenario seconds a deployment PUT takes")
    rate_limit_scale: float = Field(
        default=1.0,
        gt=0,
        description="multiplies every deployment's TPM/RPM limits (the demo raises it for its live traffic)",
    )
    subscriptions: list[SubscriptionSpec] = Field(min_length=1)
    catalog: list[CatalogModel] = Field(default_factory=list)
    usages: dict[str, list[UsageSpec]] = Field(default_factory=dict)
    default_usage_limit: int = Field(default=1000, ge=0)
    profiles: dict[str, BehaviourProfile] = Field(default_factory=dict)
    default_profile: BehaviourProfile = Field(default_factory=BehaviourProfile)

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        keys = [m.key for m in self.catalog]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate catalog entries: {', '.join(dupes)}")
        for key in self.profiles:
            if "@" not in key:
                raise ValueError(f"profile key {key!r} must be 'name@version'")
        accounts = [a.name for s in self.subscriptions for g in s.resource_groups for a in g.accounts]
        dupes = sorted({a for a in accounts if accounts.count(a) > 1})
        if dupes:
            raise ValueError(f"account names must be unique across the scenario: {', '.join(dupes)}")
        for sub in self.subscriptions:
            for group in sub.resource_groups:
                for account in group.accounts:
                    for dep in account.deployments:
                        if dep.profile is not None and dep.profile not in self.profiles:
                            raise ValueError(
                                f"deployment {account.name}/{dep.name} names profile {dep.profile!r}, "
                                "which is not under profiles"
                            )
        return self


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{source}: {path}: {err['msg']}")
    return "\n".join(lines)


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate a scenario mapping; errors name ``source`` and each field path, raised as ScenarioError."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            f"invalid emulator scenario:\n{_format_errors(source, exc)}\n"
            "fix the file and start the emulator again",
            source=source,
        ) from exc


def load_scenario(path: Path | str | None = None) -> Scenario:
    """Load a scenario YAML file, or the default scenario shipped with the package when ``path`` is None."""
    if path is None:
        text = (
            resources.files("modelshift.emulator")
            .joinpath("scenarios")
            .joinpath(DEFAULT_SCENARIO_NAME)
            .read_text("utf-8")
        )
        source = f"modelshift/emulator/scenarios/{DEFAULT_SCENARIO_NAME}"
    else:
        file = Path(path)
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(
                f"{source}: cannot read scenario file ({exc.strerror}); check the path"
            ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from exc
    return parse_scenario(data, source)


def default_scenario_data() -> dict[str, Any]:
    """The default scenario as a plain mapping, for tests that tweak one field and pass the dict on."""
    text = (
        resources.files("modelshift.emulator")
        .joinpath("scenarios")
        .joinpath(DEFAULT_SCENARIO_NAME)
        .read_text("utf-8")
    )
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data
