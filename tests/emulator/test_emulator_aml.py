"""The emulator's Azure ML surfaces over real HTTP: workspace, datastore, FineTuning jobs on the scenario
clock, online deployments, run history and the Blob service (azure-ai-ml and azure-storage-blob drive the
same routes in tests/finetune/test_maap.py; these check the wire contract and the refusals directly)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelshift.emulator.scenario import default_scenario_data
from modelshift.emulator.testing import EmulatorHandle, running_emulator

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-claims"
WS = "ws-claims"
WS_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
)
VERSION = {"api-version": "2024-10-01-preview"}
BLOB = "/_blob/wsclaimsstore/azureml-blobstore"
MODEL = "azureml://registries/azureml-meta/models/Meta-Llama-3.1-8B-Instruct/versions/5"
GOOD_JSONL = b"\n".join(
    b'{"messages": [{"role": "user", "content": "q%d"}, {"role": "assistant", "content": "a"}]}' % i
    for i in range(12)
)


@pytest.fixture(scope="module")
def aml_server() -> Iterator[EmulatorHandle]:
    """The default scenario plus one workspace with an endpoint; fine-tuning Llama 70B fails."""
    data = default_scenario_data()
    group = next(g for g in data["subscriptions"][0]["resource_groups"] if g["name"] == RG)
    group["workspaces"] = [
        {
            "name": WS,
            "location": "SwedenCentral",
            "fine_tune": {"Meta-Llama-3.1-70B-Instruct": {"outcome": "fail", "error_code": "QuotaExceeded"}},
            "online_endpoints": [{"name": "claims-ep", "deployments": [{"name": "blue", "model": MODEL}]}],
        }
    ]
    with running_emulator(data, latency_scale=0.0) as handle:
        yield handle


@pytest.fixture
def emu(aml_server: EmulatorHandle) -> EmulatorHandle:
    """Reset before each test."""
    aml_server.reset()
    return aml_server


@pytest.fixture
def arm(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    """ARM with the scenario's bearer token."""
    with httpx.Client(
        base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.bearer_token}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def blob(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    """The Blob service with a (loosely checked) SharedKey header."""
    headers = {"Authorization": "SharedKey wsclaimsstore:c2lnbmF0dXJl", "x-ms-version": "2025-01-05"}
    with httpx.Client(base_url=emu.base_url, headers=headers, timeout=10) as client:
        yield client


def put_blob(blob: httpx.Client, path: str, content: bytes, **headers: str) -> httpx.Response:
    """Put a block blob."""
    return blob.put(f"{BLOB}/{path}", content=content, headers={"x-ms-blob-type": "BlockBlob", **headers})


def job_body(training: str = "modelshift/t/train.jsonl", model: str = MODEL) -> dict[str, Any]:
    """A FineTuning job PUT body as azure-ai-ml 1.35 sends it."""
    return {
        "properties": {
            "jobType": "FineTuning",
            "displayName": "claims",
            "experimentName": "modelshift-finetune",
            "tags": {"modelshift.suffix": "claims"},
            "fineTuningDetails": {
                "taskType": "chatCompletion",
                "modelProvider": "Custom",
                "model": {"uri": model, "jobInputType": "mlflow_model"},
                "trainingData": {
                    "uri": f"azureml://datastores/workspaceblobstore/paths/{training}",
                    "jobInputType": "uri_file",
                },
            },
            "outputs": {"registered_model": {"assetName": "ft-claims", "jobOutputType": "mlflow_model"}},
        }
    }


def stats(emu: EmulatorHandle) -> dict[str, Any]:
    """The emulator-only counts of the workspace."""
    response = httpx.get(f"{emu.base_url}/_emulator/workspaces/{WS}", headers={"api-key": emu.api_key})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_workspace_and_default_datastore(arm: httpx.Client) -> None:
    ws = arm.get(WS_PATH, params=VERSION).json()
    assert ws["location"] == "swedencentral"
    assert ws["properties"]["discoveryUrl"] == "https://swedencentral.api.azureml.ms/discovery"
    (store,) = arm.get(f"{WS_PATH}/datastores", params={**VERSION, "isDefault": "true"}).json()["value"]
    assert (
        store["properties"].items()
        >= {
            "datastoreType": "AzureBlob",
            "accountName": "wsclaimsstore",
            "containerName": "azureml-blobstore",
            "isDefault": True,
        }.items()
    )
    secrets = arm.post(f"{WS_PATH}/datastores/workspaceblobstore/listSecrets", params=VERSION, json={})
    assert secrets.json()["secretsType"] == "AccountKey" and secrets.json()["key"]
    missing = arm.get(f"{WS_PATH}/datastores/other", params=VERSION)
    assert missing.status_code == 404 and "other" in missing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "params", "headers", "status", "code"),
    [
        (WS_PATH, VERSION, None, 401, "AuthenticationFailed"),
        (WS_PATH, {}, "token", 400, "MissingApiVersionParameter"),
        (WS_PATH, {"api-version": "1999-01-01"}, "token", 400, "InvalidApiVersionParameter"),
        (WS_PATH.replace(WS, "ws-none"), VERSION, "token", 404, "ResourceNotFound"),
        (WS_PATH.replace(RG, "rg-support"), VERSION, "token", 404, "ResourceNotFound"),
    ],
)
def test_arm_refusals(
    emu: EmulatorHandle, path: str, params: dict[str, str], headers: str | None, status: int, code: str
) -> None:
    auth = {"Authorization": f"Bearer {emu.bearer_token}"} if headers else {}
    response = httpx.get(f"{emu.base_url}{path}", params=params, headers=auth)
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_blob_put_get_list_and_no_overwrite(blob: httpx.Client, emu: EmulatorHandle) -> None:
    assert put_blob(blob, "modelshift/a/train.jsonl", b"one").status_code == 201
    assert put_blob(blob, "modelshift/b/valid.jsonl", b"two").status_code == 201
    assert put_blob(blob, "other/x.jsonl", b"three").status_code == 201
    again = put_blob(blob, "modelshift/a/train.jsonl", b"changed", **{"If-None-Match": "*"})
    assert again.status_code == 409 and again.headers["x-ms-error-code"] == "BlobAlreadyExists"

    got = blob.get(f"{BLOB}/modelshift/a/train.jsonl")
    assert got.content == b"one" and got.headers["etag"]
    head = blob.head(f"{BLOB}/modelshift/a/train.jsonl")
    assert head.headers["content-length"] == "3"
    listing = blob.get(BLOB, params={"restype": "container", "comp": "list", "prefix": "modelshift/"}).text
    assert (
        "<Name>modelshift/a/train.jsonl</Name>" in listing
        and "<Name>modelshift/b/valid.jsonl</Name>" in listing
    )
    assert "other/x.jsonl" not in listing and "<Content-Length>3</Content-Length>" in listing
    assert stats(emu)["blob_puts"] == 3


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", f"{BLOB}/modelshift/none.jsonl", {}, 404, "BlobNotFound"),
        (
            "PUT",
            "/_blob/wsclaimsstore/other-container/x",
            {"x-ms-blob-type": "BlockBlob"},
            404,
            "ContainerNotFound",
        ),
        ("PUT", f"{BLOB}/x", {"x-ms-blob-type": "PageBlob"}, 400, "InvalidHeaderValue"),
        ("GET", "/_blob/nosuchaccount/c/x", {}, 404, "ResourceNotFound"),
        ("GET", f"{BLOB}/x", {"Authorization": ""}, 403, "AuthenticationFailed"),
        ("GET", f"{BLOB}/x", {"Authorization": "SharedKey someoneelse:c2ln"}, 403, "AuthenticationFailed"),
    ],
)
def test_blob_refusals(
    blob: httpx.Client, method: str, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    response = blob.request(method, path, headers=headers, content=b"x" if method == "PUT" else None)
    assert response.status_code == status and response.headers["x-ms-error-code"] == code


def test_blob_accepts_a_sas(emu: EmulatorHandle, blob: httpx.Client) -> None:
    put_blob(blob, "modelshift/s.jsonl", b"sas")
    response = httpx.get(
        f"{emu.base_url}{BLOB}/modelshift/s.jsonl", params={"sv": "2025-01-05", "sig": "abc"}
    )
    assert response.status_code == 200 and response.content == b"sas"


def status_at(arm: httpx.Client, emu: EmulatorHandle, name: str, advance: float) -> str:
    """The job's status after moving the scenario clock ``advance`` seconds on."""
    emu.advance_clock(advance)
    status: str = arm.get(f"{WS_PATH}/jobs/{name}", params=VERSION).json()["properties"]["status"]
    return status


def test_a_job_progresses_on_the_scenario_clock_and_registers_its_model(
    arm: httpx.Client, blob: httpx.Client, emu: EmulatorHandle
) -> None:
    put_blob(blob, "modelshift/t/train.jsonl", GOOD_JSONL)
    created = arm.put(f"{WS_PATH}/jobs/job-1", params=VERSION, json=job_body())
    assert created.status_code == 201 and created.json()["properties"]["status"] == "NotStarted"
    # default outcome: 5 min queued, 2 min preparing, 60 min running, 1 min finalizing
    seen = [status_at(arm, emu, "job-1", s) for s in (60, 300, 120, 1800, 1780, 60)]
    assert seen == ["Queued", "Preparing", "Running", "Running", "Finalizing", "Completed"]
    done = arm.get(f"{WS_PATH}/jobs/job-1", params=VERSION).json()["properties"]
    assert (
        done["outputs"]["registered_model"].items() >= {"assetName": "ft-claims", "assetVersion": "1"}.items()
    )
    assert stats(emu)["models"] == ["ft-claims"]
    run = httpx.get(
        f"{emu.base_url}/_amlapi/swedencentral/history/v1.0{WS_PATH}/runs/job-1",
        headers={"Authorization": f"Bearer {emu.bearer_token}"},
    ).json()
    assert run["status"] == "Completed" and run["startTimeUtc"] < run["endTimeUtc"] and "error" not in run

    # the same name again returns the job as it is (200) and makes no second one
    again = arm.put(f"{WS_PATH}/jobs/job-1", params=VERSION, json=job_body())
    assert again.status_code == 200 and again.json()["properties"]["status"] == "Completed"
    listed = arm.get(f"{WS_PATH}/jobs", params=VERSION).json()["value"]
    assert [j["name"] for j in listed] == ["job-1"]
    tagged = arm.get(f"{WS_PATH}/jobs", params={**VERSION, "tag": "modelshift.suffix"}).json()["value"]
    assert [j["name"] for j in tagged] == ["job-1"]
    assert arm.get(f"{WS_PATH}/jobs", params={**VERSION, "tag": "other"}).json()["value"] == []
    assert stats(emu)["job_puts"] == 2


@pytest.mark.parametrize(
    ("training", "model", "code", "message"),
    [
        ("modelshift/t/missing.jsonl", MODEL, "UserError", "does not exist"),
        ("modelshift/t/bad.jsonl", MODEL, "UserError", "line 1 is not valid JSON"),
        (
            "modelshift/t/train.jsonl",
            "azureml://registries/azureml-meta/models/Meta-Llama-3.1-70B-Instruct/versions/3",
            "QuotaExceeded",
            "scenario outcome: fail",
        ),
    ],
)
def test_failed_jobs_carry_their_error_in_run_history(
    arm: httpx.Client,
    blob: httpx.Client,
    emu: EmulatorHandle,
    training: str,
    model: str,
    code: str,
    message: str,
) -> None:
    put_blob(blob, "modelshift/t/train.jsonl", GOOD_JSONL)
    put_blob(blob, "modelshift/t/bad.jsonl", b"not json\n")
    arm.put(f"{WS_PATH}/jobs/job-f", params=VERSION, json=job_body(training, model))
    assert status_at(arm, emu, "job-f", 6 * 3600) == "Failed"
    run = httpx.get(
        f"{emu.base_url}/_amlapi/swedencentral/history/v1.0{WS_PATH}/runs/job-f",
        headers={"Authorization": f"Bearer {emu.bearer_token}"},
    ).json()
    assert run["error"]["error"]["code"] == code and message in run["error"]["error"]["message"]


def test_cancel(arm: httpx.Client, blob: httpx.Client, emu: EmulatorHandle) -> None:
    put_blob(blob, "modelshift/t/train.jsonl", GOOD_JSONL)
    arm.put(f"{WS_PATH}/jobs/job-c", params=VERSION, json=job_body())
    assert arm.post(f"{WS_PATH}/jobs/job-c/cancel", params=VERSION).status_code == 202
    assert status_at(arm, emu, "job-c", 0) == "CancelRequested"
    assert status_at(arm, emu, "job-c", 31) == "Canceled"
    late = arm.post(f"{WS_PATH}/jobs/job-c/cancel", params=VERSION)
    assert late.status_code == 400 and "already Canceled" in late.json()["error"]["message"]
    run = httpx.get(
        f"{emu.base_url}/_amlapi/swedencentral/history/v1.0{WS_PATH}/runs/job-c",
        headers={"Authorization": f"Bearer {emu.bearer_token}"},
    ).json()
    assert "startTimeUtc" not in run and run["endTimeUtc"]  # cancelled before it ran

    # cancelled while running: the run started, then ended Canceled
    arm.put(f"{WS_PATH}/jobs/job-r", params=VERSION, json=job_body())
    assert status_at(arm, emu, "job-r", 30 * 60) == "Running"
    arm.post(f"{WS_PATH}/jobs/job-r/cancel", params=VERSION)
    assert status_at(arm, emu, "job-r", 31) == "Canceled"
    run = httpx.get(
        f"{emu.base_url}/_amlapi/swedencentral/history/v1.0{WS_PATH}/runs/job-r",
        headers={"Authorization": f"Bearer {emu.bearer_token}"},
    ).json()
    assert run["status"] == "Canceled" and run["startTimeUtc"] < run["endTimeUtc"] and "error" not in run


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"properties": {"jobType": "Command"}}, "properties.jobType"),
        ({"properties": {"jobType": "FineTuning", "fineTuningDetails": {}}}, "properties.fineTuningDetails"),
        ([], "properties.jobType"),
    ],
)
def test_job_puts_that_are_refused(arm: httpx.Client, body: Any, target: str) -> None:
    response = arm.put(f"{WS_PATH}/jobs/job-x", params=VERSION, json=body)
    assert response.status_code == 400 and response.json()["error"]["target"] == target
    missing = arm.get(f"{WS_PATH}/jobs/job-x", params=VERSION)
    assert missing.status_code == 404


def test_online_deployments(arm: httpx.Client, blob: httpx.Client, emu: EmulatorHandle) -> None:
    ep = f"{WS_PATH}/onlineEndpoints/claims-ep"
    body = {"properties": {"model": "azureml:ft-claims:1", "instanceType": "Standard_NC24ads_A100_v4"}}
    refused = arm.put(f"{ep}/deployments/green", params=VERSION, json=body)
    assert refused.status_code == 400 and "not registered" in refused.json()["error"]["message"]

    put_blob(blob, "modelshift/t/train.jsonl", GOOD_JSONL)
    arm.put(f"{WS_PATH}/jobs/job-1", params=VERSION, json=job_body())
    emu.advance_clock(3 * 3600)
    created = arm.put(f"{ep}/deployments/green", params=VERSION, json={**body, "sku": {"capacity": 2}})
    assert created.status_code == 201
    assert (
        created.json()["sku"]["capacity"] == 2
        and created.json()["properties"]["provisioningState"] == "Creating"
    )
    emu.advance_clock(5)
    names = {
        d["name"]: d["properties"]["provisioningState"]
        for d in arm.get(f"{ep}/deployments", params=VERSION).json()["value"]
    }
    assert names == {"blue": "Succeeded", "green": "Succeeded"}
    assert arm.delete(f"{ep}/deployments/green", params=VERSION).status_code == 200
    assert arm.delete(f"{ep}/deployments/green", params=VERSION).status_code == 204
    assert arm.get(f"{ep}/deployments/green", params=VERSION).status_code == 404
    assert arm.get(f"{WS_PATH}/onlineEndpoints/none", params=VERSION).status_code == 404


def test_injected_faults_answer_the_next_requests_once_each(arm: httpx.Client, emu: EmulatorHandle) -> None:
    control = f"{emu.base_url}/_emulator/workspaces/{WS}/faults"
    refused = httpx.post(control, json={"statuses": [404]}, headers={"api-key": emu.api_key})
    assert refused.status_code == 400
    httpx.post(control, json={"statuses": [429, 503]}, headers={"api-key": emu.api_key}).raise_for_status()
    first = arm.get(WS_PATH, params=VERSION)
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert arm.get(WS_PATH, params=VERSION).status_code == 503
    assert arm.get(WS_PATH, params=VERSION).status_code == 200
