"""The Azure ML (Microsoft.MachineLearningServices) subset that azure-ai-ml needs for catalog-model (MaaP)
fine-tuning and online deployments, plus run history (the default datastore's Blob service is in
:mod:`modelshift.emulator.blob_api`).

Paths as the real services have them, re-rooted on this server:

- ARM at the root, as for Cognitive Services: ``/subscriptions/{sub}/resourceGroups/{rg}/providers/
  Microsoft.MachineLearningServices/workspaces/{ws}[/datastores|/jobs|/onlineEndpoints...]``;
- the workspace's regional API host ``https://{region}.api.azureml.ms`` (discovery, run history) under
  ``/_amlapi/{region}/``;
- a storage account's Blob endpoint ``https://{account}.blob.core.windows.net`` under ``/_blob/{account}/``
  (:mod:`modelshift.emulator.blob_api`).

azure-ai-ml only sends bearer tokens over https, so clients reach this server through
:func:`modelshift.platforms.azure.transport.routing_transport`, which sends the SDK's https requests for
those hosts here over loopback HTTP. Job shapes follow the 2024-10-01-preview ``FineTuningJob`` examples of
azure-rest-api-specs; job status follows the scenario clock (:mod:`modelshift.emulator.aml_state`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from modelshift.emulator.aml_state import AmlJob, OnlineDeployment, Workspace, iso
from modelshift.emulator.web import AzureHTTPError, paged, require_arm_auth, require_data_auth, world_of

#: api-versions azure-ai-ml 1.3x sends for the calls below
AML_API_VERSIONS = frozenset(
    {
        "2022-02-01-preview",
        "2022-10-01",
        "2023-04-01-preview",
        "2023-10-01",
        "2024-01-01-preview",
        "2024-04-01",
        "2024-07-01-preview",
        "2024-10-01",
        "2024-10-01-preview",
        "2025-01-01-preview",
        "2025-12-01",
    }
)
_WS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
_EP = _WS + "/onlineEndpoints/{endpoint}"


def require_aml_api_version(request: Request) -> str:
    """The api-version query parameter, 400 when missing or not one the emulator knows."""
    version = request.query_params.get("api-version")
    if version not in AML_API_VERSIONS:
        raise AzureHTTPError(
            400,
            "InvalidApiVersionParameter" if version else "MissingApiVersionParameter",
            f"The api-version '{version}' is invalid for Microsoft.MachineLearningServices in the "
            f"modelshift emulator; supported: {', '.join(sorted(AML_API_VERSIONS))}.",
        )
    return version


arm_router = APIRouter(dependencies=[Depends(require_arm_auth), Depends(require_aml_api_version)])
history_router = APIRouter(prefix="/_amlapi/{region}")
control_router = APIRouter(prefix="/_emulator", dependencies=[Depends(require_data_auth)])


def _workspace(request: Request, sub: str, rg: str, ws: str) -> Workspace:
    world = world_of(request)
    found = world.workspaces.get(ws.lower())
    if found is None or found.subscription != sub or found.resource_group.lower() != rg.lower():
        raise AzureHTTPError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' under resource group "
            f"'{rg}' was not found.",
        )
    with world.lock:
        status = found.faults.pop(0) if found.faults else None
    if status == 429:
        raise AzureHTTPError(
            429,
            "TooManyRequests",
            "The request was throttled (modelshift emulator fault).",
            {"Retry-After": "1"},
        )
    if status is not None:
        raise AzureHTTPError(status, "InternalServerError", "The service failed (modelshift emulator fault).")
    return found


# ------------------------------------------------------------------------------ workspace, datastores


def _workspace_body(ws: Workspace) -> dict[str, Any]:
    region = ws.spec.location.lower()
    storage = (
        f"/subscriptions/{ws.subscription}/resourceGroups/{ws.resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{ws.spec.account_name}"
    )
    return {
        "id": ws.arm_id,
        "name": ws.spec.name,
        "type": "Microsoft.MachineLearningServices/workspaces",
        "location": region,
        "kind": "Default",
        "tags": {"modelshift-emulator": "true"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "friendlyName": ws.spec.name,
            "storageAccount": storage,
            "discoveryUrl": f"https://{region}.api.azureml.ms/discovery",
            "workspaceId": f"emulator-{ws.spec.name}",
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        },
    }


@arm_router.get(_WS)
def get_workspace(request: Request, sub: str, rg: str, ws: str) -> dict[str, Any]:
    """The workspace; ``discoveryUrl`` names its regional API host."""
    return _workspace_body(_workspace(request, sub, rg, ws))


def _datastore_body(ws: Workspace) -> dict[str, Any]:
    return {
        "id": f"{ws.arm_id}/datastores/{ws.spec.datastore}",
        "name": ws.spec.datastore,
        "type": "Microsoft.MachineLearningServices/workspaces/datastores",
        "properties": {
            "datastoreType": "AzureBlob",
            "accountName": ws.spec.account_name,
            "containerName": ws.spec.container,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "isDefault": True,
            "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
            "credentials": {"credentialsType": "AccountKey"},
            "tags": {},
            "properties": {},
        },
    }


def _datastore_or_404(ws: Workspace, name: str) -> dict[str, Any]:
    if name != ws.spec.datastore:
        raise AzureHTTPError(
            404, "UserError", f"Could not find datastore: {name} in workspace {ws.spec.name}."
        )
    return _datastore_body(ws)


@arm_router.get(_WS + "/datastores")
def list_datastores(request: Request, sub: str, rg: str, ws: str) -> dict[str, Any]:
    """The workspace's datastores (only its default blob store); ``isDefault`` filters as Azure does."""
    workspace = _workspace(request, sub, rg, ws)
    return {"value": [_datastore_body(workspace)]}


@arm_router.get(_WS + "/datastores/{name}")
def get_datastore(request: Request, sub: str, rg: str, ws: str, name: str) -> dict[str, Any]:
    """One datastore."""
    return _datastore_or_404(_workspace(request, sub, rg, ws), name)


@arm_router.post(_WS + "/datastores/{name}/listSecrets")
def list_datastore_secrets(request: Request, sub: str, rg: str, ws: str, name: str) -> dict[str, Any]:
    """The storage account key behind the datastore."""
    workspace = _workspace(request, sub, rg, ws)
    _datastore_or_404(workspace, name)
    return {"secretsType": "AccountKey", "key": workspace.spec.storage_key}


# -------------------------------------------------------------------------------------------- jobs


def _job_or_404(ws: Workspace, name: str) -> AmlJob:
    job = ws.jobs.get(name)
    if job is None:
        raise AzureHTTPError(
            404, "UserError", f"Job {name} was not found in workspace {ws.spec.name}.", target="id"
        )
    return job


def _uri(details: dict[str, Any], key: str) -> str | None:
    value = details.get(key)
    return value.get("uri") if isinstance(value, dict) and isinstance(value.get("uri"), str) else None


@arm_router.put(_WS + "/jobs/{name}")
async def put_job(request: Request, sub: str, rg: str, ws: str, name: str) -> JSONResponse:
    """Create a FineTuning job: 201 with the job (NotStarted). A PUT to an existing name returns the job
    as it is (200): job definitions cannot change once submitted."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    try:
        body = await request.json()
    except ValueError as exc:
        raise AzureHTTPError(400, "UserError", "The request body is not valid JSON.") from exc
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict) or props.get("jobType") != "FineTuning":
        raise AzureHTTPError(
            400,
            "UserError",
            "The modelshift emulator serves only jobType 'FineTuning' jobs (properties.jobType).",
            target="properties.jobType",
        )
    details = props.get("fineTuningDetails")
    if (
        not isinstance(details, dict)
        or _uri(details, "model") is None
        or _uri(details, "trainingData") is None
    ):
        raise AzureHTTPError(
            400,
            "UserError",
            "properties.fineTuningDetails needs model.uri and trainingData.uri.",
            target="properties.fineTuningDetails",
        )
    with world.lock:
        workspace.job_puts += 1
        now = world.clock()
        existing = workspace.jobs.get(name)
        if existing is not None:
            return JSONResponse(existing.rest(f"{workspace.arm_id}/jobs/{name}", now), status_code=200)
        model = _uri(details, "model") or ""
        job = AmlJob(
            name=name,
            properties=props,
            created_at=now,
            outcome=workspace.outcome_for(model),
            validation_error=workspace.check_training_data(_uri(details, "trainingData")),
        )
        workspace.jobs[name] = job
        return JSONResponse(job.rest(f"{workspace.arm_id}/jobs/{name}", now), status_code=201)


@arm_router.get(_WS + "/jobs/{name}")
def get_job(request: Request, sub: str, rg: str, ws: str, name: str) -> dict[str, Any]:
    """One job, its status on the scenario clock."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    with world.lock:
        workspace.settle(world.clock())
        return _job_or_404(workspace, name).rest(f"{workspace.arm_id}/jobs/{name}", world.clock())


@arm_router.get(_WS + "/jobs")
def list_jobs(request: Request, sub: str, rg: str, ws: str) -> dict[str, Any]:
    """Jobs of the workspace, newest first, paged with ``$skipToken``; ``tag`` keeps the jobs that carry
    that tag key."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    tag = request.query_params.get("tag")
    with world.lock:
        now = world.clock()
        jobs = [
            j
            for j in reversed(workspace.jobs.values())
            if tag is None or tag in (j.properties.get("tags") or {})
        ]
        items = [j.rest(f"{workspace.arm_id}/jobs/{j.name}", now) for j in jobs]
    return paged(request, items, world.page_size)


@arm_router.post(_WS + "/jobs/{name}/cancel")
def cancel_job(request: Request, sub: str, rg: str, ws: str, name: str) -> Response:
    """Request cancellation (202); the job is CancelRequested, then Canceled. A finished job: 400."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    with world.lock:
        job = _job_or_404(workspace, name)
        now = world.clock()
        status = job.status(now)
        if status in ("Completed", "Failed", "Canceled"):
            raise AzureHTTPError(400, "UserError", f"Job {name} is already {status} and cannot be canceled.")
        if job.cancel_requested_at is None:
            job.cancel_requested_at = now
    return Response(status_code=202)


# ---------------------------------------------------------------------------- online deployments


def _endpoint_or_404(ws: Workspace, name: str) -> Any:
    endpoint = ws.endpoints.get(name)
    if endpoint is None:
        raise AzureHTTPError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws.spec.name}/onlineEndpoints/"
            f"{name}' under resource group '{ws.resource_group}' was not found.",
        )
    return endpoint


def _deployment_body(ws: Workspace, dep: OnlineDeployment, now: Any) -> dict[str, Any]:
    return {
        "id": f"{ws.arm_id}/onlineEndpoints/{dep.endpoint}/deployments/{dep.name}",
        "name": dep.name,
        "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
        "location": ws.spec.location.lower(),
        "sku": {"name": "Default", "capacity": dep.instance_count},
        "properties": {
            "endpointComputeType": "Managed",
            "model": dep.model,
            "instanceType": dep.instance_type,
            "scaleSettings": {"scaleType": "Default"},
            "provisioningState": dep.state(now),
            "properties": {},
        },
    }


@arm_router.get(_EP)
def get_endpoint(request: Request, sub: str, rg: str, ws: str, endpoint: str) -> dict[str, Any]:
    """A managed online endpoint with its traffic split."""
    workspace = _workspace(request, sub, rg, ws)
    ep = _endpoint_or_404(workspace, endpoint)
    return {
        "id": f"{workspace.arm_id}/onlineEndpoints/{ep.name}",
        "name": ep.name,
        "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
        "location": workspace.spec.location.lower(),
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "authMode": "Key",
            "traffic": dict(ep.traffic),
            "mirrorTraffic": {},
            "provisioningState": "Succeeded",
            "scoringUri": f"https://{ep.name}.{workspace.spec.location.lower()}.inference.ml.azure.com/score",
        },
    }


@arm_router.get(_EP + "/deployments")
def list_deployments(request: Request, sub: str, rg: str, ws: str, endpoint: str) -> dict[str, Any]:
    """Deployments of an endpoint."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    ep = _endpoint_or_404(workspace, endpoint)
    now = world.clock()
    items = [_deployment_body(workspace, d, now) for d in ep.deployments.values()]
    return paged(request, items, world.page_size)


@arm_router.get(_EP + "/deployments/{name}")
def get_deployment(request: Request, sub: str, rg: str, ws: str, endpoint: str, name: str) -> dict[str, Any]:
    """One deployment; 404 when it does not exist."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    dep = _endpoint_or_404(workspace, endpoint).deployments.get(name)
    if dep is None:
        raise AzureHTTPError(
            404, "ResourceNotFound", f"Deployment {name} of endpoint {endpoint} was not found."
        )
    return _deployment_body(workspace, dep, world.clock())


def _model_name(model: str) -> str | None:
    """The registered model name of ``azureml:NAME:VERSION`` or an ARM id ``.../models/NAME/versions/V``."""
    if model.startswith("azureml:") and not model.startswith("azureml://"):
        return model.split(":")[1]
    parts = model.split("/")
    return parts[parts.index("models") + 1] if "models" in parts[:-1] else None


@arm_router.put(_EP + "/deployments/{name}")
async def put_deployment(
    request: Request, sub: str, rg: str, ws: str, endpoint: str, name: str
) -> JSONResponse:
    """Create or replace a deployment: 201 and Creating for the scenario's LRO delay. The model must be a
    model registered in the workspace (e.g. the output of a completed fine-tuning job)."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    ep = _endpoint_or_404(workspace, endpoint)
    body = await request.json()
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise AzureHTTPError(400, "BadArgument", "properties is required.", target="properties")
    model = props.get("model")
    if not isinstance(model, str) or not model:
        raise AzureHTTPError(400, "BadArgument", "properties.model is required.", target="properties.model")
    with world.lock:
        now = world.clock()
        workspace.settle(now)
        registered = _model_name(model)
        if registered is None or registered not in workspace.models:
            raise AzureHTTPError(
                400,
                "BadArgument",
                f"Model {model} is not registered in workspace {workspace.spec.name}.",
                target="properties.model",
            )
        sku = body.get("sku") or {}
        dep = OnlineDeployment(
            name=name,
            endpoint=endpoint,
            model=model,
            instance_type=str(props.get("instanceType") or "Standard_NC24ads_A100_v4"),
            instance_count=int(sku.get("capacity") or 1),
            ready_at=now + timedelta(seconds=world.scenario.lro_delay_seconds),
        )
        ep.deployments[name] = dep
        out = _deployment_body(workspace, dep, now)
    return JSONResponse(out, status_code=201)


@arm_router.delete(_EP + "/deployments/{name}")
def delete_deployment(request: Request, sub: str, rg: str, ws: str, endpoint: str, name: str) -> Response:
    """Delete a deployment (200; 204 when it is already gone)."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    ep = _endpoint_or_404(workspace, endpoint)
    with world.lock:
        gone = ep.deployments.pop(name, None) is None
        ep.traffic.pop(name, None)
    return Response(status_code=204 if gone else 200)


# ---------------------------------------------------------------------- discovery and run history


@history_router.get("/discovery")
def discovery(region: str) -> dict[str, str]:
    """The regional service URLs azure-ai-ml looks up from the workspace's ``discoveryUrl``."""
    base = f"https://{region}.api.azureml.ms"
    return {name: base for name in ("api", "catalog", "experimentation", "history", "modelmanagement")}


@history_router.get("/history/v1.0" + _WS + "/runs/{run_id}", dependencies=[Depends(require_arm_auth)])
def get_run(request: Request, region: str, sub: str, rg: str, ws: str, run_id: str) -> dict[str, Any]:
    """A job's run: status, start/end times, and ``error.error.{code,message}`` once it failed."""
    world = world_of(request)
    workspace = _workspace(request, sub, rg, ws)
    with world.lock:
        return _job_or_404(workspace, run_id).run(world.clock())


# ------------------------------------------------------------------------------------------ control


@control_router.post("/workspaces/{ws}/faults")
async def inject_faults(request: Request, ws: str) -> dict[str, Any]:
    """Emulator-only: answer the next ARM requests for the workspace with these statuses (429 or 5xx)."""
    world = world_of(request)
    found = world.workspaces.get(ws.lower())
    if found is None:
        raise AzureHTTPError(404, "NotFound", f"the scenario has no workspace {ws}")
    body = await request.json()
    statuses = body.get("statuses") if isinstance(body, dict) else None
    if not isinstance(statuses, list) or not all(
        isinstance(x, int) and (x == 429 or x >= 500) for x in statuses
    ):
        raise AzureHTTPError(400, "BadRequest", "send {'statuses': [429 or 5xx, ...]}")
    with world.lock:
        found.faults = list(statuses)
    return {"faults": found.faults}


@control_router.get("/workspaces/{ws}")
def workspace_stats(request: Request, ws: str) -> dict[str, Any]:
    """Emulator-only: how many job PUTs and blob PUTs a workspace received, its jobs and blobs."""
    world = world_of(request)
    found = world.workspaces.get(ws.lower())
    if found is None:
        raise AzureHTTPError(404, "NotFound", f"the scenario has no workspace {ws}")
    with world.lock:
        now = world.clock()
        return {
            "job_puts": found.job_puts,
            "blob_puts": found.blob_puts,
            "jobs": {name: job.status(now) for name, job in found.jobs.items()},
            "blobs": sorted(k.split("/", 1)[1] for k in found.blobs),
            "models": sorted(found.models),
            "now": iso(now),
        }
