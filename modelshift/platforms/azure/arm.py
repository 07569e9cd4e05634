"""Azure Resource Manager (Microsoft.CognitiveServices) client: accounts, catalog, quota and deployments.

Implements the ``AccountDirectory``, ``ModelCatalog`` and ``Deployments`` protocols of
:mod:`modelshift.platforms.base`. The api-version is pinned (default 2025-06-01) and the
wire models tolerate both older and newer payloads. List calls follow ``nextLink`` as given; a deployment PUT
is a long-running operation that is polled to a terminal state within ``lro_timeout`` seconds.
"""

from __future__ import annotations

import builtins
from typing import Any, Final, TypeVar
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel

from modelshift.errors import DeploymentNotFoundError, OperationFailedError, PlatformError
from modelshift.platforms import base
from modelshift.platforms.azure.http import AzureHttp, Target, parse_body, parse_retry_after
from modelshift.platforms.azure.models import (
    ArmAccount,
    ArmAccountModel,
    ArmAsyncOperation,
    ArmDeployment,
    ArmLocationModel,
    ArmPage,
    ArmSubscription,
    ArmUsage,
)

M = TypeVar("M", bound=BaseModel)

DEFAULT_ARM_URL: Final = "https://management.azure.com"
DEFAULT_API_VERSION: Final = "2025-06-01"
#: the Microsoft.Resources subscriptions API has its own version line
SUBSCRIPTIONS_API_VERSION: Final = "2022-12-01"
_PROVIDER: Final = "providers/Microsoft.CognitiveServices"
_TERMINAL_FAILURES: Final = frozenset({base.ProvisioningState.FAILED, base.ProvisioningState.CANCELED})
_MAX_PAGES: Final = 10_000


class ArmClient:
    """ARM for Azure OpenAI / AI Services accounts, over an :class:`AzureHttp`."""

    def __init__(
        self,
        http: AzureHttp,
        *,
        base_url: str = DEFAULT_ARM_URL,
        api_version: str = DEFAULT_API_VERSION,
        lro_timeout: float = 900.0,
        poll_interval: float = 5.0,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.lro_timeout = lro_timeout
        self.poll_interval = poll_interval

    # ------------------------------------------------------------------------------------ helpers

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _paged(self, path: str, item: type[M], target: Target, api_version: str | None = None) -> list[M]:
        """Every item of a paged ARM list; ``nextLink`` is followed exactly as ARM gave it."""
        url: str | None = self._url(path)
        params: dict[str, str] | None = {"api-version": api_version or self.api_version}
        items: list[M] = []
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise PlatformError(
                    f"{target.describe()}: ARM paging loops at {url}; report this to the platform"
                )
            seen.add(url)
            response = self.http.request("GET", url, target, params=params)
            page = parse_body(ArmPage[item], response, target)  # type: ignore[valid-type]
            items.extend(page.value)
            # nextLink already carries api-version and the skip token; relative links resolve against ARM
            url = urljoin(self.base_url + "/", page.next_link) if page.next_link else None
            params = None
        return items

    # ---------------------------------------------------------------------------------- directory

    def subscriptions(self) -> builtins.list[base.Subscription]:
        """Every subscription the credential can see (``GET /subscriptions``)."""
        target = Target("ARM", resource="subscription list")
        subs = self._paged("subscriptions", ArmSubscription, target, SUBSCRIPTIONS_API_VERSION)
        return [s.to_result() for s in subs]

    def accounts(
        self, subscription_id: str, resource_group: str | None = None
    ) -> builtins.list[base.Account]:
        """Cognitive Services accounts of a subscription, or of one resource group in it."""
        scope = f"subscriptions/{subscription_id}"
        if resource_group:
            scope += f"/resourceGroups/{resource_group}"
        target = Target("ARM", resource=f"account list of {scope}")
        return [a.to_result() for a in self._paged(f"{scope}/{_PROVIDER}/accounts", ArmAccount, target)]

    # ------------------------------------------------------------------------------------ catalog

    def location_models(self, subscription_id: str, location: str) -> builtins.list[base.CatalogModel]:
        """Every model version offered in ``location``, all pages."""
        path = f"subscriptions/{subscription_id}/{_PROVIDER}/locations/{location}/models"
        target = Target("ARM", resource=f"model catalog of location {location}")
        return [m.to_result() for m in self._paged(path, ArmLocationModel, target)]

    def account_models(self, account: base.AccountRef) -> builtins.list[base.CatalogModel]:
        """Models the account can deploy (base and fine-tuned)."""
        target = Target("ARM", account=account.name, resource="model list")
        return [m.to_result() for m in self._paged(f"{account.arm_path}/models", ArmAccountModel, target)]

    def usages(self, subscription_id: str, location: str) -> builtins.list[base.QuotaUsage]:
        """Quota usage of ``location``."""
        path = f"subscriptions/{subscription_id}/{_PROVIDER}/locations/{location}/usages"
        target = Target("ARM", resource=f"quota usages of location {location}")
        return [u.to_result() for u in self._paged(path, ArmUsage, target)]

    # -------------------------------------------------------------------------------- deployments

    def _deployment_url(self, account: base.AccountRef, name: str) -> str:
        return self._url(f"{account.arm_path}/deployments/{name}")

    def list(self, account: base.AccountRef) -> builtins.list[base.Deployment]:
        """Every deployment of the account."""
        target = Target("ARM", account=account.name, resource="deployment list")
        return [
            d.to_result(account)
            for d in self._paged(f"{account.arm_path}/deployments", ArmDeployment, target)
        ]

    def get(self, account: base.AccountRef, name: str) -> base.Deployment:
        """One deployment; DeploymentNotFoundError when ARM says 404."""
        target = Target("ARM", account=account.name, deployment=name)
        response = self.http.request(
            "GET", self._deployment_url(account, name), target, params={"api-version": self.api_version}
        )
        return parse_body(ArmDeployment, response, target).to_result(account)

    def create_or_update(
        self, account: base.AccountRef, name: str, spec: base.DeploymentSpec
    ) -> base.Deployment:
        """PUT the deployment and poll to a terminal state (``versionUpgradeOption`` from the spec,
        NoAutoUpgrade unless the caller explicitly chose otherwise)."""
        target = Target("ARM", account=account.name, deployment=name)
        model: dict[str, Any] = {"format": spec.model.format, "name": spec.model.name}
        if spec.model.version:
            model["version"] = spec.model.version
        properties: dict[str, Any] = {
            "model": model,
            "versionUpgradeOption": spec.version_upgrade_option.value,
        }
        if spec.rai_policy_name:
            properties["raiPolicyName"] = spec.rai_policy_name
        body = {"sku": {"name": spec.sku_name, "capacity": spec.capacity}, "properties": properties}
        response = self.http.request(
            "PUT",
            self._deployment_url(account, name),
            target,
            params={"api-version": self.api_version},
            json=body,
        )
        first = parse_body(ArmDeployment, response, target).to_result(account)
        return self._wait_for(account, name, first, response, target)

    def _wait_for(
        self,
        account: base.AccountRef,
        name: str,
        current: base.Deployment,
        response: httpx.Response,
        target: Target,
    ) -> base.Deployment:
        """Poll an LRO: Azure-AsyncOperation, else Location, else the resource's provisioningState."""
        policy = self.http.policy
        deadline = policy.monotonic() + self.lro_timeout
        async_url = response.headers.get("azure-asyncoperation")
        location_url = response.headers.get("location")
        while True:
            state = current.provisioning_state
            if state == base.ProvisioningState.SUCCEEDED:
                return current
            if state in _TERMINAL_FAILURES:
                raise self._failed(name, account, state.value, None)
            wait = parse_retry_after(response.headers, clock=self.http.clock)
            wait = self.poll_interval if wait is None else wait
            if policy.monotonic() + wait > deadline:
                raise OperationFailedError(
                    f"deployment {name} in account {account.name} did not finish within "
                    f"{self.lro_timeout:g}s (last provisioningState {state.value}); check it with "
                    "`az cognitiveservices account deployment show` and run again",
                    code="Timeout",
                )
            policy.sleep(wait)
            if async_url:
                response = self.http.request("GET", async_url, target)
                op = parse_body(ArmAsyncOperation, response, target)
                op_state = base.ProvisioningState.parse(op.status)
                if op_state in _TERMINAL_FAILURES:
                    raise self._failed(name, account, op_state.value, op.error.message if op.error else None)
                if op_state != base.ProvisioningState.SUCCEEDED:
                    continue
                async_url = None
            elif location_url:
                response = self.http.request("GET", location_url, target)
                if response.status_code == 202:
                    continue
                location_url = None
            response = self.http.request(
                "GET", self._deployment_url(account, name), target, params={"api-version": self.api_version}
            )
            current = parse_body(ArmDeployment, response, target).to_result(account)

    @staticmethod
    def _failed(name: str, account: base.AccountRef, state: str, detail: str | None) -> OperationFailedError:
        why = f": {detail}" if detail else ""
        return OperationFailedError(
            f"deployment {name} in account {account.name} ended {state}{why}; check the model, SKU and "
            "capacity (`az cognitiveservices account deployment show`) and run again",
            code=state,
        )

    def delete(self, account: base.AccountRef, name: str) -> None:
        """Delete the deployment and wait until ARM no longer returns it; already gone is fine."""
        target = Target("ARM", account=account.name, deployment=name)
        url = self._deployment_url(account, name)
        try:
            response = self.http.request("DELETE", url, target, params={"api-version": self.api_version})
        except DeploymentNotFoundError:
            return
        if response.status_code != 202:
            return
        policy = self.http.policy
        deadline = policy.monotonic() + self.lro_timeout
        while True:
            wait = parse_retry_after(response.headers, clock=self.http.clock)
            wait = self.poll_interval if wait is None else wait
            if policy.monotonic() + wait > deadline:
                raise OperationFailedError(
                    f"deleting deployment {name} in account {account.name} did not finish within "
                    f"{self.lro_timeout:g}s; check it with `az cognitiveservices account deployment show`",
                    code="Timeout",
                )
            policy.sleep(wait)
            try:
                response = self.http.request("GET", url, target, params={"api-version": self.api_version})
            except DeploymentNotFoundError:
                return
