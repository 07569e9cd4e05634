"""Contract tests: every Azure payload in tests/contracts/azure/ parses with the adapter's models.

The files are verbatim public spec examples (see /shared azure-contracts README). Besides them, variants of
other api-versions are constructed here: newer fields missing, unknown fields added, capacity absent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshift.errors import (
    BadRequestError,
    DeploymentNotFoundError,
    ModelRetiredError,
    PlatformError,
)
from modelshift.platforms import base
from modelshift.platforms.azure.auth import ApiKeyCredential
from modelshift.platforms.azure.http import Target, translate_response
from modelshift.platforms.azure.models import ArmDeployment, ArmLocationModel, ArmPage
from modelshift.platforms.azure.openai_models import (
    DpEvent,
    DpFile,
    DpFineTuningJob,
    DpList,
    DpModel,
)

AZURE = Path(__file__).parent / "azure"
ACCOUNT = base.AccountRef(subscription_id="sub", resource_group="rg", name="accountName")


def load(name: str) -> Any:
    return json.loads((AZURE / name).read_text(encoding="utf-8"))


def body(name: str, status: str = "200") -> Any:
    return load(name)["responses"][status]["body"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------ one checker per contract file


def check_location_models(doc: Any) -> None:
    page = ArmPage[ArmLocationModel].model_validate(doc["responses"]["200"]["body"])
    models = [m.to_result() for m in page.value]
    assert len(models) == 6
    by_key = {(m.model.name, m.model.version): m for m in models}
    ada = by_key[("ada", "1")]
    assert ada.lifecycle_status is base.LifecycleStatus.LEGACY
    assert ada.deprecation_status == "Planned"
    assert ada.inference_retirement == utc(2024, 6, 14)
    assert ada.fine_tune_retirement == utc(2024, 6, 14)
    old_4o = by_key[("gpt-4o", "2024-05-13")]
    assert old_4o.lifecycle_status is base.LifecycleStatus.DEPRECATING
    assert old_4o.replacement is not None
    assert old_4o.replacement.model == base.ModelRef(name="gpt-4.1", version="2025-04-14")
    assert old_4o.replacement.auto_upgrade_start == utc(2025, 3, 26, 7)
    assert old_4o.replacement.upgrade_on_expiry_lead_time_days == 7
    turbo = by_key[("gpt-35-turbo", "0301")]
    assert turbo.lifecycle_status is base.LifecycleStatus.DEPRECATED
    standard = turbo.sku("standard")
    assert standard is not None and standard.deprecation_date == utc(2025, 2, 13)
    assert turbo.sku("Provisioned") is not None
    assert turbo.sku("Provisioned").deprecation_date == utc(2025, 5, 15)  # type: ignore[union-attr]
    assert turbo.capabilities["maxTotalToken"] == "4096"
    assert by_key[("Llama-3.2-90B-Vision-Instruct", "2")].lifecycle_status is base.LifecycleStatus.STABLE
    assert by_key[("Llama-3.2-90B-Vision-Instruct", "2")].model.format == "Meta"
    dalle = by_key[("dall-e-3", "3.0")]
    assert dalle.is_default_version and dalle.kind == "AIServices"
    assert dalle.lifecycle_status is base.LifecycleStatus.GENERALLY_AVAILABLE
    ga_4o = by_key[("gpt-4o", "2024-08-06")]
    assert ga_4o.inference_retirement is None and ga_4o.replacement is None
    assert ga_4o.fine_tune_capabilities["fineTune"] == "true"
    assert all(m.inference_retirement is None or m.inference_retirement.tzinfo is not None for m in models)


def check_deployment(
    status: str, expected_state: base.ProvisioningState, deployment_state: str
) -> Callable[[Any], None]:
    def check(doc: Any) -> None:
        dep = ArmDeployment.model_validate(doc["responses"][status]["body"]).to_result(ACCOUNT)
        assert dep.name == "deploymentName"
        assert dep.provisioning_state is expected_state
        assert dep.deployment_state == deployment_state
        assert dep.sku_name == "Standard" and dep.capacity == 1
        assert dep.model.format == "OpenAI" and dep.model.version is not None

    return check


def check_deployment_put(doc: Any) -> None:
    check_deployment("200", base.ProvisioningState.SUCCEEDED, "Running")(doc)
    check_deployment("201", base.ProvisioningState.ACCEPTED, "Running")(doc)
    # the request body of the example is itself a (partial) deployment and must parse too
    request = {"name": "deploymentName", **doc["parameters"]["deployment"]}
    assert ArmDeployment.model_validate(request).to_result(ACCOUNT).model.name == "ada"


def check_deployments_list(doc: Any) -> None:
    page = ArmPage[ArmDeployment].model_validate(doc["responses"]["200"]["body"])
    assert page.next_link is None
    (dep,) = [d.to_result(ACCOUNT) for d in page.value]
    assert dep.model == base.ModelRef(format="OpenAI", name="ada", version="1")
    assert dep.version_upgrade_option is None  # 2024-10-01 example does not say: treat as not pinned
    assert dep.deployment_state is None


def check_models_list(doc: Any) -> None:
    page = DpList.model_validate(doc["responses"]["200"]["body"])
    base_model, tuned = (DpModel.model_validate(i).to_result() for i in page.data)
    assert base_model.lifecycle_status is base.LifecycleStatus.GENERALLY_AVAILABLE
    assert base_model.inference_retirement == datetime.fromtimestamp(1709284527, tz=UTC)
    assert base_model.fine_tune_retirement == datetime.fromtimestamp(1677662127, tz=UTC)
    assert tuned.model.name == "curie.ft-72a2792ef7d24ba7b82c7fe4a37e379f"
    assert tuned.fine_tune_retirement is None
    assert tuned.base_model == base.ModelRef(name="curie")
    assert tuned.capabilities["fine_tune"] == "false"


def check_model_get(doc: Any) -> None:
    model = DpModel.model_validate(doc["responses"]["200"]["body"]).to_result()
    assert model.model.name == "curie"
    assert model.inference_retirement is not None and model.inference_retirement.tzinfo is not None
    assert model.inference_retirement.year == 2024


def check_legacy_deployments(doc: Any) -> None:
    # modelshift never calls this (absent from 2024-10-21); it still parses as a data-plane list
    page = DpList.model_validate(doc["responses"]["200"]["body"])
    assert page.data[0]["object"] == "deployment" and not page.has_more


def check_file_upload(doc: Any) -> None:
    f = DpFile.model_validate(doc["responses"]["201"]["body"]).to_result()
    assert f.id.startswith("file-") and f.filename == "puppy.jsonl" and f.status == "pending"
    assert f.created_at == datetime.fromtimestamp(1646126127, tz=UTC)
    assert doc["responses"]["201"]["headers"]["location"].endswith(f.id)


def check_job(status: str, expected: base.FineTuneStatus) -> Callable[[Any], None]:
    def check(doc: Any) -> None:
        job = DpFineTuningJob.model_validate(doc["responses"][status]["body"]).to_result()
        assert job.id.startswith("ft-") and job.model == "curie"
        assert job.status is expected
        assert job.hyperparameters == {"n_epochs": -1}
        assert job.created_at is not None and job.created_at.tzinfo is not None

    return check


def check_job_get(doc: Any) -> None:
    check_job("200", base.FineTuneStatus.SUCCEEDED)(doc)
    job = DpFineTuningJob.model_validate(doc["responses"]["200"]["body"]).to_result()
    assert job.fine_tuned_model == "curie.ft-72a2792ef7d24ba7b82c7fe4a37e379f"
    assert job.finished_at == datetime.fromtimestamp(1646127311, tz=UTC)
    assert job.trained_tokens == 2342 and job.status.terminal


def check_events(doc: Any) -> None:
    page = DpList.model_validate(doc["responses"]["200"]["body"])
    events = [DpEvent.model_validate(i).to_result() for i in page.data]
    assert [e.message for e in events][-1] == "Job succeeded."
    assert all(e.level == "info" and e.created_at.tzinfo is not None for e in events)
    assert page.has_more is False


def check_errors(doc: Any) -> None:
    expected: dict[str, tuple[type[PlatformError], str | None]] = {
        "retired_model_deployment": (ModelRetiredError, "ModelDeprecated"),
        "deployment_not_found": (DeploymentNotFoundError, "DeploymentNotFound"),
        "retired_model_deployment_alt_report": (DeploymentNotFoundError, "404"),
        "arm_create_deployment_on_deprecated_model": (BadRequestError, "ServiceModelDeprecated"),
    }
    entries = {k: v for k, v in doc.items() if not k.startswith("_")}
    assert set(entries) == set(expected)
    for key, entry in entries.items():
        if "body" in entry:
            payload = entry["body"]
        else:  # the ARM entry is a CLI log line "Code: message"
            code, _, message = entry["error_text"].partition(":")
            payload = {"error": {"code": code, "message": message.strip()}}
        request = httpx.Request("POST", "https://contoso-aoai.openai.azure.com/openai/deployments/chat-4o/x")
        response = httpx.Response(entry["status"], json=payload, request=request)
        target = Target("Azure OpenAI data plane", account="contoso-aoai", deployment="chat-4o")
        err = translate_response(response, target, ApiKeyCredential("k"))
        cls, code = expected[key]
        assert type(err) is cls, key
        assert err.code == code and err.status_code == entry["status"]
        assert "chat-4o" in err.message and "contoso-aoai" in err.message


CONTRACTS: dict[str, Callable[[Any], None]] = {
    "arm-location-models-list.2026-09-01.json": check_location_models,
    "arm-deployment-get.2025-12-01.json": check_deployment(
        "200", base.ProvisioningState.SUCCEEDED, "Running"
    ),
    "arm-deployment-pause.2025-12-01.json": check_deployment(
        "200", base.ProvisioningState.SUCCEEDED, "Paused"
    ),
    "arm-deployment-put.2026-09-01.json": check_deployment_put,
    "arm-deployments-list.2024-10-01.json": check_deployments_list,
    "aoai-models-list.2024-10-21.json": check_models_list,
    "aoai-model-get-base.2024-10-21.json": check_model_get,
    "aoai-deployments-list.legacy-2022-12-01.json": check_legacy_deployments,
    "aoai-inference-errors.observed.json": check_errors,
    "finetune-file-upload.2024-10-21.json": check_file_upload,
    "finetune-job-create.2024-10-21.json": check_job("201", base.FineTuneStatus.PENDING),
    "finetune-job-create.2025-04-01-preview.json": check_job("201", base.FineTuneStatus.PENDING),
    "finetune-job-pause.2025-04-01-preview.json": check_job("200", base.FineTuneStatus.PAUSED),
    "finetune-job-get.2024-10-21.json": check_job_get,
    "finetune-job-events.2024-10-21.json": check_events,
}


def test_every_contract_file_has_a_checker() -> None:
    assert sorted(p.name for p in AZURE.glob("*.json")) == sorted(CONTRACTS)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_contract_parses(name: str) -> None:
    CONTRACTS[name](load(name))


@pytest.mark.parametrize("name", sorted(p.name for p in AZURE.glob("*.jsonl")))
def test_training_data_is_chat_jsonl(name: str) -> None:
    lines = (AZURE / name).read_text(encoding="utf-8-sig").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert rows and all(isinstance(r["messages"], list) and r["messages"] for r in rows)


# --------------------------------------------------------------- variants of other api-versions


def _location_model(**overrides: Any) -> dict[str, Any]:
    item = copy.deepcopy(body("arm-location-models-list.2026-09-01.json")["value"][3])
    item["model"].update(overrides)
    return item


def _without(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        item["model"].pop(key, None)
    return item


@pytest.mark.parametrize(
    ("item", "check"),
    [
        pytest.param(
            _without(_location_model(), "replacementConfig", "modelCatalogAssetId", "systemData"),
            lambda m: m.replacement is None and m.lifecycle_status is base.LifecycleStatus.DEPRECATING,
            id="2025-06-01-no-replacementConfig",
        ),
        pytest.param(
            _location_model(deprecation={"inference": "2025-09-15T00:00:00Z"}),
            lambda m: m.deprecation_status is None and m.inference_retirement == utc(2025, 9, 15),
            id="no-deprecationStatus",
        ),
        pytest.param(
            _location_model(deprecation={"inference": "2025-09-15"}),
            lambda m: m.inference_retirement == utc(2025, 9, 15),
            id="date-only-string",
        ),
        pytest.param(
            _location_model(deprecation={"inference": "2025-09-15T00:00:00+02:00"}),
            lambda m: m.inference_retirement == utc(2025, 9, 14, 22),
            id="offset-date-normalised-to-utc",
        ),
        pytest.param(
            _location_model(lifecycleStatus="Sunsetting", futureField={"x": 1}),
            lambda m: (
                m.lifecycle_status is base.LifecycleStatus.UNKNOWN and m.lifecycle_status_raw == "Sunsetting"
            ),
            id="unknown-lifecycle-and-extra-fields",
        ),
        pytest.param(
            _without(_location_model(), "lifecycleStatus", "deprecation", "skus", "capabilities"),
            lambda m: (
                m.lifecycle_status is base.LifecycleStatus.UNKNOWN and m.skus == () and not m.capabilities
            ),
            id="minimal-model",
        ),
        pytest.param(
            _location_model(skus=[{"name": "Standard", "newSkuField": True}]),
            lambda m: m.skus[0].capacity_default is None and m.skus[0].deprecation_date is None,
            id="sku-capacity-absent",
        ),
        pytest.param(
            {**_location_model(), "kind": None, "brandNewTopLevel": [1, 2]},
            lambda m: m.kind is None,
            id="extra-top-level-field",
        ),
    ],
)
def test_location_model_variants(item: dict[str, Any], check: Callable[[base.CatalogModel], bool]) -> None:
    assert check(ArmLocationModel.model_validate(item).to_result())


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        pytest.param(
            lambda d: d.pop("sku"), lambda d: d.sku_name == "Standard" and d.capacity is None, id="no-sku"
        ),
        pytest.param(lambda d: d["sku"].pop("capacity"), lambda d: d.capacity is None, id="capacity-absent"),
        pytest.param(
            lambda d: d["properties"].update(currentCapacity=5) or d["sku"].pop("capacity"),
            lambda d: d.capacity == 5,
            id="capacity-from-currentCapacity",
        ),
        pytest.param(
            lambda d: d["properties"].update(versionUpgradeOption="NoAutoUpgrade"),
            lambda d: d.version_upgrade_option is base.VersionUpgradeOption.NO_AUTO_UPGRADE,
            id="pinned",
        ),
        pytest.param(
            lambda d: d["properties"].update(versionUpgradeOption="SomeFutureOption"),
            lambda d: d.version_upgrade_option is None,
            id="unknown-upgrade-option",
        ),
        pytest.param(
            lambda d: d["properties"].update(provisioningState="Reticulating", routing={"mode": "cost"}),
            lambda d: d.provisioning_state is base.ProvisioningState.UNKNOWN,
            id="unknown-state-and-extra",
        ),
        pytest.param(
            lambda d: d["properties"].pop("deploymentState"),
            lambda d: d.deployment_state is None,
            id="2025-06-01",
        ),
    ],
)
def test_deployment_variants(
    mutate: Callable[[dict[str, Any]], Any], check: Callable[[base.Deployment], bool]
) -> None:
    raw = copy.deepcopy(body("arm-deployment-get.2025-12-01.json"))
    mutate(raw)
    assert check(ArmDeployment.model_validate(raw).to_result(ACCOUNT))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"lifecycle_status": "preview"}, base.LifecycleStatus.PREVIEW),
        ({"lifecycle_status": "generally-available"}, base.LifecycleStatus.GENERALLY_AVAILABLE),
        ({"lifecycle_status": "deprecating"}, base.LifecycleStatus.DEPRECATING),
        ({"lifecycle_status": "retired-someday"}, base.LifecycleStatus.UNKNOWN),
        ({}, base.LifecycleStatus.UNKNOWN),
    ],
)
def test_data_plane_lifecycle_variants(payload: dict[str, Any], expected: base.LifecycleStatus) -> None:
    raw = {**body("aoai-model-get-base.2024-10-21.json"), **payload, "extra": {"new": 1}}
    if not payload:
        raw.pop("lifecycle_status")
    assert DpModel.model_validate(raw).to_result().lifecycle_status is expected


def test_unknown_job_status_keeps_polling() -> None:
    raw = {**body("finetune-job-get.2024-10-21.json"), "status": "queued_for_gpu", "estimated_finish": 1}
    job = DpFineTuningJob.model_validate(raw).to_result()
    assert job.status is base.FineTuneStatus.PENDING and not job.status.terminal


def test_failed_job_error_is_kept() -> None:
    raw = {
        **body("finetune-job-get.2024-10-21.json"),
        "status": "failed",
        "error": {"code": "invalidTrainingFile", "message": "line 3 is not JSON", "param": "training_file"},
    }
    job = DpFineTuningJob.model_validate(raw).to_result()
    assert job.error == base.JobError(
        code="invalidTrainingFile", message="line 3 is not JSON", param="training_file"
    )
