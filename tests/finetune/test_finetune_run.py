"""FineTuneRun against the real emulator over HTTP: the whole re-run, crashes, failures and the timeout."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from conftest import ACCOUNT, FAILING_TARGET, RequestLog, ScenarioTime

from modelshift.bundle.core import Bundle
from modelshift.emulator.testing import EmulatorHandle
from modelshift.errors import ConfigError, FineTuneFailedError, OperationFailedError, PlatformError
from modelshift.finetune import (
    FineTuneJobStore,
    FineTunePhase,
    FineTuneRequest,
    FineTuneResult,
    FineTuneRun,
    PollPolicy,
)
from modelshift.platforms import base
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.azure.openai import AzureOpenAIClient
from modelshift.store import Store

TARGET = base.ModelRef(name="gpt-4.1", version="2025-04-14")
# gpt-4.1 in the scenario: 30 s created, 10 min queued, 120 min training; these polls reach it in ~8 calls
POLICY = PollPolicy(initial=300, maximum=1800, multiplier=2, timeout=6 * 3600)
BASELINE_FT_MODEL = "gpt-4o-mini-2024-07-18.ft-7c1f0e5a9b2d4c3e8f6a1b0c9d8e7f60"


class Crash(Exception):
    """Stands for the worker process dying at a chosen point."""


class CrashingClient(AzureOpenAIClient):
    """The real Azure adapter, except that the process "dies" right after the n-th call of one method
    went through (so Azure did the work but the run never got to record it)."""

    def __init__(self, real: AzureOpenAIClient, method: str, after_calls: int) -> None:
        super().__init__(real.http, real._dp.endpoint, api_version=real._dp.api_version)
        self.method = method
        self.after_calls = after_calls
        self.calls = 0

    def _maybe_crash(self, method: str) -> None:
        if method == self.method:
            self.calls += 1
            if self.calls >= self.after_calls:
                raise Crash(f"worker died after {method}")

    def upload_file(self, filename: str, content: bytes, purpose: str = "fine-tune") -> base.FileInfo:
        out = super().upload_file(filename, content, purpose)
        self._maybe_crash("upload_file")
        return out

    def create_job(self, spec: base.FineTuneJobSpec) -> base.FineTuneJob:
        out = super().create_job(spec)
        self._maybe_crash("create_job")
        return out


def run_of(
    request: FineTuneRequest,
    ft: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    t: ScenarioTime,
    *,
    policy: PollPolicy = POLICY,
    sleep: Callable[[float], None] | None = None,
) -> FineTuneRun:
    """A fresh run object, as a new worker process would build it."""
    return FineTuneRun(
        request,
        fine_tuning=ft,
        deployments=arm,
        store=store,
        clock=t.now,
        sleep=sleep or t.sleep,
        policy=policy,
        actor="test",
    )


def claims_request(bundle: Bundle, migration_id: str, target: base.ModelRef = TARGET) -> FineTuneRequest:
    """The claims bundle's re-run on ``target``."""
    return FineTuneRequest.from_bundle(bundle, target=target, migration_id=migration_id)


def reasons(store: Store, migration_id: str) -> list[str]:
    """The audit reason codes of a migration, in order."""
    return [e.reason for e in store.audit_events(migration_id)]


def test_success_end_to_end(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    any_store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
) -> None:
    request = claims_request(claims_bundle, "mig-ok")
    streamed: list[base.FineTuneEvent] = []
    result = run_of(request, aoai, arm, any_store, scenario_time).run(on_event=streamed.append)

    record = result.record
    assert record.phase is FineTunePhase.DEPLOYED and record.job_status == "succeeded"
    assert record.fine_tuned_model is not None
    assert record.fine_tuned_model.startswith("gpt-4.1-2025-04-14.ft-")
    assert record.deployment_name == request.deployment_name == result.deployment.name  # type: ignore[union-attr]

    # the job Azure ran: new base, the bundle's data, hyperparameters, suffix (+ short key) and seed
    (job,) = aoai.list_jobs()
    assert job.id == record.job_id and job.model == "gpt-4.1-2025-04-14"
    assert job.hyperparameters == {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.0}
    assert job.suffix == request.job_suffix and job.suffix.startswith("claims-tone-")
    assert job.seed == 42
    assert (job.training_file, job.validation_file) == (record.training_file_id, record.validation_file_id)
    files = {f.id: f for f in aoai.list_files("fine-tune")}
    assert files[job.training_file].bytes == len(request.training)  # type: ignore[index]

    # every job event reached the callback exactly once, oldest first
    assert [e.id for e in streamed] == [e.id for e in aoai.list_events(job.id)]
    assert streamed[-1].message == "Job succeeded." and result.events_streamed == len(streamed)
    assert any(e.type == "metrics" for e in streamed)
    # backoff: waits grow and stay within the policy
    assert scenario_time.slept == sorted(scenario_time.slept)
    assert scenario_time.slept[0] == 300 and max(scenario_time.slept) <= 1800

    # deployed side by side: fine-tuned model version "1", NoAutoUpgrade, the baseline's SKU and capacity
    deployed = arm.get(request.account, request.deployment_name)
    assert deployed.model == base.ModelRef(format="OpenAI", name=record.fine_tuned_model, version="1")
    assert (deployed.sku_name, deployed.capacity) == ("Standard", 20)
    assert deployed.version_upgrade_option is base.VersionUpgradeOption.NO_AUTO_UPGRADE
    assert deployed.provisioning_state is base.ProvisioningState.SUCCEEDED
    assert arm.get(request.account, "claims-ft").model.name == BASELINE_FT_MODEL  # baseline untouched

    # table row and audit chain, written together
    assert FineTuneJobStore(any_store, actor="test").for_migration("mig-ok") == [record]
    assert reasons(any_store, "mig-ok") == [
        "finetune.files_uploaded",
        "finetune.submitted",
        "finetune.succeeded",
        "finetune.deployed",
    ]
    events = any_store.audit_events("mig-ok")
    assert all(e.data["key"] == request.key for e in events)
    assert events[1].data["job_id"] == job.id and events[1].data["seed"] == 42
    assert events[2].data["fine_tuned_model"] == record.fine_tuned_model
    assert events[3].data | {
        "capacity": 20,
        "sku": "Standard",
        "version_upgrade_option": "NoAutoUpgrade",
    } == (events[3].data)
    assert any_store.verify_audit().ok


def test_plan_adjusted_hyperparameters_reach_the_job(
    aoai: AzureOpenAIClient, arm: ArmClient, store: Store, scenario_time: ScenarioTime, claims_bundle: Bundle
) -> None:
    request = FineTuneRequest.from_bundle(
        claims_bundle,
        target=TARGET,
        migration_id="mig-adj",
        hyperparameters={"n_epochs": 5, "batch_size": None},
    )
    run_of(request, aoai, arm, store, scenario_time).run()
    (job,) = aoai.list_jobs()
    assert job.hyperparameters == {"n_epochs": 5, "learning_rate_multiplier": 1.0}
    assert request.key != claims_request(claims_bundle, "mig-adj").key


@pytest.mark.parametrize(
    ("method", "after_calls", "expected_reasons"),
    [
        # died after both files went up, before the row was written: found again by name, not re-uploaded
        ("upload_file", 2, ["finetune.files_uploaded", "finetune.submitted"]),
        # died after Azure accepted the job, before its id was stored: adopted from the job list
        ("create_job", 1, ["finetune.files_uploaded", "finetune.recovered"]),
    ],
)
def test_crash_before_the_store_write_never_submits_a_second_job(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
    method: str,
    after_calls: int,
    expected_reasons: list[str],
) -> None:
    request = claims_request(claims_bundle, "mig-crash")
    with pytest.raises(Crash):
        run_of(request, CrashingClient(aoai, method, after_calls), arm, store, scenario_time).run()

    result = run_of(request, aoai, arm, store, scenario_time).run()  # the in-memory run is gone: a new one
    assert result.record.phase is FineTunePhase.DEPLOYED
    assert len(aoai.list_jobs()) == 1
    assert len(request_log.matching("POST", "/openai/fine_tuning/jobs")) == 1
    assert len(request_log.matching("POST", "/openai/files")) == 2  # training + validation, once each
    assert len(aoai.list_files("fine-tune")) == 2
    assert reasons(store, "mig-crash") == [*expected_reasons, "finetune.succeeded", "finetune.deployed"]


def test_crash_while_polling_resumes_the_stored_job_and_streams_each_event_once(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
) -> None:
    request = claims_request(claims_bundle, "mig-poll")
    streamed: list[base.FineTuneEvent] = []
    sleeps = 0

    def dying_sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 3:
            raise Crash("worker died while waiting")
        scenario_time.sleep(seconds)

    with pytest.raises(Crash):
        run_of(request, aoai, arm, store, scenario_time, sleep=dying_sleep).run(on_event=streamed.append)
    stored = FineTuneJobStore(store, actor="test").get(request.key)
    assert stored is not None and stored.phase is FineTunePhase.SUBMITTED and stored.job_id is not None
    first_part = len(streamed)
    assert first_part > 0 and stored.last_event_id == streamed[-1].id

    result = run_of(request, aoai, arm, store, scenario_time).run(on_event=streamed.append)
    assert result.record.phase is FineTunePhase.DEPLOYED
    assert result.events_streamed == len(streamed) - first_part
    assert [e.id for e in streamed] == [e.id for e in aoai.list_events(stored.job_id)]  # no repeats, no gaps
    assert len(aoai.list_jobs()) == 1
    assert len(request_log.matching("POST", "/openai/fine_tuning/jobs")) == 1
    assert "finetune.recovered" not in reasons(store, "mig-poll")


def test_a_finished_job_is_not_polled_again(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
) -> None:
    request = claims_request(claims_bundle, "mig-done")
    first = run_of(request, aoai, arm, store, scenario_time).run()
    audited = len(store.audit_events())
    request_log.lines.clear()

    streamed: list[base.FineTuneEvent] = []
    again: FineTuneResult = run_of(request, aoai, arm, store, scenario_time).run(on_event=streamed.append)
    assert again.record == first.record
    assert again.deployment is not None and again.deployment.name == request.deployment_name
    assert streamed == [] and again.events_streamed == 0
    assert [line for line in request_log.lines if "/fine_tuning/" in line or "/files" in line] == []
    assert all(line.startswith("GET ") for line in request_log.lines)  # only the deployment was read
    assert len(store.audit_events()) == audited


def test_a_failing_job_raises_azures_error_and_is_final(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
) -> None:
    request = claims_request(
        claims_bundle, "mig-fail", base.ModelRef(name=FAILING_TARGET[0], version=FAILING_TARGET[1])
    )
    streamed: list[base.FineTuneEvent] = []
    with pytest.raises(FineTuneFailedError) as raised:
        run_of(request, aoai, arm, store, scenario_time).run(on_event=streamed.append)
    assert raised.value.code == "internalFailure"
    assert "emulator scenario outcome: fail" in str(raised.value) and "new migration" in str(raised.value)
    assert isinstance(raised.value, OperationFailedError)
    assert streamed[-1].message == "Job failed." and streamed[-1].level == "error"

    record = FineTuneJobStore(store, actor="test").get(request.key)
    assert record is not None and record.phase is FineTunePhase.FAILED and record.job_status == "failed"
    assert record.error_code == "internalFailure" and record.deployment_name is None
    events = store.audit_events("mig-fail")
    assert [e.reason for e in events][-1] == "finetune.failed"
    assert events[-1].data["error_code"] == "internalFailure"

    request_log.lines.clear()
    with pytest.raises(FineTuneFailedError) as again:  # stored terminal state: no poll, no second job
        run_of(request, aoai, arm, store, scenario_time).run()
    assert again.value.code == "internalFailure"
    assert request_log.lines == []
    assert len(aoai.list_jobs()) == 1


def test_bad_training_data_fails_with_azures_validation_error(
    aoai: AzureOpenAIClient, arm: ArmClient, store: Store, scenario_time: ScenarioTime, claims_bundle: Bundle
) -> None:
    request = claims_request(claims_bundle, "mig-bad")
    nine_rows = b"\n".join(request.training.splitlines()[:9]) + b"\n"
    bad = dataclasses.replace(request, training=nine_rows)
    with pytest.raises(FineTuneFailedError) as raised:
        run_of(bad, aoai, arm, store, scenario_time).run()
    assert raised.value.code == "jsonlValidationFailed"
    assert "at least 10 are required" in str(raised.value)
    record = FineTuneJobStore(store, actor="test").get(bad.key)
    assert record is not None and record.error_message is not None and "9 examples" in record.error_message


def test_timeout_raises_and_a_rerun_keeps_waiting_for_the_same_job(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
) -> None:
    request = claims_request(claims_bundle, "mig-slow")
    short = PollPolicy(initial=60, maximum=60, multiplier=1, timeout=600)
    with pytest.raises(OperationFailedError) as raised:
        run_of(request, aoai, arm, store, scenario_time, policy=short).run()
    assert not isinstance(raised.value, FineTuneFailedError)
    assert raised.value.code == "Timeout" and "run the migration again" in str(raised.value)
    assert sum(scenario_time.slept) <= 600
    record = FineTuneJobStore(store, actor="test").get(request.key)
    assert record is not None and record.phase is FineTunePhase.SUBMITTED
    assert reasons(store, "mig-slow")[-1] == "finetune.timed_out"

    result = run_of(request, aoai, arm, store, scenario_time).run()
    assert result.record.phase is FineTunePhase.DEPLOYED and result.record.job_id == record.job_id
    assert len(request_log.matching("POST", "/openai/fine_tuning/jobs")) == 1


def test_baseline_sku_comes_from_the_bundle_when_the_baseline_deployment_is_gone(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
) -> None:
    gone = dataclasses.replace(
        claims_request(claims_bundle, "mig-sku"), baseline_deployment="claims-gone", baseline_sku=None
    )
    with pytest.raises(ConfigError, match=r"claims-gone.*model\.sku"):
        run_of(gone, aoai, arm, store, scenario_time).run()
    record = FineTuneJobStore(store, actor="test").get(gone.key)
    assert record is not None and record.phase is FineTunePhase.SUCCEEDED  # the job's result is kept

    request_log.lines.clear()
    fixed = dataclasses.replace(gone, baseline_sku=("Standard", 7))  # same key: the SKU is not part of it
    result = run_of(fixed, aoai, arm, store, scenario_time).run()
    assert result.deployment is not None and (result.deployment.sku_name, result.deployment.capacity) == (
        "Standard",
        7,
    )
    assert request_log.matching("GET", f"/fine_tuning/jobs/{record.job_id}") == []
    assert arm.get(fixed.account, fixed.deployment_name).capacity == 7


def test_the_emulator_account_is_the_bundles(claims_bundle: Bundle, emu: EmulatorHandle) -> None:
    request = claims_request(claims_bundle, "mig-x")
    assert request.account.name == ACCOUNT and request.baseline_deployment == "claims-ft"
    assert request.account.subscription_id == emu.subscription_id


def test_on_poll_sees_the_job_move_through_its_states(
    aoai: AzureOpenAIClient, arm: ArmClient, store: Store, scenario_time: ScenarioTime, claims_bundle: Bundle
) -> None:
    statuses: list[str] = []
    run_of(claims_request(claims_bundle, "mig-progress"), aoai, arm, store, scenario_time).run(
        on_poll=lambda job: statuses.append(job.status.value)
    )
    assert statuses[0] in ("created", "pending") and statuses[-1] == "succeeded"
    assert "running" in statuses
    order = ["created", "pending", "running", "succeeded"]
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)


def test_a_job_cancelled_outside_modelshift_stops_the_run(
    aoai: AzureOpenAIClient, arm: ArmClient, store: Store, scenario_time: ScenarioTime, claims_bundle: Bundle
) -> None:
    request = claims_request(claims_bundle, "mig-cancel")

    def cancel_then_sleep(seconds: float) -> None:
        (job,) = aoai.list_jobs()
        if not job.status.terminal:
            aoai.cancel_job(job.id)  # someone cancels it in the portal while we wait
        scenario_time.sleep(seconds)

    with pytest.raises(FineTuneFailedError) as raised:
        run_of(request, aoai, arm, store, scenario_time, sleep=cancel_then_sleep).run()
    assert raised.value.code == "cancelled" and "ended cancelled" in str(raised.value)
    record = FineTuneJobStore(store, actor="test").get(request.key)
    assert record is not None and record.phase is FineTunePhase.FAILED and record.job_status == "cancelled"
    assert reasons(store, "mig-cancel")[-1] == "finetune.failed"


def test_a_deployment_refused_for_quota_is_retried_by_the_next_run_without_polling(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
) -> None:
    too_big = dataclasses.replace(
        claims_request(claims_bundle, "mig-quota"),
        baseline_deployment="claims-gone",
        baseline_sku=("Standard", 5000),
    )
    with pytest.raises(PlatformError) as raised:
        run_of(too_big, aoai, arm, store, scenario_time).run()
    assert raised.value.code == "InsufficientQuota"
    record = FineTuneJobStore(store, actor="test").get(too_big.key)
    assert record is not None and record.phase is FineTunePhase.SUCCEEDED and record.deployment_name is None
    assert reasons(store, "mig-quota")[-1] == "finetune.succeeded"

    request_log.lines.clear()
    result = run_of(
        dataclasses.replace(too_big, baseline_sku=("Standard", 10)), aoai, arm, store, scenario_time
    ).run()
    assert result.record.phase is FineTunePhase.DEPLOYED
    assert result.deployment is not None and result.deployment.capacity == 10
    assert [line for line in request_log.lines if "/fine_tuning/" in line] == []


def test_a_deleted_candidate_deployment_is_put_back_without_polling(
    aoai: AzureOpenAIClient,
    arm: ArmClient,
    store: Store,
    scenario_time: ScenarioTime,
    claims_bundle: Bundle,
    request_log: RequestLog,
) -> None:
    request = claims_request(claims_bundle, "mig-redeploy")
    first = run_of(request, aoai, arm, store, scenario_time).run()
    arm.delete(request.account, request.deployment_name)
    request_log.lines.clear()

    again = run_of(request, aoai, arm, store, scenario_time).run()
    assert again.deployment is not None and again.deployment.name == request.deployment_name
    assert again.deployment.model.name == first.record.fine_tuned_model
    assert [line for line in request_log.lines if "/fine_tuning/" in line] == []
    assert reasons(store, "mig-redeploy")[-2:] == ["finetune.deployed", "finetune.deployed"]
