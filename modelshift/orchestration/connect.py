"""Where a bundle's model lives: its data-plane endpoint, its rate limits and an async client for it.

For ``azure-openai`` bundles the account's endpoint (ARM ``properties.endpoint``) and the deployment's
capacity are read from ARM once per account / deployment and cached in the :class:`EndpointDirectory`, so a
run over two bundles in the same account asks ARM once. ``openai-compatible`` bundles name their base URL
and have no ARM limits (the runner learns them from response headers).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from modelshift.bundle import Bundle
from modelshift.bundle.manifest import AzureOpenAIModel, OpenAICompatibleModel
from modelshift.clock import Clock, utcnow
from modelshift.errors import ConfigError, DeploymentNotFoundError
from modelshift.evaluation.ratelimit import RateLimits
from modelshift.orchestration.index import open_index
from modelshift.orchestration.runtime import BundleRuntime
from modelshift.platforms import azure
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.azure.retry import RetryPolicy
from modelshift.platforms.base import AccountRef, AsyncInference
from modelshift.platforms.openai_compat import AsyncOpenAICompatClient
from modelshift.settings import Settings

#: the runner owns pacing and retries; the adapter makes exactly one attempt per call
SINGLE_ATTEMPT = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class ModelTarget:
    """The endpoint a bundle's deployment is reached at and the limits it admits (None: unknown)."""

    platform: str
    endpoint: str
    deployment: str
    limits: RateLimits | None


class EndpointDirectory:
    """Resolves bundles to :class:`ModelTarget` through ARM, caching accounts and deployments."""

    def __init__(self, arm: ArmClient | None) -> None:
        self.arm = arm
        self._endpoints: dict[tuple[str, str, str], str] = {}
        self._limits: dict[tuple[str, str, str, str], RateLimits | None] = {}
        #: ARM reads made (tests assert the cache works)
        self.arm_reads = 0

    def resolve(self, bundle: Bundle) -> ModelTarget:
        """The target of ``bundle``'s model (ARM is read at most once per account and deployment)."""
        model = bundle.manifest.model
        if isinstance(model, OpenAICompatibleModel):
            return ModelTarget(model.platform, model.endpoint, model.deployment or model.name, None)
        if not isinstance(model, AzureOpenAIModel):
            raise ConfigError(
                f"{bundle.yaml_path}: model.platform {model.platform!r} cannot be evaluated by the runner "
                "yet; use an azure-openai or openai-compatible bundle"
            )
        ref = AccountRef(
            subscription_id=model.subscription, resource_group=model.resource_group, name=model.account
        )
        endpoint = model.endpoint or self._endpoint(bundle, ref)
        return ModelTarget(model.platform, endpoint, model.deployment, self._deployment_limits(ref, model))

    def account_endpoint(self, bundle: Bundle, ref: AccountRef) -> str:
        """The data-plane endpoint of the account ``ref`` (read from ARM once; errors name ``bundle``)."""
        return self._endpoint(bundle, ref)

    def _require_arm(self, bundle: Bundle, what: str) -> ArmClient:
        if self.arm is None:
            raise ConfigError(
                f"{bundle.yaml_path}: {what} needs ARM; set MODELSHIFT_ARM_URL (or model.endpoint)"
            )
        return self.arm

    def _endpoint(self, bundle: Bundle, ref: AccountRef) -> str:
        key = (ref.subscription_id, ref.resource_group, ref.name)
        if key not in self._endpoints:
            arm = self._require_arm(bundle, f"finding the endpoint of account {ref.name}")
            self.arm_reads += 1
            for account in arm.accounts(ref.subscription_id, ref.resource_group):
                if account.ref.name == ref.name and account.endpoint:
                    self._endpoints[key] = account.endpoint
            if key not in self._endpoints:
                raise ConfigError(
                    f"{bundle.yaml_path}: model.account {ref.name!r} was not found in resource group "
                    f"{ref.resource_group!r} (or has no endpoint); fix model.account or model.resource_group"
                )
        return self._endpoints[key]

    def _deployment_limits(self, ref: AccountRef, model: AzureOpenAIModel) -> RateLimits | None:
        key = (ref.subscription_id, ref.resource_group, ref.name, model.deployment)
        if key not in self._limits:
            capacity = model.sku.capacity if model.sku is not None else None
            if self.arm is not None:
                self.arm_reads += 1
                try:
                    capacity = self.arm.get(ref, model.deployment).capacity or capacity
                except DeploymentNotFoundError:
                    raise ConfigError(
                        f"deployment {model.deployment!r} does not exist in account {ref.name}; "
                        "deploy the bundle first or fix model.deployment"
                    ) from None
            self._limits[key] = RateLimits.from_capacity(capacity) if capacity else None
        return self._limits[key]


def async_inference(
    target: ModelTarget,
    settings: Settings,
    *,
    client: httpx.AsyncClient,
    policy: RetryPolicy = SINGLE_ATTEMPT,
) -> AsyncInference:
    """An async client for ``target`` (default: one attempt per call, so the caller owns retries)."""
    if target.platform == "openai-compatible":
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return AsyncOpenAICompatClient(
            target.endpoint, key, client=client, policy=policy, key_source="MODELSHIFT_API_KEY"
        )
    return azure.async_openai_client(target.endpoint, settings, client=client, policy=policy)


def open_runtime(
    bundle: Bundle,
    settings: Settings,
    directory: EndpointDirectory,
    *,
    client: httpx.AsyncClient,
    policy: RetryPolicy = SINGLE_ATTEMPT,
    clock: Clock = utcnow,
) -> tuple[BundleRuntime, ModelTarget]:
    """A runtime for ``bundle``: its index generation under MODELSHIFT_HOME, its endpoint, its client."""
    target = directory.resolve(bundle)
    inference = async_inference(target, settings, client=client, policy=policy)
    return BundleRuntime(bundle, inference, open_index(bundle, settings.home, clock=clock)), target
