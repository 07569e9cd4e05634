"""Platform interfaces: one small Protocol per capability, and the plain typed results they return.

Library code depends on these alone. Adapters (Azure OpenAI, Azure ML, OpenAI-compatible servers, the
emulator through the Azure adapter) implement them and translate every foreign error into
:mod:`modelshift.errors` at their boundary, so nothing from httpx or azure-core crosses an interface.

Results are frozen pydantic models (serialisable as Prefect task results) with aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class _Result(BaseModel):
    """Base of every interface result: immutable, strict about our own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------------------------- enums


class LifecycleStatus(StrEnum):
    """A catalog model's lifecycle, normalised across ARM (``GenerallyAvailable``) and data plane
    (``generally-available``). ``UNKNOWN`` keeps a value a newer api-version added that we do not know."""

    PREVIEW = "Preview"
    GENERALLY_AVAILABLE = "GenerallyAvailable"
    STABLE = "Stable"
    LEGACY = "Legacy"
    DEPRECATING = "Deprecating"
    DEPRECATED = "Deprecated"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: str | None) -> LifecycleStatus:
        """Map an ARM or data-plane lifecycle string (any case, dashes or not) onto this enum."""
        if not value:
            return cls.UNKNOWN
        key = value.replace("-", "").replace("_", "").lower()
        for member in cls:
            if member.value.lower() == key:
                return member
        return cls.UNKNOWN


class ProvisioningState(StrEnum):
    """ARM provisioning state of a deployment (terminal: Succeeded, Failed, Canceled)."""

    ACCEPTED = "Accepted"
    CREATING = "Creating"
    UPDATING = "Updating"
    DELETING = "Deleting"
    MOVING = "Moving"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"
    DISABLED = "Disabled"
    CANCELED = "Canceled"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: str | None) -> ProvisioningState:
        """Case-insensitive parse; unknown values become ``UNKNOWN`` (treated as still in progress)."""
        for member in cls:
            if value and member.value.lower() == value.lower():
                return member
        return cls.UNKNOWN


class VersionUpgradeOption(StrEnum):
    """How Azure upgrades a deployment's model version. modelshift creates ``NoAutoUpgrade`` deployments."""

    ONCE_NEW_DEFAULT_VERSION_AVAILABLE = "OnceNewDefaultVersionAvailable"
    ONCE_CURRENT_VERSION_EXPIRED = "OnceCurrentVersionExpired"
    NO_AUTO_UPGRADE = "NoAutoUpgrade"


class FineTuneStatus(StrEnum):
    """Fine-tuning job state (terminal: succeeded, failed, cancelled)."""

    CREATED = "created"
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True once the job can no longer change."""
        return self in (FineTuneStatus.SUCCEEDED, FineTuneStatus.FAILED, FineTuneStatus.CANCELLED)


# ------------------------------------------------------------------------------------ resource refs


class AccountRef(_Result):
    """Where an Azure OpenAI / AI Services account lives in ARM."""

    subscription_id: str
    resource_group: str
    name: str

    @property
    def arm_path(self) -> str:
        """The account's ARM resource id (path under the ARM base URL)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


class Subscription(_Result):
    """An Azure subscription the credential can see."""

    subscription_id: str
    display_name: str | None = None
    state: str | None = None


class Account(_Result):
    """A Cognitive Services account and its data-plane endpoint (``properties.endpoint``)."""

    ref: AccountRef
    location: str
    kind: str | None = None
    endpoint: str | None = None
    sku_name: str | None = None


# ---------------------------------------------------------------------------------------- catalog


class ModelRef(_Result):
    """A model as a deployment names it: format, name and (pinned) version."""

    format: str = "OpenAI"
    name: str
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


class Replacement(_Result):
    """``replacementConfig``: the model Azure will upgrade to, and when."""

    model: ModelRef
    auto_upgrade_start: datetime | None = None
    upgrade_on_expiry_lead_time_days: int | None = None


class ModelSku(_Result):
    """One SKU (deployment type) a catalog model can be deployed with; dates differ per SKU."""

    name: str
    usage_name: str | None = None
    deprecation_date: datetime | None = None
    capacity_default: int | None = None
    capacity_min: int | None = None
    capacity_max: int | None = None


class CatalogModel(_Result):
    """One model version in a location's (or account's) catalog, with its lifecycle dates."""

    model: ModelRef
    kind: str | None = None
    lifecycle_status: LifecycleStatus = LifecycleStatus.UNKNOWN
    #: the raw status string, kept when ``lifecycle_status`` is UNKNOWN so a newer value is still visible
    lifecycle_status_raw: str | None = None
    is_default_version: bool = False
    inference_retirement: datetime | None = None
    fine_tune_retirement: datetime | None = None
    #: ``Planned`` or ``Tentative`` (newer api-versions), None when the platform does not say
    deprecation_status: str | None = None
    replacement: Replacement | None = None
    skus: tuple[ModelSku, ...] = ()
    capabilities: Mapping[str, str] = Field(default_factory=dict)
    fine_tune_capabilities: Mapping[str, str] = Field(default_factory=dict)
    max_capacity: int | None = None
    base_model: ModelRef | None = None

    def sku(self, name: str) -> ModelSku | None:
        """The SKU entry called ``name`` (case-insensitive), if the catalog lists it."""
        return next((s for s in self.skus if s.name.lower() == name.lower()), None)


class QuotaUsage(_Result):
    """One quota line of a location (``usages``): e.g. ``OpenAI.Standard.gpt-4o`` 120 of 450 TPM-thousands."""

    name: str
    current_value: float
    limit: float
    unit: str | None = None


# ------------------------------------------------------------------------------------- deployments


class Deployment(_Result):
    """A model deployment in an account, as ARM reports it."""

    name: str
    account: AccountRef
    model: ModelRef
    sku_name: str
    capacity: int | None = None
    provisioning_state: ProvisioningState = ProvisioningState.UNKNOWN
    version_upgrade_option: VersionUpgradeOption | None = None
    #: ``Running`` or ``Paused`` (newer api-versions); None when not reported
    deployment_state: str | None = None
    rai_policy_name: str | None = None


class DeploymentSpec(_Result):
    """What to create or update. ``version_upgrade_option`` defaults to NoAutoUpgrade on purpose."""

    model: ModelRef
    sku_name: str = "Standard"
    capacity: int = 1
    version_upgrade_option: VersionUpgradeOption = VersionUpgradeOption.NO_AUTO_UPGRADE
    rai_policy_name: str | None = None


# --------------------------------------------------------------------------------------- inference


class TokenUsage(_Result):
    """Token counts the platform billed for one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class RateLimitInfo(_Result):
    """What the ``x-ratelimit-*`` response headers said (None where absent)."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    limit_requests: int | None = None
    limit_tokens: int | None = None


class ChatResult(_Result):
    """One chat completion: the first choice's text plus usage, latency and rate-limit headroom."""

    content: str
    finish_reason: str | None = None
    usage: TokenUsage = TokenUsage()
    latency_ms: float
    model: str | None = None
    rate_limit: RateLimitInfo = RateLimitInfo()
    request_id: str | None = None


class EmbeddingResult(_Result):
    """Embeddings for each input, in input order."""

    vectors: tuple[tuple[float, ...], ...]
    usage: TokenUsage = TokenUsage()
    latency_ms: float
    model: str | None = None
    rate_limit: RateLimitInfo = RateLimitInfo()


# -------------------------------------------------------------------------------------- fine-tuning


class FileInfo(_Result):
    """An uploaded file (training/validation data)."""

    id: str
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    bytes: int | None = None
    created_at: datetime | None = None


class FineTuneJobSpec(_Result):
    """A fine-tuning job request: base model, training data and hyperparameters."""

    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: Mapping[str, int | float | str] = Field(default_factory=dict)
    #: at most 40 of ``[a-zA-Z0-9_-]``; also used to find a job again after a lost response
    suffix: str | None = None
    seed: int | None = None


class JobError(_Result):
    """Why a job failed, as the platform said."""

    code: str | None = None
    message: str | None = None
    param: str | None = None


class FineTuneJob(_Result):
    """A fine-tuning job; ``fine_tuned_model`` is set once it succeeded."""

    id: str
    status: FineTuneStatus
    model: str
    training_file: str | None = None
    validation_file: str | None = None
    fine_tuned_model: str | None = None
    hyperparameters: Mapping[str, Any] = Field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    trained_tokens: int | None = None
    error: JobError | None = None


class FineTuneEvent(_Result):
    """One event of a fine-tuning job."""

    id: str
    created_at: datetime
    level: str
    message: str
    type: str | None = None


# ------------------------------------------------------------------------------------------ routing


class RouteWeights(_Result):
    """Traffic split of an app: live weights (sum 100) and mirrored (shadow) percentages."""

    weights: Mapping[str, int]
    mirror: Mapping[str, int] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------- protocols


@runtime_checkable
class AccountDirectory(Protocol):
    """Discover subscriptions and accounts (and so data-plane endpoints), as ``az`` does."""

    def subscriptions(self) -> list[Subscription]:
        """Every subscription the credential can see."""
        ...

    def accounts(self, subscription_id: str, resource_group: str | None = None) -> list[Account]:
        """Accounts in a subscription, or in one resource group of it."""
        ...


@runtime_checkable
class ModelCatalog(Protocol):
    """Which models (and versions, lifecycles, dates) a location or account offers, and the quota left."""

    def location_models(self, subscription_id: str, location: str) -> list[CatalogModel]:
        """Every model version offered in ``location`` (all pages)."""
        ...

    def account_models(self, account: AccountRef) -> list[CatalogModel]:
        """Models the account can deploy, including its fine-tuned models."""
        ...

    def usages(self, subscription_id: str, location: str) -> list[QuotaUsage]:
        """Quota usage lines of ``location``."""
        ...


@runtime_checkable
class Deployments(Protocol):
    """Model deployments of an account."""

    def list(self, account: AccountRef) -> list[Deployment]:
        """Every deployment of the account (all pages)."""
        ...

    def get(self, account: AccountRef, name: str) -> Deployment:
        """One deployment; raises DeploymentNotFoundError when it does not exist."""
        ...

    def create_or_update(self, account: AccountRef, name: str, spec: DeploymentSpec) -> Deployment:
        """Create or update and wait for a terminal state; raises OperationFailedError on Failed/Canceled."""
        ...

    def delete(self, account: AccountRef, name: str) -> None:
        """Delete the deployment; deleting one that is already gone is not an error."""
        ...


@runtime_checkable
class Inference(Protocol):
    """Chat completions and embeddings against a deployment (blocking)."""

    def chat(self, deployment: str, messages: Sequence[Mapping[str, Any]], **params: Any) -> ChatResult:
        """One chat completion; ``params`` are body fields such as temperature, max_tokens, seed."""
        ...

    def embed(self, deployment: str, inputs: Sequence[str]) -> EmbeddingResult:
        """Embeddings of ``inputs`` in order."""
        ...


@runtime_checkable
class AsyncInference(Protocol):
    """Chat completions and embeddings, async, for the concurrent evaluation runner."""

    async def chat(self, deployment: str, messages: Sequence[Mapping[str, Any]], **params: Any) -> ChatResult:
        """One chat completion; ``params`` are body fields such as temperature, max_tokens, seed."""
        ...

    async def embed(self, deployment: str, inputs: Sequence[str]) -> EmbeddingResult:
        """Embeddings of ``inputs`` in order."""
        ...


@runtime_checkable
class FineTuning(Protocol):
    """Training files and fine-tuning jobs."""

    def upload_file(self, filename: str, content: bytes, purpose: str = "fine-tune") -> FileInfo:
        """Upload a file; safe to retry (an upload whose response was lost is found again by name)."""
        ...

    def create_job(self, spec: FineTuneJobSpec) -> FineTuneJob:
        """Start a job; with a ``suffix`` it is safe to retry (a lost create is found again)."""
        ...

    def get_job(self, job_id: str) -> FineTuneJob:
        """The job's current state."""
        ...

    def list_events(self, job_id: str) -> list[FineTuneEvent]:
        """Every event of the job (all pages), oldest first."""
        ...

    def cancel_job(self, job_id: str) -> FineTuneJob:
        """Ask the platform to cancel the job; returns its state after the request."""
        ...


@runtime_checkable
class TrafficRouter(Protocol):
    """Live traffic weights between the deployments (or bundles) that serve one app."""

    def read(self, app: str) -> RouteWeights:
        """The weights in force now."""
        ...

    def set(
        self, app: str, weights: Mapping[str, int], mirror: Mapping[str, int] | None = None
    ) -> RouteWeights:
        """Apply weights (sum 100) and optional mirror percentages; returns what is now in force."""
        ...

    def verify(self, app: str, expected: RouteWeights) -> None:
        """Raise RouterInvariantError when the weights in force differ from ``expected``."""
        ...
