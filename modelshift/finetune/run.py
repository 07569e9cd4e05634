"""``FineTuneRun``: re-run an app's fine-tune on a new base model, resumably, and deploy the result.

Steps, each one recorded in ``finetune_jobs`` with its audit event in the same transaction:

1. upload the training (and validation) file, unless this key already did (stored ids, else found by name);
2. submit the job, unless this key already did: the stored job id, else a job listed with the same
   suffix, base model and training file (a crash between create and the store write) — never a second one;
3. poll with backoff to a terminal state, handing each new job event to a callback once;
4. succeeded: PUT a new deployment beside the baseline (fine-tuned model version "1", NoAutoUpgrade, the
   baseline's SKU and capacity) and wait for it; failed/cancelled: raise FineTuneFailedError with Azure's
   code and message.

A stored terminal state is final: a re-run of a finished key never polls the job again. Events reach the
callback at least once: a crash after the callback but before the cursor is stored repeats those events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from modelshift import audit
from modelshift.clock import Clock
from modelshift.errors import (
    ConfigError,
    DeploymentNotFoundError,
    FineTuneFailedError,
    OperationFailedError,
    PlatformError,
)
from modelshift.finetune.poll import EventCallback, EventCursor, PollPolicy
from modelshift.finetune.records import FineTuneJobStore, FineTunePhase, FineTuneRecord
from modelshift.finetune.request import FineTuneRequest
from modelshift.platforms.base import (
    Deployment,
    Deployments,
    DeploymentSpec,
    FileInfo,
    FineTuneJob,
    FineTuneJobSpec,
    FineTuneStatus,
    FineTuning,
    ModelRef,
    VersionUpgradeOption,
)
from modelshift.store.store import Store


@runtime_checkable
class ResumableFineTuning(FineTuning, Protocol):
    """A FineTuning adapter that can also list what exists, so a re-run finds what a crashed run made."""

    def list_files(self, purpose: str | None = None) -> list[FileInfo]:
        """Uploaded files, optionally only those of one purpose."""
        ...

    def list_jobs(self) -> list[FineTuneJob]:
        """Every fine-tuning job of the account."""
        ...


@dataclass(frozen=True)
class FineTuneResult:
    """What a run ended with: the stored record and the side-by-side deployment it created."""

    record: FineTuneRecord
    deployment: Deployment | None
    #: how many job events this run handed to the callback
    events_streamed: int = 0


class FineTuneRun:
    """One resumable fine-tuning re-run; build it with the adapters, store and clock, then :meth:`run`."""

    def __init__(
        self,
        request: FineTuneRequest,
        *,
        fine_tuning: ResumableFineTuning,
        deployments: Deployments,
        store: Store,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        policy: PollPolicy | None = None,
        actor: str = "modelshift",
    ) -> None:
        self.request = request
        self._ft = fine_tuning
        self._deployments = deployments
        self._jobs = FineTuneJobStore(store, actor=actor)
        self._clock = clock
        self._sleep = sleep
        self._policy = policy or PollPolicy()
        self._streamed = 0

    @property
    def _where(self) -> str:
        r = self.request
        return f"fine-tuning re-run of {r.app} on {r.base_model} (migration {r.migration_id})"

    def run(
        self, on_event: EventCallback | None = None, on_poll: Callable[[FineTuneJob], None] | None = None
    ) -> FineTuneResult:
        """Carry the re-run as far as it goes: to a deployed fine-tuned model, or a raised error.

        ``on_event`` gets each new job event once; ``on_poll`` gets the job after every poll (its status
        drives a progress artifact)."""
        self._streamed = 0
        record = self._jobs.get(self.request.key) or self._upload()
        if record.job_id is None:
            record = self._submit(record)
        if record.phase is FineTunePhase.SUBMITTED:
            record = self._poll(record, on_event, on_poll)
        if record.phase is FineTunePhase.FAILED:
            raise self._failure(record)
        if record.phase is FineTunePhase.SUCCEEDED:
            record, deployment = self._deploy(record)
        else:  # deployed by an earlier run: read what is there now, the job itself is not polled again
            assert record.deployment_name is not None
            try:
                deployment = self._deployments.get(self.request.account, record.deployment_name)
            except DeploymentNotFoundError:
                # someone deleted the candidate's deployment since: put it back from the stored model
                record, deployment = self._deploy(record)
        return FineTuneResult(record=record, deployment=deployment, events_streamed=self._streamed)

    # ------------------------------------------------------------------------------------- upload

    def _find_or_upload(self, role: str, content: bytes, existing: list[FileInfo]) -> str:
        name = self.request.filename(role)
        for f in existing:
            if f.filename == name and f.bytes in (None, len(content)):
                return f.id
        return self._ft.upload_file(name, content, purpose="fine-tune").id

    def _upload(self) -> FineTuneRecord:
        r = self.request
        existing = self._ft.list_files("fine-tune")
        training_id = self._find_or_upload("training", r.training, existing)
        validation_id = (
            None if r.validation is None else self._find_or_upload("validation", r.validation, existing)
        )
        identity: dict[str, Any] = {
            "key": r.key,
            "migration_id": r.migration_id,
            "app": r.app,
            "target_model": r.base_model,
            "training_sha256": r.training_sha256,
            "validation_sha256": r.validation_sha256,
            "hyperparameters": dict(r.hyperparameters),
            "suffix": r.job_suffix,
            "seed": r.seed,
        }
        changes = {
            "training_file_id": training_id,
            "validation_file_id": validation_id,
            "phase": FineTunePhase.UPLOADED.value,
        }
        data = {"training_file_id": training_id, "validation_file_id": validation_id}
        return self._jobs.create(now=self._clock(), identity=identity, changes=changes, data=data)

    # ------------------------------------------------------------------------------------- submit

    def _spec(self, record: FineTuneRecord) -> FineTuneJobSpec:
        if record.training_file_id is None:  # pragma: no cover - the row is only created with it
            raise PlatformError(f"{self._where}: stored row {record.key[:12]} has no training file id")
        return FineTuneJobSpec(
            model=record.target_model,
            training_file=record.training_file_id,
            validation_file=record.validation_file_id,
            hyperparameters=dict(record.hyperparameters),
            suffix=record.suffix,
            seed=record.seed,
        )

    def _submit(self, record: FineTuneRecord) -> FineTuneRecord:
        spec = self._spec(record)
        found = next(
            (
                j
                for j in self._ft.list_jobs()
                if j.suffix == spec.suffix and j.model == spec.model and j.training_file == spec.training_file
            ),
            None,
        )
        # the job a crashed run created but never stored: adopt it instead of creating a second one
        job = found if found is not None else self._ft.create_job(spec)
        reason = audit.Reason.FINETUNE_RECOVERED if found is not None else audit.Reason.FINETUNE_SUBMITTED
        return self._jobs.update(
            record.key,
            now=self._clock(),
            changes={
                "job_id": job.id,
                "job_status": job.status.value,
                "phase": FineTunePhase.SUBMITTED.value,
            },
            reason=reason,
            data={
                "job_id": job.id,
                "model": spec.model,
                "suffix": spec.suffix,
                "hyperparameters": dict(spec.hyperparameters),
                "seed": spec.seed,
            },
        )

    # --------------------------------------------------------------------------------------- poll

    def _poll(
        self,
        record: FineTuneRecord,
        on_event: EventCallback | None,
        on_poll: Callable[[FineTuneJob], None] | None,
    ) -> FineTuneRecord:
        assert record.job_id is not None  # _submit stored it
        job_id = record.job_id
        cursor = EventCursor(record.last_event_id)
        started = self._clock()
        attempt = 0
        while True:
            job = self._ft.get_job(job_id)
            if on_poll is not None:
                on_poll(job)
            for event in cursor.new(self._ft.list_events(job_id)):
                if on_event is not None:
                    on_event(event)
                self._streamed += 1
            progress: dict[str, Any] = {}
            if job.status.value != record.job_status:
                progress["job_status"] = job.status.value
            if cursor.last_event_id != record.last_event_id:
                progress["last_event_id"] = cursor.last_event_id
            if job.status.terminal:
                return self._finish(record, job, progress)
            if progress:
                record = self._jobs.update(record.key, now=self._clock(), changes=progress)
            wait = self._policy.interval(attempt)
            attempt += 1
            elapsed = (self._clock() - started).total_seconds()
            if elapsed + wait > self._policy.timeout:
                self._jobs.update(
                    record.key,
                    now=self._clock(),
                    changes={},
                    reason=audit.Reason.FINETUNE_TIMED_OUT,
                    data={"job_status": job.status.value, "waited_seconds": elapsed},
                )
                raise OperationFailedError(
                    f"{self._where}: job {job_id} is still {job.status.value} after {elapsed:.0f}s "
                    f"(timeout {self._policy.timeout:.0f}s); run the migration again to keep waiting for "
                    "the same job (no second job is submitted)",
                    code="Timeout",
                    job_id=job_id,
                )
            self._sleep(wait)

    def _finish(self, record: FineTuneRecord, job: FineTuneJob, progress: dict[str, Any]) -> FineTuneRecord:
        finished = job.finished_at or self._clock()
        if job.status is FineTuneStatus.SUCCEEDED and job.fine_tuned_model:
            return self._jobs.update(
                record.key,
                now=self._clock(),
                changes={
                    **progress,
                    "phase": FineTunePhase.SUCCEEDED.value,
                    "fine_tuned_model": job.fine_tuned_model,
                    "finished_at": finished,
                },
                reason=audit.Reason.FINETUNE_SUCCEEDED,
                data={"fine_tuned_model": job.fine_tuned_model, "trained_tokens": job.trained_tokens},
            )
        code = job.error.code if job.error and job.error.code else job.status.value
        message = job.error.message if job.error and job.error.message else None
        if job.status is FineTuneStatus.SUCCEEDED:
            code, message = "noFineTunedModel", "the job succeeded but names no fine_tuned_model"
        elif message is None:
            message = f"the job ended {job.status.value} without an error message"
        return self._jobs.update(
            record.key,
            now=self._clock(),
            changes={
                **progress,
                "phase": FineTunePhase.FAILED.value,
                "error_code": code,
                "error_message": message,
                "finished_at": finished,
            },
            reason=audit.Reason.FINETUNE_FAILED,
            data={
                "job_status": job.status.value,
                "error_code": code,
                "error_message": message,
                "error_param": job.error.param if job.error else None,
            },
        )

    def _failure(self, record: FineTuneRecord) -> FineTuneFailedError:
        return FineTuneFailedError(
            f"{self._where}: job {record.job_id} ended {record.job_status} with {record.error_code}: "
            f"{record.error_message} Fix the cause (for jsonlValidationFailed, the training data in the "
            "bundle), then start a new migration; this one will not submit a second job",
            code=record.error_code,
            job_id=record.job_id,
            key=record.key,
        )

    # ------------------------------------------------------------------------------------- deploy

    def _baseline_sku(self) -> tuple[str, int]:
        r = self.request
        try:
            baseline = self._deployments.get(r.account, r.baseline_deployment)
        except DeploymentNotFoundError:
            baseline = None
        if baseline is not None and baseline.capacity is not None:
            return baseline.sku_name, baseline.capacity
        if r.baseline_sku is not None:
            return r.baseline_sku
        raise ConfigError(
            f"{self._where}: the baseline deployment {r.baseline_deployment} in account {r.account.name} "
            "reports no SKU capacity and bundle.yaml has no model.sku; add model.sku {name, capacity}"
        )

    def _deploy(self, record: FineTuneRecord) -> tuple[FineTuneRecord, Deployment]:
        assert record.fine_tuned_model is not None  # SUCCEEDED rows always carry it
        r = self.request
        sku_name, capacity = self._baseline_sku()
        spec = DeploymentSpec(
            model=ModelRef(format="OpenAI", name=record.fine_tuned_model, version="1"),
            sku_name=sku_name,
            capacity=capacity,
            version_upgrade_option=VersionUpgradeOption.NO_AUTO_UPGRADE,
        )
        # PUT is idempotent: a crash before the row below is written just PUTs the same deployment again
        deployment = self._deployments.create_or_update(r.account, r.deployment_name, spec)
        record = self._jobs.update(
            record.key,
            now=self._clock(),
            changes={"phase": FineTunePhase.DEPLOYED.value, "deployment_name": deployment.name},
            reason=audit.Reason.FINETUNE_DEPLOYED,
            data={
                "deployment": deployment.name,
                "account": r.account.name,
                "model": record.fine_tuned_model,
                "sku": sku_name,
                "capacity": capacity,
                "version_upgrade_option": spec.version_upgrade_option.value,
                "baseline_deployment": r.baseline_deployment,
            },
        )
        return record, deployment
