"""The ARM subset (Microsoft.CognitiveServices) the emulator serves, with the spec's JSON shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from modelshift.emulator.provisioning import validate_put
from modelshift.emulator.scenario import CatalogModel
from modelshift.emulator.state import Account, Deployment, World
from modelshift.emulator.web import (
    AzureHTTPError,
    endpoint_of,
    paged,
    require_arm_api_version,
    require_arm_auth,
    world_of,
)

router = APIRouter(dependencies=[Depends(require_arm_auth), Depends(require_arm_api_version)])

_PROVIDER = "providers/Microsoft.CognitiveServices"
_ACCOUNT = "/subscriptions/{sub}/resourceGroups/{rg}/" + _PROVIDER + "/accounts/{account}"


def _iso(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def account_body(request: Request, account: Account) -> dict[str, Any]:
    """An account resource; ``properties.endpoint`` points at this server's data plane for it."""
    endpoint = endpoint_of(request, account.name)
    return {
        "id": account.arm_id,
        "name": account.name,
        "type": "Microsoft.CognitiveServices/accounts",
        "location": account.location,
        "kind": account.kind,
        "sku": {"name": account.sku},
        "tags": {"modelshift-emulator": "true"},
        "properties": {
            "endpoint": endpoint,
            "endpoints": {"OpenAI Language Model Instance API": endpoint},
            "customSubDomainName": account.name,
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        },
    }


def deployment_body(world: World, account: Account, dep: Deployment) -> dict[str, Any]:
    """A deployment resource as ARM returns it."""
    now = world.clock()
    rpm_10s = max(1, dep.capacity * 6 // 6)
    return {
        "id": f"{account.arm_id}/deployments/{dep.name}",
        "name": dep.name,
        "type": "Microsoft.CognitiveServices/accounts/deployments",
        "sku": {"name": dep.sku_name, "capacity": dep.capacity},
        "systemData": {"createdAt": _iso(dep.created_at), "createdBy": "modelshift-emulator"},
        "properties": {
            "model": dep.model.model_dump(),
            "versionUpgradeOption": dep.version_upgrade_option,
            "provisioningState": dep.provisioning_state(now),
            "deploymentState": dep.state,
            "currentCapacity": dep.capacity,
            "raiPolicyName": "Microsoft.DefaultV2",
            "capabilities": {"chatCompletion": "true"},
            "rateLimits": [
                {"key": "request", "renewalPeriod": 10, "count": rpm_10s},
                {"key": "token", "renewalPeriod": 60, "count": dep.capacity * 1000},
            ],
        },
    }


def catalog_model_body(model: CatalogModel) -> dict[str, Any]:
    """The AccountModel part of a catalog entry (ARM dates are ISO strings)."""
    body: dict[str, Any] = {
        "format": model.format,
        "name": model.name,
        "version": model.version,
        "publisher": model.publisher,
        "capabilities": dict(model.capabilities),
        "deprecation": _drop_none(
            {
                "fineTune": _iso(model.deprecation.fine_tune),
                "inference": _iso(model.deprecation.inference),
                "deprecationStatus": model.deprecation.status,
            }
        ),
        "lifecycleStatus": model.lifecycle_status,
        "isDefaultVersion": model.is_default_version,
        "maxCapacity": model.max_capacity,
        "skus": [
            _drop_none(
                {
                    "name": sku.name,
                    "usageName": World.usage_name(model, sku.name),
                    "deprecationDate": _iso(sku.deprecation_date),
                    "capacity": sku.capacity.model_dump(),
                }
            )
            for sku in model.skus
        ],
        "modelCatalogAssetId": f"azureml://registries/azure-openai/models/{model.name}/versions/{model.version}",
        "systemData": _drop_none({"createdAt": _iso(model.created_at), "createdBy": "Microsoft"}),
    }
    if model.replacement is not None:
        r = model.replacement
        body["replacementConfig"] = _drop_none(
            {
                "targetModelName": r.target_model_name,
                "targetModelVersion": r.target_model_version,
                "autoUpgradeStartDate": _iso(r.auto_upgrade_start_date),
                "upgradeOnExpiryLeadTimeDays": r.upgrade_on_expiry_lead_time_days,
            }
        )
    return _drop_none(body)


def _account_or_404(world: World, sub: str, rg: str, name: str) -> Account:
    account = world.account(sub, rg, name)
    if account is None:
        raise AzureHTTPError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.CognitiveServices/accounts/{name}' under resource group '{rg}' "
            "was not found.",
        )
    return account


def _check_subscription(world: World, sub: str) -> None:
    if world.subscription_name(sub) is None:
        raise AzureHTTPError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


@router.get("/subscriptions")
def list_subscriptions(request: Request) -> dict[str, Any]:
    """Subscriptions the token can see."""
    world = world_of(request)
    return {
        "value": [
            {
                "id": f"/subscriptions/{s.id}",
                "subscriptionId": s.id,
                "displayName": s.display_name,
                "state": "Enabled",
                "tenantId": "00000000-0000-0000-0000-00000000e1e1",
            }
            for s in world.scenario.subscriptions
        ]
    }


@router.get("/subscriptions/{sub}/" + _PROVIDER + "/accounts")
def list_accounts(request: Request, sub: str) -> JSONResponse:
    """Accounts of a subscription."""
    world = world_of(request)
    _check_subscription(world, sub)
    items = [account_body(request, a) for a in world.accounts_in(sub)]
    return JSONResponse(paged(request, items, world.page_size))


@router.get("/subscriptions/{sub}/resourceGroups/{rg}/" + _PROVIDER + "/accounts")
def list_accounts_in_group(request: Request, sub: str, rg: str) -> JSONResponse:
    """Accounts of one resource group."""
    world = world_of(request)
    _check_subscription(world, sub)
    items = [account_body(request, a) for a in world.accounts_in(sub, rg)]
    return JSONResponse(paged(request, items, world.page_size))


@router.get(_ACCOUNT)
def get_account(request: Request, sub: str, rg: str, account: str) -> dict[str, Any]:
    """One account."""
    world = world_of(request)
    return account_body(request, _account_or_404(world, sub, rg, account))


@router.get(_ACCOUNT + "/deployments")
def list_deployments(request: Request, sub: str, rg: str, account: str) -> JSONResponse:
    """An account's deployments, paged through nextLink."""
    world = world_of(request)
    with world.lock:
        acc = _account_or_404(world, sub, rg, account)
        items = [deployment_body(world, acc, d) for d in acc.deployments.values()]
    return JSONResponse(paged(request, items, world.page_size))


def _deployment_or_404(world: World, acc: Account, name: str) -> Deployment:
    dep = acc.deployments.get(name)
    if dep is None:
        raise AzureHTTPError(
            404,
            "DeploymentNotFound",
            f"The deployment '{name}' was not found in account '{acc.name}'.",
        )
    return dep


@router.get(_ACCOUNT + "/deployments/{name}")
def get_deployment(request: Request, sub: str, rg: str, account: str, name: str) -> dict[str, Any]:
    """One deployment; provisioningState moves Creating -> Succeeded on the scenario clock."""
    world = world_of(request)
    with world.lock:
        acc = _account_or_404(world, sub, rg, account)
        return deployment_body(world, acc, _deployment_or_404(world, acc, name))


@router.put(_ACCOUNT + "/deployments/{name}")
async def put_deployment(request: Request, sub: str, rg: str, account: str, name: str) -> JSONResponse:
    """Create or update a deployment (a long-running operation: 201/200 Accepted, then poll GET)."""
    world = world_of(request)
    try:
        body = await request.json()
    except ValueError as exc:
        raise AzureHTTPError(400, "InvalidRequestContent", "The request content was invalid JSON.") from exc
    with world.lock:
        acc = _account_or_404(world, sub, rg, account)
        spec = validate_put(world, acc, name, body)
        existed = name in acc.deployments
        dep = world.new_deployment(acc, name, spec.model, spec.sku_name, spec.capacity, spec.upgrade)
        out = deployment_body(world, acc, dep)
    out["properties"]["provisioningState"] = "Accepted"
    return JSONResponse(out, status_code=200 if existed else 201)


@router.delete(_ACCOUNT + "/deployments/{name}")
def delete_deployment(request: Request, sub: str, rg: str, account: str, name: str) -> Response:
    """Delete a deployment: 200 when it existed, 204 when there was nothing to delete."""
    world = world_of(request)
    with world.lock:
        acc = _account_or_404(world, sub, rg, account)
        existed = acc.deployments.pop(name, None) is not None
    return Response(status_code=200 if existed else 204)


def _set_state(request: Request, sub: str, rg: str, account: str, name: str, state: str) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        acc = _account_or_404(world, sub, rg, account)
        dep = _deployment_or_404(world, acc, name)
        dep.state = state
        return deployment_body(world, acc, dep)


@router.post(_ACCOUNT + "/deployments/{name}/pause")
def pause_deployment(request: Request, sub: str, rg: str, account: str, name: str) -> dict[str, Any]:
    """Pause a deployment: its inference answers 423 until resumed."""
    return _set_state(request, sub, rg, account, name, "Paused")


@router.post(_ACCOUNT + "/deployments/{name}/resume")
def resume_deployment(request: Request, sub: str, rg: str, account: str, name: str) -> dict[str, Any]:
    """Resume a paused deployment."""
    return _set_state(request, sub, rg, account, name, "Running")


@router.get("/subscriptions/{sub}/" + _PROVIDER + "/locations/{location}/models")
def location_models(request: Request, sub: str, location: str) -> JSONResponse:
    """The model catalog of a location, paged."""
    world = world_of(request)
    _check_subscription(world, sub)
    items = [
        {"kind": m.kind, "skuName": "S0", "model": catalog_model_body(m)}
        for m in world.scenario.catalog
        if m.offered_in(location)
    ]
    return JSONResponse(paged(request, items, world.page_size))


def _fine_tuned_body(world: World, acc: Account, model_id: str) -> dict[str, Any] | None:
    ft = acc.finetune.models[model_id]
    base = world.catalog_for_base_id(ft.base_model)
    if base is None:
        return None
    return _drop_none(
        {
            "format": "OpenAI",
            "name": ft.id,
            "version": "1",
            "baseModel": {"format": base.format, "name": base.name, "version": base.version},
            "capabilities": {"chatCompletion": "true", "inference": "true", "fineTune": "true"},
            "deprecation": _drop_none({"inference": _iso(base.deprecation.inference)}),
            "lifecycleStatus": "GenerallyAvailable",
            "isDefaultVersion": True,
            "maxCapacity": base.max_capacity,
            "skus": [{"name": "Standard", "usageName": World.usage_name(base, "Standard", fine_tuned=True)}],
            "systemData": {"createdAt": _iso(ft.created_at), "createdBy": "modelshift-emulator"},
        }
    )


@router.get(_ACCOUNT + "/models")
def account_models(request: Request, sub: str, rg: str, account: str) -> JSONResponse:
    """Models an account can deploy: its location's catalog (by kind) plus its fine-tuned models."""
    world = world_of(request)
    with world.lock:
        acc = _account_or_404(world, sub, rg, account)
        acc.finetune.settle(world.clock())
        items = [
            catalog_model_body(m)
            for m in world.scenario.catalog
            if m.offered_in(acc.location) and (m.kind == "OpenAI" or acc.kind == "AIServices")
        ]
        items += [b for b in (_fine_tuned_body(world, acc, i) for i in acc.finetune.models) if b is not None]
    return JSONResponse(paged(request, items, world.page_size))


@router.get("/subscriptions/{sub}/" + _PROVIDER + "/locations/{location}/usages")
def location_usages(request: Request, sub: str, location: str) -> dict[str, Any]:
    """Quota counters of a location: limit from the scenario, current value from the deployments."""
    world = world_of(request)
    _check_subscription(world, sub)
    names: dict[str, None] = {}
    for usage in world.scenario.usages.get(location, []):
        names[usage.name] = None
    for m in world.scenario.catalog:
        if m.offered_in(location):
            for sku in m.skus:
                names[World.usage_name(m, sku.name)] = None
    with world.lock:
        value = [
            {
                "name": {"value": n, "localizedValue": f"Tokens Per Minute (thousands) - {n}"},
                "currentValue": world.usage_current(sub, location, n),
                "limit": world.usage_limit(location, n),
                "unit": "Count",
                "status": "Included",
            }
            for n in names
        ]
    return {"value": value}
