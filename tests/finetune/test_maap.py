"""Catalog-model (MaaP) fine-tuning re-runs through the real azure-ai-ml and azure-storage-blob SDKs,
against the emulator's Azure ML workspace over real HTTP (the SDKs' https URLs routed to it by
:func:`modelshift.platforms.azure.transport.routing_transport`)."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from azure.core.credentials import AccessToken
from conftest import CLAIMS_BUNDLE, ScenarioTime
from pydantic import SecretStr

from modelshift.bundle import load_bundle
from modelshift.bundle.core import Bundle
from modelshift.emulator.scenario import default_scenario_data
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    DeploymentNotFoundError,
    FineTuneFailedError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.finetune import CatalogFineTuneRequest, FineTunePhase, FineTuneRun, PollPolicy
from modelshift.finetune.catalog import registry_model_id
from modelshift.platforms import base
from modelshift.platforms.azure.maap import STATUS, MaapFineTuning, job_name, maap_hyperparameters
from modelshift.platforms.azure.maap_deploy import AmlOnlineDeployments, maap_adapters, maap_routes, ml_client
from modelshift.platforms.azure.transport import emulator_routes, routing_transport
from modelshift.prepare.finetune import catalog_adapters, rerun_fine_tune
from modelshift.settings import Settings
from modelshift.store import Store

# azure-ai-ml emits marshmallow deprecation warnings on import and use; they are not ours
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-claims"
WS = "ws-claims"
ENDPOINT = "claims-ep"
LLAMA = "Meta-Llama-3.1-8B-Instruct"
BASELINE_MODEL = f"azureml://registries/azureml-meta/models/{LLAMA}/versions/4"
TARGET = base.ModelRef(format="Meta", name=LLAMA, version="5")
#: the scenario makes every fine-tune of this catalog model fail with a quota error
FAILING = base.ModelRef(format="Meta", name="Meta-Llama-3.1-70B-Instruct", version="3")
FAIL_CODE, FAIL_MESSAGE = "QuotaExceeded", "Not enough quota for Standard_NC96ads_A100_v4 in swedencentral."
# queue 5 min + 2.5 min preparing, 60 min running, 1 min finalizing: these polls reach the end in a few calls
POLICY = PollPolicy(initial=600, maximum=3600, multiplier=2, timeout=12 * 3600)
WORKSPACE = base.AccountRef(subscription_id=SUB, resource_group=RG, name=WS)


def _scenario() -> dict[str, Any]:
    data = default_scenario_data()
    data["lro_delay_seconds"] = 0.0
    group = next(g for g in data["subscriptions"][0]["resource_groups"] if g["name"] == RG)
    group["workspaces"] = [
        {
            "name": WS,
            "location": "swedencentral",
            "fine_tune": {
                FAILING.name: {"outcome": "fail", "error_code": FAIL_CODE, "error_message": FAIL_MESSAGE}
            },
            "online_endpoints": [
                {
                    "name": ENDPOINT,
                    "deployments": [
                        {"name": "blue", "model": BASELINE_MODEL, "instance_type": "Standard_NC24ads_A100_v4"}
                    ],
                    "traffic": {"blue": 100},
                }
            ],
        }
    ]
    return data


class EmulatorToken:
    """A TokenCredential handing out the emulator's scenario bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The scenario token, valid for an hour."""
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def maap_server() -> Iterator[EmulatorHandle]:
    """The emulator with the claims workspace, for this module."""
    with running_emulator(_scenario(), latency_scale=0.0) as handle:
        yield handle


@pytest.fixture
def emu(maap_server: EmulatorHandle) -> EmulatorHandle:
    """The module's emulator, reset before each test."""
    maap_server.reset()
    return maap_server


def stats(emu: EmulatorHandle) -> dict[str, Any]:
    """The emulator's request counts and contents of the workspace."""
    response = httpx.get(f"{emu.base_url}/_emulator/workspaces/{WS}", headers={"api-key": emu.api_key})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def adapters(emu: EmulatorHandle) -> tuple[MaapFineTuning, AmlOnlineDeployments]:
    """Fresh adapters, as a new worker process builds them."""
    return maap_adapters(
        EmulatorToken(emu.bearer_token),
        WORKSPACE,
        ENDPOINT,
        routes=emulator_routes(emu.base_url),
        polling_interval=0,
    )


def write_bundle(root: Path, **model_changes: Any) -> Bundle:
    """The claims bundle moved onto a Llama catalog model in the workspace (same data and prompts)."""
    shutil.copytree(CLAIMS_BUNDLE.parent / "shared", root / "shared")
    shutil.copytree(CLAIMS_BUNDLE, root / "1.0.0")
    path = root / "1.0.0" / "bundle.yaml"
    manifest = yaml.safe_load(path.read_text())
    model = {
        "platform": "azure-ml",
        "subscription": SUB,
        "resource_group": RG,
        "account": WS,
        "endpoint": ENDPOINT,
        "deployment": "blue",
        "name": LLAMA,
        "version": "4",
        "format": "Meta",
        "sku": {"name": "Standard_NC24ads_A100_v4", "capacity": 1},
        "fine_tune": {
            "training_file": "../shared/train.jsonl",
            "validation_file": "../shared/valid.jsonl",
            "hyperparameters": {"n_epochs": 3, "batch_size": 4},
            "suffix": "claims-tone",
            "seed": 42,
        },
    }
    model.update(model_changes)
    manifest["model"] = {k: v for k, v in model.items() if v is not None}
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return load_bundle(root / "1.0.0")


@pytest.fixture
def llama_bundle(tmp_path: Path) -> Bundle:
    """The catalog-model bundle."""
    return write_bundle(tmp_path / "claims-llama")


class Crash(Exception):
    """Stands for the worker process dying at a chosen point."""


class CrashAfter(MaapFineTuning):
    """The real adapter, except that the process "dies" right after one method went through."""

    def __init__(self, real: MaapFineTuning, method: str) -> None:
        self.__dict__.update(real.__dict__)
        self.method = method

    def upload_file(self, filename: str, content: bytes, purpose: str = "fine-tune") -> base.FileInfo:
        out = super().upload_file(filename, content, purpose)
        if self.method == "upload_file":
            raise Crash("worker died after an upload")
        return out

    def create_job(self, spec: base.FineTuneJobSpec) -> base.FineTuneJob:
        out = super().create_job(spec)
        if self.method == "create_job":
            raise Crash("worker died after submitting the job")
        return out


def rerun(
    bundle: Bundle,
    store: Store,
    t: ScenarioTime,
    ft: MaapFineTuning,
    deployments: AmlOnlineDeployments,
    *,
    target: base.ModelRef = TARGET,
    migration_id: str = "mig-maap",
    on_event: Callable[[base.FineTuneEvent], None] | None = None,
    validate: bool = False,
) -> Any:
    """The fine-tune re-run with the MaaP adapters: the prepare stage's (with its GX data checks, which
    take seconds) when ``validate``, else FineTuneRun on the catalog request directly."""
    if validate:
        return rerun_fine_tune(
            store,
            bundle,
            target,
            migration_id=migration_id,
            fine_tuning=ft,
            deployments=deployments,
            clock=t.now,
            policy=POLICY,
            sleep=t.sleep,
            actor="test",
            on_event=on_event,
        )
    request = CatalogFineTuneRequest.from_catalog_bundle(bundle, target=target, migration_id=migration_id)
    run = FineTuneRun(
        request,
        fine_tuning=ft,
        deployments=deployments,
        store=store,
        clock=t.now,
        sleep=t.sleep,
        policy=POLICY,
        actor="test",
    )
    return run.run(on_event=on_event)


def reasons(store: Store, migration_id: str) -> list[str]:
    """Audit reason codes of a migration, in order."""
    return [e.reason for e in store.audit_events(migration_id)]


@pytest.mark.slow  # the GX data checks of the prepare stage take seconds on their first run
def test_catalog_fine_tune_completes_and_deploys_beside_the_baseline(
    emu: EmulatorHandle, store: Store, llama_bundle: Bundle
) -> None:
    t = ScenarioTime(emu)
    ft, deployments = adapters(emu)
    events: list[base.FineTuneEvent] = []
    result = rerun(llama_bundle, store, t, ft, deployments, on_event=events.append, validate=True)

    record = result.record
    request = CatalogFineTuneRequest.from_catalog_bundle(llama_bundle, target=TARGET, migration_id="mig-maap")
    assert record.phase is FineTunePhase.DEPLOYED and record.job_status == "succeeded"
    assert record.target_model == f"azureml://registries/azureml-meta/models/{LLAMA}/versions/5"
    assert record.job_id == job_name(request.job_suffix)
    assert record.fine_tuned_model == f"azureml:ft-{request.job_suffix}:1"
    # the files went to the default datastore at content-addressed paths, and the job read them from there
    assert record.training_file_id is not None and record.validation_file_id is not None
    assert record.training_file_id.startswith("azureml://datastores/workspaceblobstore/paths/modelshift/")
    assert request.training_sha256 in record.training_file_id
    # the job as Azure ML holds it: the catalog model, the hyperparameters under the recipe's names
    job = ft._ml.jobs.get(record.job_id)
    assert job.model.path == record.target_model
    assert job.training_data.path == record.training_file_id
    assert job.validation_data.path == record.validation_file_id
    assert job.hyperparameters == {"num_train_epochs": "3", "per_device_train_batch_size": "4", "seed": "42"}
    # the deployment: beside blue under the app's endpoint, the baseline's instance type and count
    deployment = result.deployment
    assert deployment.name == request.deployment_name and len(deployment.name) <= 32
    assert deployment.sku_name == "Standard_NC24ads_A100_v4" and deployment.capacity == 1
    assert deployment.provisioning_state is base.ProvisioningState.SUCCEEDED
    assert {d.name for d in deployments.list(WORKSPACE)} == {"blue", deployment.name}
    # run history's milestones reached the callback once each
    assert [e.id.split(":")[-1] for e in events] == ["submitted", "started", "completed"]
    assert reasons(store, "mig-maap") == [
        "data.validated",
        "data.validated",
        "finetune.files_uploaded",
        "finetune.submitted",
        "finetune.succeeded",
        "finetune.deployed",
    ]
    assert stats(emu)["job_puts"] == 1


def test_rerun_after_a_crash_between_submit_and_store_write_adopts_the_job(
    emu: EmulatorHandle, store: Store, llama_bundle: Bundle
) -> None:
    t = ScenarioTime(emu)
    ft, deployments = adapters(emu)
    with pytest.raises(Crash):
        rerun(llama_bundle, store, t, CrashAfter(ft, "create_job"), deployments)
    assert stats(emu)["job_puts"] == 1

    ft2, deployments2 = adapters(emu)
    result = rerun(llama_bundle, store, t, ft2, deployments2)

    assert result.record.phase is FineTunePhase.DEPLOYED
    assert stats(emu)["job_puts"] == 1  # found by list_jobs, never submitted again
    assert list(stats(emu)["jobs"]) == [result.record.job_id]
    assert "finetune.recovered" in reasons(store, "mig-maap")
    assert "finetune.submitted" not in reasons(store, "mig-maap")


def test_already_uploaded_training_files_are_not_uploaded_again(
    emu: EmulatorHandle, store: Store, llama_bundle: Bundle
) -> None:
    t = ScenarioTime(emu)
    ft, deployments = adapters(emu)
    with pytest.raises(Crash):
        rerun(llama_bundle, store, t, CrashAfter(ft, "upload_file"), deployments)
    assert stats(emu)["blob_puts"] == 1  # the training file made it, the run died before validation

    rerun(llama_bundle, store, t, *adapters(emu))
    after = stats(emu)
    assert after["blob_puts"] == 2  # only the validation file was still missing
    assert len(after["blobs"]) == 2

    # another migration of the same data finds both files on the datastore
    rerun(llama_bundle, store, t, *adapters(emu), migration_id="mig-maap-2")
    assert stats(emu)["blob_puts"] == 2


def test_failed_job_raises_with_azure_mls_error(
    emu: EmulatorHandle, store: Store, llama_bundle: Bundle
) -> None:
    t = ScenarioTime(emu)
    ft, deployments = adapters(emu)
    events: list[base.FineTuneEvent] = []
    with pytest.raises(FineTuneFailedError) as caught:
        rerun(llama_bundle, store, t, ft, deployments, target=FAILING, on_event=events.append)

    assert caught.value.code == FAIL_CODE
    assert FAIL_MESSAGE in str(caught.value)
    assert events[-1].level == "error" and FAIL_MESSAGE in events[-1].message
    assert {d.name for d in deployments.list(WORKSPACE)} == {"blue"}  # nothing deployed
    assert reasons(store, "mig-maap")[-1] == "finetune.failed"

    # a re-run does not submit again and raises the same error from the store
    with pytest.raises(FineTuneFailedError):
        rerun(llama_bundle, store, t, *adapters(emu), target=FAILING)
    assert stats(emu)["job_puts"] == 1


def test_bad_training_data_fails_the_job_with_the_data_error(emu: EmulatorHandle) -> None:
    ft, _ = adapters(emu)
    bad = ft.upload_file("bad.jsonl", b'{"prompt": "no chat messages"}\n')
    job = ft.create_job(
        base.FineTuneJobSpec(
            model=registry_model_id(TARGET, model_format="Meta"), training_file=bad.id, suffix="bad"
        )
    )
    assert job.status is base.FineTuneStatus.CREATED and job.validation_file is None
    emu.advance_clock(15 * 60)
    failed = ft.get_job(job.id)
    assert failed.status is base.FineTuneStatus.FAILED
    assert failed.error is not None and failed.error.code == "UserError"
    assert "has no 'messages' list" in (failed.error.message or "")


def test_cancel_job(emu: EmulatorHandle) -> None:
    ft, _ = adapters(emu)
    good = ft.upload_file("train.jsonl", (CLAIMS_BUNDLE.parent / "shared" / "train.jsonl").read_bytes())
    spec = base.FineTuneJobSpec(
        model=registry_model_id(TARGET, model_format="Meta"), training_file=good.id, suffix="c"
    )
    job = ft.create_job(spec)
    assert ft.cancel_job(job.id).status is base.FineTuneStatus.RUNNING  # CancelRequested
    emu.advance_clock(60)
    cancelled = ft.get_job(job.id)
    assert cancelled.status is base.FineTuneStatus.CANCELLED
    assert cancelled.error is not None and cancelled.error.code == "Canceled"


def test_a_missing_workspace_is_named(emu: EmulatorHandle) -> None:
    ft, _ = maap_adapters(
        EmulatorToken(emu.bearer_token),
        WORKSPACE.model_copy(update={"name": "ws-typo"}),
        ENDPOINT,
        routes=emulator_routes(emu.base_url),
    )
    with pytest.raises(BadRequestError, match=r"ws-typo.*model\.account"):
        ft.list_files()


def test_a_wrong_credential_is_an_auth_error(emu: EmulatorHandle) -> None:
    ft, _ = maap_adapters(
        EmulatorToken("not-a-token"), WORKSPACE, ENDPOINT, routes=emulator_routes(emu.base_url)
    )
    with pytest.raises(AuthError, match="ws-claims"):
        ft.list_jobs()


# ----------------------------------------------------------------------------------- bad input


def test_incomplete_workspace_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="resource_group"):
        ml_client(EmulatorToken("t"), base.AccountRef(subscription_id=SUB, resource_group="", name=WS))


def test_azure_openai_bundles_are_not_catalog_requests(tmp_path: Path) -> None:
    aoai = load_bundle(CLAIMS_BUNDLE)
    with pytest.raises(ConfigError, match="azure-ml bundle"):
        CatalogFineTuneRequest.from_catalog_bundle(aoai, target=TARGET, migration_id="m")


@pytest.mark.parametrize(
    ("target", "model_format", "match"),
    [
        (base.ModelRef(name=LLAMA, version=None), "Meta", "has no version"),
        (base.ModelRef(name="phi-9", version="1"), "Contoso", "no Azure ML registry is known"),
        (base.ModelRef(name="azureml://registries/x/models/y"), "Meta", "not a registry model id"),
    ],
)
def test_unresolvable_targets_are_refused(target: base.ModelRef, model_format: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        registry_model_id(target, model_format=model_format)


def test_registry_ids() -> None:
    assert registry_model_id(TARGET, model_format="Meta") == (
        f"azureml://registries/azureml-meta/models/{LLAMA}/versions/5"
    )
    given = "azureml://registries/azureml/models/Phi-4/versions/7"
    assert registry_model_id(base.ModelRef(name=given), model_format="Contoso") == given
    assert "registries/mine/" in registry_model_id(TARGET, registry="mine", model_format="Contoso")


def test_learning_rate_multiplier_is_refused_by_name(tmp_path: Path, store: Store) -> None:
    bundle = write_bundle(
        tmp_path / "b",
        fine_tune={
            "training_file": "../shared/train.jsonl",
            "hyperparameters": {"n_epochs": 2, "learning_rate_multiplier": 0.5},
            "suffix": "x",
        },
    )
    request = CatalogFineTuneRequest.from_catalog_bundle(bundle, target=TARGET, migration_id="m")
    with pytest.raises(ConfigError, match="learning_rate_multiplier"):
        maap_hyperparameters(request.hyperparameters, where="bundle")


def test_job_spec_without_suffix_or_with_a_non_catalog_model_is_refused(emu: EmulatorHandle) -> None:
    ft, _ = adapters(emu)
    with pytest.raises(ConfigError, match="suffix"):
        ft.create_job(
            base.FineTuneJobSpec(model=registry_model_id(TARGET, model_format="Meta"), training_file="f")
        )
    with pytest.raises(ConfigError, match="not a catalog model id"):
        ft.create_job(base.FineTuneJobSpec(model="gpt-4o-mini-2024-07-18", training_file="f", suffix="s"))
    assert stats(emu)["job_puts"] == 0


@pytest.mark.parametrize(
    ("aml", "expected"),
    [
        ("NotStarted", "created"),
        ("Queued", "pending"),
        ("Preparing", "pending"),
        ("Provisioning", "pending"),
        ("Starting", "pending"),
        ("Running", "running"),
        ("Finalizing", "running"),
        ("CancelRequested", "running"),
        ("NotResponding", "running"),
        ("Paused", "paused"),
        ("Completed", "succeeded"),
        ("Failed", "failed"),
        ("Canceled", "cancelled"),
    ],
)
def test_status_mapping(aml: str, expected: str) -> None:
    assert STATUS[aml].value == expected


# ------------------------------------------------------------------------- adapters from settings


def test_catalog_adapters_from_settings_reach_the_workspace(
    emu: EmulatorHandle, llama_bundle: Bundle
) -> None:
    settings = Settings(_env_file=None, arm_url=emu.base_url, arm_token=SecretStr(emu.bearer_token))
    ft, deployments = catalog_adapters(llama_bundle, settings)
    uploaded = ft.upload_file("t.jsonl", b'{"messages": []}\n')
    assert [f.id for f in ft.list_files()] == [uploaded.id]
    assert deployments.get(WORKSPACE, "blue").model.name == BASELINE_MODEL
    assert stats(emu)["blob_puts"] == 1


def test_catalog_adapters_refuse_an_azure_openai_bundle() -> None:
    with pytest.raises(ConfigError, match="platform azure-openai"):
        catalog_adapters(load_bundle(CLAIMS_BUNDLE), Settings(_env_file=None))


@pytest.mark.parametrize(
    ("arm_url", "expected"),
    [
        ("https://management.azure.com", None),
        ("https://management.azure.com/", None),
        ("http://127.0.0.1:8765", emulator_routes("http://127.0.0.1:8765")),
        ("https://arm.contoso.internal", {"management.azure.com": "https://arm.contoso.internal"}),
    ],
)
def test_maap_routes(arm_url: str, expected: dict[str, str] | None) -> None:
    assert maap_routes(arm_url) == expected


# ------------------------------------------------------------------------------- deployments


def test_online_deployments_adapter_refusals_and_idempotent_delete(emu: EmulatorHandle) -> None:
    _, deployments = adapters(emu)
    with pytest.raises(DeploymentNotFoundError, match="'green' under endpoint 'claims-ep'"):
        deployments.get(WORKSPACE, "green")
    deployments.delete(WORKSPACE, "green")  # already gone: fine
    other = WORKSPACE.model_copy(update={"name": "ws-other"})
    with pytest.raises(ConfigError, match="ws-other"):
        deployments.list(other)
    spec = base.DeploymentSpec(
        model=base.ModelRef(name="azureml:ft-x:1"), sku_name="Standard_NC24ads_A100_v4"
    )
    with pytest.raises(ConfigError, match="3-32"):
        deployments.create_or_update(WORKSPACE, "x" * 33, spec)
    # a model the workspace never registered: Azure ML's 400 names it
    with pytest.raises(BadRequestError, match="ft-x"):
        deployments.create_or_update(WORKSPACE, "green", spec)
    assert {d.name for d in deployments.list(WORKSPACE)} == {"blue"}


def test_create_job_returns_the_job_already_named_so_and_refuses_a_foreign_one(emu: EmulatorHandle) -> None:
    ft, _ = adapters(emu)
    good = ft.upload_file("train.jsonl", (CLAIMS_BUNDLE.parent / "shared" / "train.jsonl").read_bytes())
    spec = base.FineTuneJobSpec(
        model=registry_model_id(TARGET, model_format="Meta"), training_file=good.id, suffix="s1"
    )
    first = ft.create_job(spec)
    again = ft.create_job(spec)  # e.g. a re-run whose job list did not show the job yet
    assert again.id == first.id and stats(emu)["job_puts"] == 1

    # a job of that name that modelshift did not submit (no suffix tag) is not taken over
    foreign = {
        "properties": {
            "jobType": "FineTuning",
            "fineTuningDetails": {
                "taskType": "chatCompletion",
                "modelProvider": "Custom",
                "model": {"uri": spec.model, "jobInputType": "mlflow_model"},
                "trainingData": {"uri": good.id, "jobInputType": "uri_file"},
            },
        }
    }
    path = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
        f"/jobs/{job_name('s2')}"
    )
    httpx.put(
        f"{emu.base_url}{path}",
        params={"api-version": "2024-10-01-preview"},
        json=foreign,
        headers={"Authorization": f"Bearer {emu.bearer_token}"},
    ).raise_for_status()
    with pytest.raises(ConfigError, match="did not submit"):
        ft.create_job(spec.model_copy(update={"suffix": "s2"}))
    assert stats(emu)["job_puts"] == 2


# ----------------------------------------------------------------------- retryable platform errors


def no_retry(emu: EmulatorHandle, base_url: str | None = None) -> MaapFineTuning:
    """The adapter on an MLClient whose own retries are off, so each fault reaches the translation."""
    from azure.ai.ml import MLClient

    routes = emulator_routes(base_url or emu.base_url)
    ml = MLClient(
        EmulatorToken(emu.bearer_token),
        SUB,
        RG,
        WS,
        enable_telemetry=False,
        show_progress=False,
        transport=routing_transport(routes),
        retry_total=0,
    )
    return MaapFineTuning(ml, blob_transport=routing_transport(routes))


@pytest.mark.parametrize(
    ("status", "error"), [(429, ThrottledError), (503, TransientPlatformError), (500, TransientPlatformError)]
)
def test_throttling_and_server_errors_are_retryable(emu: EmulatorHandle, status: int, error: type) -> None:
    httpx.post(
        f"{emu.base_url}/_emulator/workspaces/{WS}/faults",
        json={"statuses": [status]},
        headers={"api-key": emu.api_key},
    ).raise_for_status()
    ft = no_retry(emu)
    with pytest.raises(error, match="ws-claims") as caught:
        ft.list_jobs()
    assert caught.value.retryable and caught.value.status_code == status
    if status == 429:
        assert isinstance(caught.value, ThrottledError) and caught.value.retry_after == 1.0
    assert ft.list_jobs() == []  # the fault is spent: the retry goes through


def test_an_unreachable_workspace_is_transient(emu: EmulatorHandle) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientPlatformError, match="could not reach Azure ML") as caught:
        no_retry(emu, f"http://127.0.0.1:{port}").list_jobs()
    assert caught.value.retryable
