"""Deploy a fine-tuned catalog model as a managed online deployment, behind the Deployments interface, and
build the MaaP adapters for a workspace.

A fine-tuned catalog model is a model registered in the workspace (the fine-tuning job's
``registered_model`` output). Azure ML serves such a model either from a managed online deployment or,
for the models that support it, from a serverless endpoint. modelshift uses the managed online
deployment: it sits beside the baseline under the app's managed online endpoint, so the same
:class:`~modelshift.platforms.azure.aml.AmlEndpointRouter` shifts traffic to it in the canary, and it takes
the baseline's instance type and count as a Cognitive Services deployment takes the baseline's SKU.

The :class:`~modelshift.platforms.base.Deployments` interface is account-shaped; here the ``AccountRef``
is the workspace (subscription, resource group, workspace name), ``DeploymentSpec.sku_name`` is the
instance type, ``capacity`` the instance count, and ``model.name`` the registered model
(``azureml:<name>:<version>``). Deployments are created with no traffic; the canary adds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError

from modelshift.errors import ConfigError, DeploymentNotFoundError, OperationFailedError
from modelshift.platforms.azure.maap import MaapFineTuning, _translate
from modelshift.platforms.azure.transport import emulator_routes, routing_transport
from modelshift.platforms.base import AccountRef, Deployment, DeploymentSpec, ModelRef, ProvisioningState

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential

__all__ = ["AmlOnlineDeployments", "StaticTokenCredential", "maap_adapters", "maap_routes", "ml_client"]

#: Azure's public ARM host: no routing needed
PUBLIC_ARM = "https://management.azure.com"

#: Azure ML online deployment names: 3-32 characters
MAX_ONLINE_DEPLOYMENT_NAME = 32


class AmlOnlineDeployments:
    """Deployments under one managed online endpoint of one workspace."""

    def __init__(self, ml_client: MLClient, endpoint: str) -> None:
        self._ml = ml_client
        self._endpoint = endpoint
        self._workspace = f"{ml_client.resource_group_name}/{ml_client.workspace_name}"

    def _check(self, account: AccountRef) -> None:
        if account.name.lower() != str(self._ml.workspace_name).lower():
            raise ConfigError(
                f"deployment request for workspace {account.name!r} reached the adapter of workspace "
                f"{self._workspace!r}; build AmlOnlineDeployments for the bundle's workspace"
            )

    def _deployment(self, account: AccountRef, d: Any) -> Deployment:
        model = d.model if isinstance(d.model, str) else getattr(d.model, "id", None) or str(d.model)
        return Deployment(
            name=d.name,
            account=account,
            model=ModelRef(format="AzureML", name=model or "unknown"),
            sku_name=d.instance_type or "unknown",
            capacity=d.instance_count,
            provisioning_state=ProvisioningState.parse(
                str(getattr(d.provisioning_state, "value", d.provisioning_state) or "")
            ),
        )

    def list(self, account: AccountRef) -> list[Deployment]:
        """Every deployment of the endpoint."""
        self._check(account)
        with _translate(f"list deployments of endpoint {self._endpoint}", self._workspace):
            return [self._deployment(account, d) for d in self._ml.online_deployments.list(self._endpoint)]

    def get(self, account: AccountRef, name: str) -> Deployment:
        """One deployment; DeploymentNotFoundError when the endpoint has none by that name."""
        self._check(account)
        what = f"get deployment {name} of endpoint {self._endpoint}"
        with _translate(what, self._workspace):
            try:
                return self._deployment(account, self._ml.online_deployments.get(name, self._endpoint))
            except ResourceNotFoundError as exc:
                raise DeploymentNotFoundError(
                    f"{what}: no deployment {name!r} under endpoint {self._endpoint!r} in workspace "
                    f"{self._workspace!r}",
                    status_code=404,
                    request=what,
                ) from exc

    def create_or_update(self, account: AccountRef, name: str, spec: DeploymentSpec) -> Deployment:
        """PUT a managed online deployment of ``spec.model.name`` and wait for the LRO."""
        from azure.ai.ml.entities import ManagedOnlineDeployment

        self._check(account)
        if not 3 <= len(name) <= MAX_ONLINE_DEPLOYMENT_NAME:
            raise ConfigError(
                f"deployment name {name!r} has {len(name)} characters; Azure ML online deployments need 3-32"
            )
        what = f"deploy {spec.model.name} as {name} under endpoint {self._endpoint}"
        deployment = ManagedOnlineDeployment(
            name=name,
            endpoint_name=self._endpoint,
            model=spec.model.name,
            instance_type=spec.sku_name,
            instance_count=spec.capacity,
        )
        with _translate(what, self._workspace):
            result = self._ml.online_deployments.begin_create_or_update(deployment).result()
        out = self._deployment(account, result)
        if out.provisioning_state in (ProvisioningState.FAILED, ProvisioningState.CANCELED):
            raise OperationFailedError(
                f"{what}: the deployment ended {out.provisioning_state.value}; read its logs with "
                f"`az ml online-deployment get-logs -n {name} -e {self._endpoint}`",
                request=what,
            )
        return out

    def delete(self, account: AccountRef, name: str) -> None:
        """Delete the deployment; one that is already gone is fine."""
        self._check(account)
        with _translate(f"delete deployment {name} of endpoint {self._endpoint}", self._workspace):
            try:
                self._ml.online_deployments.begin_delete(name, self._endpoint).result()
            except ResourceNotFoundError:
                return


class StaticTokenCredential:
    """An azure-core TokenCredential for a bearer token given up front (MODELSHIFT_ARM_TOKEN)."""

    def __init__(self, token: str, *, lifetime_seconds: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime_seconds

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """The token, reported valid for ``lifetime_seconds`` from now (Azure refuses it once it expires)."""
        import time

        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._lifetime)


def maap_routes(arm_url: str) -> dict[str, str] | None:
    """Where the Azure ML SDKs' requests go for MODELSHIFT_ARM_URL: nowhere special for Azure's public
    ARM; everything (ARM, Azure ML's regional API, Blob storage) to a plain-http URL, which is the local
    emulator; only ARM to another https URL (a private endpoint or gateway in front of ARM)."""
    base = arm_url.rstrip("/")
    if base == PUBLIC_ARM:
        return None
    if base.startswith("http://"):
        return emulator_routes(base)
    return {"management.azure.com": base}


def ml_client(
    credential: TokenCredential,
    workspace: AccountRef,
    *,
    routes: Mapping[str, str] | None = None,
    polling_interval: float | None = None,
) -> MLClient:
    """An ``MLClient`` for ``workspace``; ``routes`` send its https requests elsewhere (a private
    endpoint, or the emulator via :func:`~modelshift.platforms.azure.transport.emulator_routes`)."""
    from azure.ai.ml import MLClient

    missing = [f for f in ("subscription_id", "resource_group", "name") if not getattr(workspace, f)]
    if missing:
        raise ConfigError(
            f"Azure ML workspace settings incomplete: {', '.join(missing)} missing; a catalog-model bundle "
            "names model.subscription, model.resource_group and model.account (the workspace)"
        )
    kwargs: dict[str, Any] = {"enable_telemetry": False, "show_progress": False}
    if routes:
        kwargs["transport"] = routing_transport(routes)
    if polling_interval is not None:
        kwargs["polling_interval"] = polling_interval
    return MLClient(credential, workspace.subscription_id, workspace.resource_group, workspace.name, **kwargs)


def maap_adapters(
    credential: TokenCredential,
    workspace: AccountRef,
    endpoint: str,
    *,
    routes: Mapping[str, str] | None = None,
    compute: str | None = None,
    instance_types: list[str] | None = None,
    polling_interval: float | None = None,
) -> tuple[MaapFineTuning, AmlOnlineDeployments]:
    """The fine-tuning and deployment adapters of a catalog-model bundle's workspace and endpoint."""
    ml = ml_client(credential, workspace, routes=routes, polling_interval=polling_interval)
    fine_tuning = MaapFineTuning(
        ml,
        compute=compute,
        instance_types=instance_types,
        blob_transport=routing_transport(routes) if routes else None,
    )
    return fine_tuning, AmlOnlineDeployments(ml, endpoint)
