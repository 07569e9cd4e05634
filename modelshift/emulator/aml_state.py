"""Azure ML workspaces in the emulator: the default blob datastore's blobs, fine-tuning jobs on catalog
models (MaaP) and managed online endpoints, all on the scenario clock.

A job's status is computed from its timestamps whenever it is read, like the Azure OpenAI jobs in
:mod:`modelshift.emulator.finetune_state`: NotStarted -> Queued -> Preparing -> Running -> Finalizing ->
Completed | Failed (CancelRequested -> Canceled after a cancel). A job whose training data is missing or
is not chat JSONL with enough examples fails when preparation ends, as Azure's data validation does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelshift.emulator.finetune_state import validate_training_jsonl
from modelshift.emulator.scenario import MaapFineTuneOutcome, WorkspaceSpec

_NOT_STARTED_FOR = timedelta(seconds=30)
_PREPARING_FOR = timedelta(minutes=2)
_FINALIZING_FOR = timedelta(minutes=1)
_CANCEL_TAKES = timedelta(seconds=30)
TERMINAL = frozenset({"Completed", "Failed", "Canceled"})


def iso(when: datetime) -> str:
    """ISO-8601 UTC as ARM writes it."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Blob:
    """One block blob in a container."""

    content: bytes
    content_type: str
    created_at: datetime

    @property
    def etag(self) -> str:
        """A strong ETag derived from the content."""
        return '"0x' + hashlib.sha256(self.content).hexdigest()[:16].upper() + '"'


@dataclass
class AmlJob:
    """A FineTuning job as submitted (``properties`` is the PUT body's, kept as sent)."""

    name: str
    properties: dict[str, Any]
    created_at: datetime
    outcome: MaapFineTuneOutcome
    validation_error: str | None
    cancel_requested_at: datetime | None = None

    @property
    def running_at(self) -> datetime:
        """When the job starts running (after queueing and preparation)."""
        return (
            self.created_at
            + _NOT_STARTED_FOR
            + timedelta(minutes=self.outcome.queue_minutes)
            + _PREPARING_FOR
        )

    @property
    def ended_at(self) -> datetime:
        """When the job reaches its terminal state (a bad training file fails when preparation ends)."""
        if self.validation_error is not None:
            return self.running_at
        return self.running_at + timedelta(minutes=self.outcome.duration_minutes) + _FINALIZING_FOR

    def canceled(self, now: datetime) -> bool:
        """True once a cancel requested before the end has taken effect."""
        at = self.cancel_requested_at
        return at is not None and at < self.ended_at and now >= at + _CANCEL_TAKES

    def status(self, now: datetime) -> str:
        """The job's status at scenario time ``now``."""
        at = self.cancel_requested_at
        if at is not None and at < self.ended_at:
            return "Canceled" if now >= at + _CANCEL_TAKES else "CancelRequested"
        queued_at = self.created_at + _NOT_STARTED_FOR
        if now < queued_at:
            return "NotStarted"
        if now < queued_at + timedelta(minutes=self.outcome.queue_minutes):
            return "Queued"
        if now < self.running_at:
            return "Preparing"
        if now >= self.ended_at:
            return "Failed" if self.failed else "Completed"
        if now >= self.ended_at - _FINALIZING_FOR:
            return "Finalizing"
        return "Running"

    @property
    def failed(self) -> bool:
        """True when the job ends Failed (bad data, or the scenario says so)."""
        return self.validation_error is not None or self.outcome.outcome == "fail"

    @property
    def model_name(self) -> str:
        """The registered output model's name (the ``registered_model`` output's ``assetName``)."""
        outputs = self.properties.get("outputs") or {}
        registered = outputs.get("registered_model") or {}
        return str(registered.get("assetName") or f"{self.name}-model")

    def error(self) -> dict[str, str] | None:
        """Run history's root error of a failed job."""
        if self.validation_error is not None:
            return {
                "code": "UserError",
                "message": f"Training data validation failed: {self.validation_error}",
            }
        if self.outcome.outcome == "fail":
            return {"code": self.outcome.error_code, "message": self.outcome.error_message}
        return None

    def rest(self, arm_id: str, now: datetime) -> dict[str, Any]:
        """The job resource (api-version 2024-10-01-preview shape) at ``now``."""
        status = self.status(now)
        props = {**self.properties, "status": status, "isArchived": False}
        props.setdefault("identity", {"identityType": "AMLToken"})
        props.setdefault("tags", {})
        props.setdefault("properties", {})
        outputs = {k: dict(v) for k, v in (props.get("outputs") or {}).items()}
        if status == "Completed" and "registered_model" in outputs:
            outputs["registered_model"].update(assetName=self.model_name, assetVersion="1")
        props["outputs"] = outputs
        return {
            "id": arm_id,
            "name": self.name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": props,
            "systemData": {
                "createdAt": iso(self.created_at),
                "createdBy": "modelshift-emulator",
                "createdByType": "Application",
            },
        }

    def run(self, now: datetime) -> dict[str, Any]:
        """The run-history view of the job: status, start/end times and the error of a failed run."""
        status = self.status(now)
        body: dict[str, Any] = {
            "runId": self.name,
            "name": self.name,
            "displayName": self.properties.get("displayName"),
            "status": status,
            "createdUtc": iso(self.created_at),
            "runType": "azureml.FineTuning",
        }
        cancelled_before_start = (
            self.cancel_requested_at is not None and self.cancel_requested_at < self.running_at
        )
        if now >= self.running_at and not cancelled_before_start:
            body["startTimeUtc"] = iso(self.running_at)
        if status in TERMINAL:
            at = self.cancel_requested_at
            body["endTimeUtc"] = iso(at + _CANCEL_TAKES if status == "Canceled" and at else self.ended_at)
        if status == "Failed":
            body["error"] = {"error": self.error(), "time": iso(self.ended_at)}
        return body


@dataclass
class OnlineDeployment:
    """A managed online deployment; Creating until the scenario's LRO delay has passed."""

    name: str
    endpoint: str
    model: str
    instance_type: str
    instance_count: int
    ready_at: datetime

    def state(self, now: datetime) -> str:
        """ARM provisioningState at ``now``."""
        return "Succeeded" if now >= self.ready_at else "Creating"


@dataclass
class OnlineEndpoint:
    """A managed online endpoint and its deployments."""

    name: str
    traffic: dict[str, int] = field(default_factory=dict)
    deployments: dict[str, OnlineDeployment] = field(default_factory=dict)


@dataclass
class Workspace:
    """One workspace: its datastore's blobs, jobs, registered models and endpoints, plus request counts."""

    spec: WorkspaceSpec
    subscription: str
    resource_group: str
    blobs: dict[str, Blob] = field(default_factory=dict)
    jobs: dict[str, AmlJob] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    endpoints: dict[str, OnlineEndpoint] = field(default_factory=dict)
    job_puts: int = 0
    blob_puts: int = 0
    #: statuses (429, 5xx) that the next ARM requests for this workspace are answered with, one each
    faults: list[int] = field(default_factory=list)

    @property
    def arm_id(self) -> str:
        """The workspace's ARM resource id."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.spec.name}"
        )

    def outcome_for(self, model_uri: str) -> MaapFineTuneOutcome:
        """The scenario outcome of fine-tuning ``model_uri`` (``azureml://registries/r/models/NAME/...``)."""
        parts = model_uri.split("/")
        name = parts[parts.index("models") + 1] if "models" in parts[:-1] else model_uri
        return self.spec.fine_tune.get(name, self.spec.default_fine_tune)

    def datastore_path(self, uri: str) -> str | None:
        """The blob name an ``azureml://datastores/<this store>/paths/<path>`` URI points at, else None."""
        prefix = f"azureml://datastores/{self.spec.datastore}/paths/"
        return uri[len(prefix) :] if uri.startswith(prefix) else None

    def check_training_data(self, uri: str | None) -> str | None:
        """None when ``uri`` names a blob of usable chat JSONL, else what is wrong with it."""
        if not uri:
            return "the job has no training data"
        path = self.datastore_path(uri)
        if path is None:
            return f"{uri} is not a path on datastore {self.spec.datastore}"
        blob = self.blobs.get(f"{self.spec.container}/{path}")
        if blob is None:
            return f"{uri} does not exist"
        return validate_training_jsonl(blob.content)

    def settle(self, now: datetime) -> None:
        """Register the output models of jobs that completed by ``now`` (so they can be deployed)."""
        for job in self.jobs.values():
            if job.status(now) == "Completed":
                self.models.add(job.model_name)


def build_workspace(spec: WorkspaceSpec, subscription: str, group: str, now: datetime) -> Workspace:
    """A workspace as the scenario describes it."""
    ws = Workspace(spec, subscription, group)
    for ep in spec.online_endpoints:
        endpoint = OnlineEndpoint(ep.name, dict(ep.traffic))
        for dep in ep.deployments:
            endpoint.deployments[dep.name] = OnlineDeployment(
                dep.name, ep.name, dep.model, dep.instance_type, dep.instance_count, now
            )
        ws.endpoints[ep.name] = endpoint
    return ws
