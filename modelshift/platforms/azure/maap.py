"""Catalog-model (Models-as-a-Platform) fine-tuning in an Azure ML / AI Foundry workspace, through the real
azure-ai-ml SDK, as a :class:`~modelshift.finetune.run.ResumableFineTuning`.

How each FineTuning operation maps onto Azure ML:

- **Files** go to the workspace's default blob datastore with azure-storage-blob, at the content-addressed
  path ``modelshift/finetune/<sha256>/<file name>``. The job gets ``azureml://datastores/<store>/paths/
  <path>``. A datastore path rather than a registered data asset: a data asset is one more versioned
  resource per file to name, register and clean up, while the path is already immutable (its name is the
  content's digest) and is found again by listing the prefix, so a re-run after a crash never uploads the
  same bytes twice (``list_files`` lists those blobs). Uploads use ``If-None-Match: *``: the same blob
  written twice is a no-op.
- **Jobs** are ``FineTuning`` jobs built by ``azure.ai.ml.finetuning.create_finetuning_job`` and submitted
  with ``ml_client.jobs.create_or_update``. The job's *name* derives from the request's suffix (which
  carries the idempotency key), so a job a crashed run submitted is found by ``list_jobs`` (tags
  ``modelshift.suffix`` / ``.model`` / ``.training_file`` keep what was sent), and ``create_job`` GETs the
  name before it PUTs, so even a job the list does not show yet is not submitted twice.
  ``validation_data`` is always passed when there is a
  validation file; without one the job is built as ``CustomModelFineTuningJob`` directly, because
  azure-ai-ml 1.35's ``create_finetuning_job`` raises ``UnboundLocalError`` when it is left out.
- **Status** comes from the job (``NotStarted`` … ``Completed``), mapped by :data:`STATUS`. A Failed or
  Canceled job's error code and message come from the job's run in run history (what ``az ml job show``
  and the studio display), so FineTuneRun's FineTuneFailedError carries Azure's own words.
- **Events** are the run's milestones that run history reports: submitted, started, and how it ended
  (with the error, if any). Their ids are stable, so a re-run does not repeat them.
- The **fine-tuned model** is the job's ``registered_model`` output, reported as ``azureml:<name>:<ver>``;
  :mod:`modelshift.platforms.azure.maap_deploy` deploys it as a managed online deployment.

azure-core errors are translated in :func:`_translate`, the one place this adapter meets them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from modelshift.clock import ensure_utc
from modelshift.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    ModelshiftError,
    PlatformError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.platforms.base import (
    FileInfo,
    FineTuneEvent,
    FineTuneJob,
    FineTuneJobSpec,
    FineTuneStatus,
    JobError,
)

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.pipeline.transport import HttpTransport
    from azure.storage.blob import ContainerClient

__all__ = ["STATUS", "MaapFineTuning", "job_name", "maap_hyperparameters"]

#: Azure ML job status -> FineTuneStatus (unknown values count as pending: the job is not finished)
STATUS: Final[Mapping[str, FineTuneStatus]] = {
    "NotStarted": FineTuneStatus.CREATED,
    "Created": FineTuneStatus.CREATED,
    "Queued": FineTuneStatus.PENDING,
    "Preparing": FineTuneStatus.PENDING,
    "Provisioning": FineTuneStatus.PENDING,
    "Starting": FineTuneStatus.PENDING,
    "Running": FineTuneStatus.RUNNING,
    "Finalizing": FineTuneStatus.RUNNING,
    "CancelRequested": FineTuneStatus.RUNNING,
    "NotResponding": FineTuneStatus.RUNNING,
    "Paused": FineTuneStatus.PAUSED,
    "Completed": FineTuneStatus.SUCCEEDED,
    "Failed": FineTuneStatus.FAILED,
    "Canceled": FineTuneStatus.CANCELLED,
}
#: bundle hyperparameter -> the catalog fine-tuning recipe's name (values are sent as strings)
HYPERPARAMETER_NAMES: Final[Mapping[str, str]] = {
    "n_epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
}
TAG_SUFFIX, TAG_MODEL, TAG_TRAINING, TAG_VALIDATION = (
    "modelshift.suffix",
    "modelshift.model",
    "modelshift.training_file",
    "modelshift.validation_file",
)
_JOB_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def job_name(suffix: str) -> str:
    """The Azure ML job name for a request suffix (letters, digits, ``-``, ``_``)."""
    return "modelshift-ft-" + _JOB_NAME_UNSAFE.sub("-", suffix).strip("-")


def maap_hyperparameters(values: Mapping[str, int | float | str], *, where: str) -> dict[str, str]:
    """The bundle's hyperparameters under the names catalog fine-tuning uses, as the strings it takes.

    ``learning_rate_multiplier`` (Azure OpenAI's relative rate) has no counterpart: catalog recipes take an
    absolute ``learning_rate``, so it is refused rather than guessed."""
    if "learning_rate_multiplier" in values:
        raise ConfigError(
            f"{where}: hyperparameter learning_rate_multiplier is Azure OpenAI's; catalog-model "
            "fine-tuning takes an absolute learning_rate — drop it from model.fine_tune.hyperparameters or "
            "give learning_rate in the plan's adjusted hyperparameters"
        )
    return {HYPERPARAMETER_NAMES.get(k, k): str(v) for k, v in sorted(values.items())}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _translate(what: str, workspace: str) -> Iterator[None]:
    """Turn azure-core / azure-ai-ml errors raised inside into modelshift.errors, naming ``what``."""
    ctx: dict[str, Any] = {"request": what, "workspace": workspace}
    try:
        yield
    except ModelshiftError:
        raise
    except ClientAuthenticationError as exc:
        raise AuthError(
            f"{what}: Azure ML refused the credential for workspace {workspace!r} ({_message(exc)}); sign in "
            "(`az login`) or grant the identity 'AzureML Data Scientist' on the workspace and 'Storage Blob "
            "Data Contributor' on its storage account",
            status_code=getattr(exc, "status_code", None),
            **ctx,
        ) from exc
    except HttpResponseError as exc:
        raise _from_http(exc, what, workspace) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientPlatformError(
            f"{what}: could not reach Azure ML for workspace {workspace!r} ({type(exc).__name__}: {exc}); "
            "check the network and retry",
            **ctx,
        ) from exc
    except AzureError as exc:
        raise PlatformError(f"{what}: Azure failed: {exc}", **ctx) from exc
    except Exception as exc:
        # azure-ai-ml's client-side checks (MlException, ValidationException, marshmallow errors)
        if type(exc).__module__.startswith(("azure.ai.ml", "marshmallow")):
            raise ConfigError(f"{what}: azure-ai-ml refused the request: {exc}", **ctx) from exc
        raise


def _message(exc: AzureError) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or getattr(exc, "error_code", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    first = str(message).splitlines()[0] if message else type(exc).__name__
    return f"{code}: {first}" if code else first


def _retry_after(exc: HttpResponseError) -> float | None:
    """Seconds from the response's ``Retry-After`` header, when it carries a number."""
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    try:
        value = headers.get("Retry-After")
        return float(value) if value is not None else None
    except ValueError:
        return None


def _from_http(exc: HttpResponseError, what: str, workspace: str) -> PlatformError:
    status = exc.status_code
    detail = _message(exc)
    kwargs: dict[str, Any] = {"status_code": status, "request": what, "workspace": workspace}
    if status in (401, 403):
        return AuthError(
            f"{what}: Azure denied access in workspace {workspace!r} ({status} {detail}); grant the identity "
            "'AzureML Data Scientist' on the workspace and 'Storage Blob Data Contributor' on its storage",
            **kwargs,
        )
    if status == 404:
        return BadRequestError(
            f"{what}: not found in workspace {workspace!r} ({detail}); check the bundle's "
            "model.subscription, model.resource_group and model.account (the workspace name)",
            **kwargs,
        )
    if status == 429:
        return ThrottledError(
            f"{what}: Azure ML throttled the request in workspace {workspace!r} ({detail}); retry later",
            retry_after=_retry_after(exc),
            **kwargs,
        )
    if status is not None and status >= 500:
        return TransientPlatformError(
            f"{what}: Azure ML failed with {status} in workspace {workspace!r} ({detail}); retry later",
            **kwargs,
        )
    return BadRequestError(
        f"{what}: Azure ML rejected the request in {workspace!r} ({status} {detail})", **kwargs
    )


class MaapFineTuning:
    """ResumableFineTuning for catalog models in one Azure ML workspace (see the module docstring).

    ``ml_client`` is an ``MLClient`` bound to the workspace. The default datastore is read from the
    workspace on first use; its blobs are written with the datastore's account key when the workspace
    hands one out, else with the MLClient's credential (identity-based datastores). ``blob_transport``
    is the azure-core transport for the storage client (e.g. a routing transport to a private endpoint or
    the emulator); ``container`` replaces the datastore lookup entirely (a ready ContainerClient).
    """

    def __init__(
        self,
        ml_client: MLClient,
        *,
        task: str = "ChatCompletion",
        compute: str | None = None,
        instance_types: list[str] | None = None,
        experiment_name: str = "modelshift-finetune",
        prefix: str = "modelshift/finetune",
        blob_transport: HttpTransport[Any, Any] | None = None,
        container: ContainerClient | None = None,
        datastore: str | None = None,
    ) -> None:
        self._ml = ml_client
        self._workspace = f"{ml_client.resource_group_name}/{ml_client.workspace_name}"
        self._task = task
        self._compute = compute
        self._instance_types = instance_types
        self._experiment = experiment_name
        self._prefix = prefix.strip("/")
        self._blob_transport = blob_transport
        self._container = container
        self._datastore = datastore

    # --------------------------------------------------------------------------------- datastore

    def _store(self) -> tuple[str, ContainerClient]:
        """The default datastore's name and a client for its container (looked up once)."""
        if self._container is not None and self._datastore is not None:
            return self._datastore, self._container
        from azure.ai.ml.entities import AccountKeyConfiguration, SasTokenConfiguration
        from azure.storage.blob import BlobServiceClient

        with _translate("read the default datastore", self._workspace):
            ds = self._ml.datastores.get_default(include_secrets=True)
        account = getattr(ds, "account_name", None)
        container = getattr(ds, "container_name", None)
        if not account or not container:
            raise ConfigError(
                f"workspace {self._workspace}: the default datastore {ds.name!r} is not an Azure Blob "
                "datastore; make a blob datastore the default (`az ml datastore update`) to fine-tune"
            )
        creds = ds.credentials
        credential: Any
        if isinstance(creds, AccountKeyConfiguration) and creds.account_key:
            credential = {"account_name": account, "account_key": creds.account_key}
        elif isinstance(creds, SasTokenConfiguration) and creds.sas_token:
            credential = creds.sas_token
        else:
            credential = getattr(self._ml, "_credential", None)
        protocol = getattr(ds, "protocol", None) or "https"
        url = f"{protocol}://{account}.blob.{getattr(ds, 'endpoint', None) or 'core.windows.net'}"
        extra: dict[str, Any] = {"transport": self._blob_transport} if self._blob_transport else {}
        service = BlobServiceClient(url, credential=credential, **extra)
        self._datastore = ds.name
        self._container = service.get_container_client(container)
        return self._datastore, self._container

    def _uri(self, datastore: str, blob: str) -> str:
        return f"azureml://datastores/{datastore}/paths/{blob}"

    def list_files(self, purpose: str | None = None) -> list[FileInfo]:
        """The files modelshift uploaded to the datastore (their ids are ``azureml://`` datastore URIs)."""
        if purpose not in (None, "fine-tune"):
            return []
        datastore, container = self._store()
        with _translate(f"list {self._prefix}/ on datastore {datastore}", self._workspace):
            blobs = list(container.list_blobs(name_starts_with=self._prefix + "/"))
        return [
            FileInfo(
                id=self._uri(datastore, b.name),
                filename=b.name.rsplit("/", 1)[-1],
                purpose="fine-tune",
                status="processed",
                bytes=b.size,
                created_at=ensure_utc(b.creation_time) if b.creation_time else None,
            )
            for b in blobs
        ]

    def upload_file(self, filename: str, content: bytes, purpose: str = "fine-tune") -> FileInfo:
        """Write ``content`` to ``<prefix>/<sha256>/<filename>``; an existing blob there is the same bytes."""
        from azure.storage.blob import ContentSettings

        datastore, container = self._store()
        blob = f"{self._prefix}/{_sha256(content)}/{filename}"
        # content-addressed: a blob already there holds these very bytes
        what = f"upload {filename} to datastore {datastore}"
        with _translate(what, self._workspace), suppress(ResourceExistsError):
            container.upload_blob(
                blob,
                content,
                overwrite=False,
                content_settings=ContentSettings(content_type="application/jsonl"),
            )
        return FileInfo(
            id=self._uri(datastore, blob),
            filename=filename,
            purpose=purpose,
            status="processed",
            bytes=len(content),
        )

    # -------------------------------------------------------------------------------------- jobs

    def _build(self, spec: FineTuneJobSpec, name: str) -> Any:
        from azure.ai.ml import Input, Output
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities._job.finetuning.custom_model_finetuning_job import CustomModelFineTuningJob
        from azure.ai.ml.finetuning import create_finetuning_job

        where = f"fine-tuning job {name} in workspace {self._workspace}"
        assert spec.suffix is not None  # create_job checked it
        tags = {TAG_SUFFIX: spec.suffix, TAG_MODEL: spec.model, TAG_TRAINING: spec.training_file}
        if spec.validation_file:
            tags[TAG_VALIDATION] = spec.validation_file
        common: dict[str, Any] = {
            "name": name,
            "display_name": spec.suffix,
            "experiment_name": self._experiment,
            "tags": tags,
        }
        hyper = maap_hyperparameters(spec.hyperparameters, where=where)
        if spec.seed is not None:
            hyper["seed"] = str(spec.seed)
        output = f"ft-{spec.suffix}"
        if spec.validation_file:
            return create_finetuning_job(
                model=spec.model,
                task=self._task,
                training_data=spec.training_file,
                validation_data=spec.validation_file,
                output_model_name_prefix=output,
                hyperparameters=hyper,
                compute=self._compute,
                instance_types=self._instance_types,
                **common,
            )
        from azure.ai.ml.entities._job.job_resources import JobResources

        return CustomModelFineTuningJob(
            task=self._task,
            model=Input(type=AssetTypes.MLFLOW_MODEL, path=spec.model),
            training_data=Input(type=AssetTypes.URI_FILE, path=spec.training_file),
            validation_data=None,
            hyperparameters=hyper,
            compute=self._compute,
            resources=JobResources(instance_types=self._instance_types) if self._instance_types else None,
            outputs={"registered_model": Output(type="mlflow_model", name=output)},
            **common,
        )

    def create_job(self, spec: FineTuneJobSpec) -> FineTuneJob:
        """Submit a FineTuning job named after ``spec.suffix`` (required: it is how a re-run finds it).

        A job that already has this name is returned as it is, with no second PUT: a GET by name sees a
        job the moment it exists, even when a just-submitted job is not in the workspace's job list yet."""
        if not spec.suffix:
            raise ConfigError(
                f"workspace {self._workspace}: a catalog fine-tuning job needs a suffix (it names the job so "
                "a re-run finds it); build the request with FineTuneRequest"
            )
        if not spec.model.startswith("azureml://registries/"):
            raise ConfigError(
                f"workspace {self._workspace}: model {spec.model!r} is not a catalog model id; give "
                "azureml://registries/<registry>/models/<name>/versions/<version>"
            )
        name = job_name(spec.suffix)
        with _translate(f"submit fine-tuning job {name}", self._workspace):
            try:
                existing = self._ml.jobs.get(name)
            except ResourceNotFoundError:
                existing = None
            if existing is not None and (existing.tags or {}).get(TAG_SUFFIX) == spec.suffix:
                return self._job(existing, error=None)
            if existing is not None:
                raise ConfigError(
                    f"workspace {self._workspace}: a job named {name} exists but modelshift did not submit "
                    "it (no matching modelshift.suffix tag); rename or archive that job, or change the "
                    "bundle's model.fine_tune.suffix"
                )
            submitted = self._ml.jobs.create_or_update(self._build(spec, name))
        return self._job(submitted, error=None)

    def _run(self, name: str) -> Any:
        """The job's run in run history (status, times, error)."""
        with _translate(f"read the run of job {name}", self._workspace):
            return self._ml.jobs._runs_operations.get_run(name)

    def get_job(self, job_id: str) -> FineTuneJob:
        """The job now; a Failed or Canceled job carries run history's error code and message."""
        with _translate(f"read fine-tuning job {job_id}", self._workspace):
            try:
                job = self._ml.jobs.get(job_id)
            except ResourceNotFoundError as exc:
                raise BadRequestError(
                    f"fine-tuning job {job_id} does not exist in workspace {self._workspace}; it was deleted "
                    "or the workspace settings point elsewhere — check the bundle's subscription, "
                    "resource_group and account (the workspace)",
                    status_code=404,
                    request=f"read fine-tuning job {job_id}",
                ) from exc
        error = None
        if STATUS.get(_text(job.status)) in (FineTuneStatus.FAILED, FineTuneStatus.CANCELLED):
            error = _run_error(self._run(job_id), _text(job.status))
        return self._job(job, error=error)

    def list_jobs(self) -> list[FineTuneJob]:
        """The workspace's fine-tuning jobs that modelshift submitted (they carry its suffix tag)."""
        with _translate("list jobs", self._workspace):
            # the service filters on the tag key (REST ``tag=``); the check below keeps us right without it
            listed = self._ml.jobs.list(tag=TAG_SUFFIX)
            jobs = [j for j in listed if j is not None and TAG_SUFFIX in (j.tags or {})]
        return [self._job(j, error=None) for j in jobs]

    def list_events(self, job_id: str) -> list[FineTuneEvent]:
        """The run's milestones from run history, oldest first: submitted, started, ended (with the error)."""
        run = self._run(job_id)
        events: list[FineTuneEvent] = []
        if run.created_utc:
            events.append(_event(job_id, "submitted", run.created_utc, "info", f"Job {job_id} submitted"))
        if run.start_time_utc:
            events.append(
                _event(job_id, "started", run.start_time_utc, "info", f"Job {job_id} started running")
            )
        status = _text(run.status)
        if run.end_time_utc and status in ("Completed", "Failed", "Canceled"):
            error = _run_error(run, status)
            level = "info" if status == "Completed" else "error"
            text = f"Job {job_id} {status.lower()}" + (f": {error.code}: {error.message}" if error else "")
            events.append(_event(job_id, status.lower(), run.end_time_utc, level, text))
        return events

    def cancel_job(self, job_id: str) -> FineTuneJob:
        """Ask Azure ML to cancel the job; returns its state after the request."""
        with _translate(f"cancel fine-tuning job {job_id}", self._workspace):
            self._ml.jobs.begin_cancel(job_id, polling=False)
        return self.get_job(job_id)

    def _job(self, job: Any, *, error: JobError | None) -> FineTuneJob:
        tags = dict(job.tags or {})
        status = STATUS.get(_text(job.status), FineTuneStatus.PENDING)
        fine_tuned = None
        if status is FineTuneStatus.SUCCEEDED:
            output = (job.outputs or {}).get("registered_model")
            name = getattr(output, "name", None)
            if name:
                fine_tuned = f"azureml:{name}:{getattr(output, 'version', None) or '1'}"
        created = getattr(getattr(job, "creation_context", None), "created_at", None)
        return FineTuneJob(
            id=job.name,
            status=status,
            model=tags.get(TAG_MODEL) or _path(getattr(job, "model", None)) or "",
            training_file=tags.get(TAG_TRAINING) or _path(getattr(job, "training_data", None)),
            validation_file=tags.get(TAG_VALIDATION) or _path(getattr(job, "validation_data", None)),
            fine_tuned_model=fine_tuned,
            hyperparameters=dict(getattr(job, "hyperparameters", None) or {}),
            suffix=tags.get(TAG_SUFFIX),
            created_at=ensure_utc(created) if isinstance(created, datetime) else None,
            error=error,
        )


def _text(status: Any) -> str:
    """A status as Azure spells it (azure-ai-ml hands out str enums whose ``str()`` is the member name)."""
    return str(getattr(status, "value", status) or "")


def _path(value: Any) -> str | None:
    path = getattr(value, "path", None)
    return path if isinstance(path, str) else None


def _run_error(run: Any, status: str) -> JobError:
    """Run history's root error of a run, or the status itself when run history gives none."""
    root = getattr(getattr(run, "error", None), "error", None)
    code = getattr(root, "code", None)
    message = getattr(root, "message", None)
    if code or message:
        return JobError(code=code, message=message)
    reason = getattr(run, "cancelation_reason", None)
    return JobError(code=status, message=reason or f"the job ended {status} without an error in run history")


def _event(job_id: str, key: str, when: datetime, level: str, message: str) -> FineTuneEvent:
    return FineTuneEvent(
        id=f"{job_id}:{key}", created_at=ensure_utc(when), level=level, message=message, type="message"
    )
