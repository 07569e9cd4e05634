"""Data-plane files and fine-tuning jobs (api-version 2024-10-21 shapes), on the scenario clock."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from modelshift.emulator.finetune_state import Job, StoredFile, validate_training_jsonl
from modelshift.emulator.inference import account_or_404
from modelshift.emulator.state import Account, World
from modelshift.emulator.web import AzureHTTPError, require_data_api_version, require_data_auth, world_of

router = APIRouter(dependencies=[Depends(require_data_auth), Depends(require_data_api_version)])

_PREFIX = "/accounts/{account}/openai"
_PURPOSES = ("fine-tune", "fine-tune-results", "assistants", "assistants_output", "batch", "batch_output")


def _file_or_404(account: Account, file_id: str) -> StoredFile:
    found = account.finetune.files.get(file_id)
    if found is None:
        raise AzureHTTPError(404, "notFound", f"File with id '{file_id}' not found.", target="file_id")
    return found


def _job_or_404(account: Account, job_id: str) -> Job:
    found = account.finetune.jobs.get(job_id)
    if found is None:
        raise AzureHTTPError(
            404, "notFound", f"Fine-tuning job '{job_id}' not found.", target="fine_tuning_job_id"
        )
    return found


def _after_limit(request: Request, default: int) -> tuple[str | None, int]:
    raw = request.query_params.get("limit", str(default))
    try:
        limit = int(raw)
    except ValueError as exc:
        raise AzureHTTPError(400, "invalidPayload", f"limit must be an integer, got '{raw}'.") from exc
    if not 1 <= limit <= 100:
        raise AzureHTTPError(400, "invalidPayload", "limit must be between 1 and 100.")
    return request.query_params.get("after"), limit


@router.post(_PREFIX + "/files")
async def upload_file(request: Request, account: str) -> JSONResponse:
    """Multipart upload (``purpose``, ``file``): 201 with a File body and a Location header."""
    world = world_of(request)
    acc = account_or_404(world, account)
    form = await request.form()
    purpose = form.get("purpose")
    upload = form.get("file")
    if not isinstance(purpose, str) or purpose not in _PURPOSES:
        raise AzureHTTPError(
            400, "invalidPayload", f"purpose must be one of {', '.join(_PURPOSES)}.", target="purpose"
        )
    if not isinstance(upload, UploadFile):
        raise AzureHTTPError(400, "invalidPayload", "the multipart form needs a 'file' part.", target="file")
    content = await upload.read()
    filename = upload.filename or "upload.jsonl"
    with world.lock:
        file_id = acc.finetune.next_id("file", filename)
        stored = StoredFile(file_id, filename, purpose, content, world.clock())
        acc.finetune.files[file_id] = stored
    location = f"{request.base_url}accounts/{account}/openai/files/{file_id}"
    return JSONResponse(stored.body(), status_code=201, headers={"location": location})


@router.get(_PREFIX + "/files")
def list_files(request: Request, account: str) -> dict[str, Any]:
    """Files of the account, optionally filtered by ``purpose``."""
    acc = account_or_404(world_of(request), account)
    purpose = request.query_params.get("purpose")
    data = [f.body() for f in acc.finetune.files.values() if purpose is None or f.purpose == purpose]
    return {"object": "list", "data": data}


@router.get(_PREFIX + "/files/{file_id}")
def get_file(request: Request, account: str, file_id: str) -> dict[str, Any]:
    """One file."""
    return _file_or_404(account_or_404(world_of(request), account), file_id).body()


@router.get(_PREFIX + "/files/{file_id}/content")
def file_content(request: Request, account: str, file_id: str) -> Response:
    """The bytes of a file."""
    stored = _file_or_404(account_or_404(world_of(request), account), file_id)
    return Response(stored.content, media_type="application/octet-stream")


@router.delete(_PREFIX + "/files/{file_id}")
def delete_file(request: Request, account: str, file_id: str) -> dict[str, Any]:
    """Delete a file."""
    world = world_of(request)
    acc = account_or_404(world, account)
    with world.lock:
        _file_or_404(acc, file_id)
        del acc.finetune.files[file_id]
    return {"object": "file", "id": file_id, "deleted": True}


def _base_for_job(world: World, acc: Account, model: str) -> tuple[str, Any]:
    acc.finetune.settle(world.clock())
    ft = acc.finetune.models.get(model)
    base = world.catalog_for_base_id(ft.base_model if ft else model)
    if base is None or (ft is None and base.capabilities.get("fineTune") != "true"):
        raise AzureHTTPError(
            400,
            "invalidPayload",
            f"The specified base model '{model}' does not support fine-tuning. "
            "List {endpoint}openai/models and pick one whose capabilities.fine_tune is true.",
            target="model",
        )
    now = world.clock()
    if base.deprecation.fine_tune is not None and now >= base.deprecation.fine_tune:
        raise AzureHTTPError(
            400,
            "invalidPayload",
            f"Fine-tuning of '{model}' was retired on {base.deprecation.fine_tune.date().isoformat()}.",
            target="model",
        )
    return (ft.base_model if ft else f"{base.name}-{base.version}"), base


@router.post(_PREFIX + "/fine_tuning/jobs")
async def create_job(request: Request, account: str) -> JSONResponse:
    """Create a job: 201 with the job (status created) and a Location header."""
    world = world_of(request)
    acc = account_or_404(world, account)
    try:
        body = await request.json()
    except ValueError as exc:
        raise AzureHTTPError(400, "invalidPayload", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise AzureHTTPError(400, "invalidPayload", "The request body must be a JSON object.")
    model, training_file = body.get("model"), body.get("training_file")
    if not isinstance(model, str) or not isinstance(training_file, str):
        raise AzureHTTPError(400, "invalidPayload", "'model' and 'training_file' are required strings.")
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 40):
        raise AzureHTTPError(400, "invalidPayload", "suffix must be a string of at most 40 characters.")
    with world.lock:
        stored = _file_or_404(acc, training_file)
        validation_file = body.get("validation_file")
        if validation_file is not None:
            _file_or_404(acc, str(validation_file))
        _, base = _base_for_job(world, acc, model)
        profile = world.scenario.profiles.get(base.key, world.scenario.default_profile)
        job_id = acc.finetune.next_id("ftjob", model, training_file)
        seed = body.get("seed")
        job = Job(
            id=job_id,
            model=model,
            training_file=training_file,
            validation_file=validation_file,
            hyperparameters=dict(body.get("hyperparameters") or {"n_epochs": -1}),
            suffix=suffix,
            seed=seed if isinstance(seed, int) else int(job_id[6:14], 16),
            created_at=world.clock(),
            outcome=profile.fine_tune,
            validation_error=validate_training_jsonl(stored.content),
            trained_tokens=len(stored.content) // 4 * 3,
        )
        acc.finetune.jobs[job_id] = job
        out = job.body(world.clock())
    location = f"{request.base_url}accounts/{account}/openai/fine_tuning/jobs/{job_id}"
    return JSONResponse(out, status_code=201, headers={"location": location})


@router.get(_PREFIX + "/fine_tuning/jobs")
def list_jobs(request: Request, account: str) -> dict[str, Any]:
    """Jobs, newest first, paged with ``after`` / ``limit``."""
    world = world_of(request)
    acc = account_or_404(world, account)
    after, limit = _after_limit(request, 20)
    with world.lock:
        now = world.clock()
        jobs = list(reversed(acc.finetune.jobs.values()))
        if after is not None:
            ids = [j.id for j in jobs]
            jobs = jobs[ids.index(after) + 1 :] if after in ids else []
        page = [j.body(now) for j in jobs[:limit]]
    return {"object": "list", "data": page, "has_more": len(jobs) > limit}


@router.get(_PREFIX + "/fine_tuning/jobs/{job_id}")
def get_job(request: Request, account: str, job_id: str) -> dict[str, Any]:
    """One job, its status computed on the scenario clock."""
    world = world_of(request)
    acc = account_or_404(world, account)
    with world.lock:
        acc.finetune.settle(world.clock())
        return _job_or_404(acc, job_id).body(world.clock())


@router.get(_PREFIX + "/fine_tuning/jobs/{job_id}/events")
def job_events(request: Request, account: str, job_id: str) -> dict[str, Any]:
    """Events so far, oldest first, paged with ``after`` (an event id) / ``limit``."""
    world = world_of(request)
    acc = account_or_404(world, account)
    after, limit = _after_limit(request, 20)
    with world.lock:
        events = _job_or_404(acc, job_id).events(world.clock())
    if after is not None:
        ids = [e["id"] for e in events]
        events = events[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": events[:limit], "has_more": len(events) > limit}


@router.post(_PREFIX + "/fine_tuning/jobs/{job_id}/cancel")
def cancel_job(request: Request, account: str, job_id: str) -> dict[str, Any]:
    """Cancel a job that has not finished; 400 ``unexpectedEntityState`` otherwise."""
    world = world_of(request)
    acc = account_or_404(world, account)
    with world.lock:
        job = _job_or_404(acc, job_id)
        now = world.clock()
        status = job.status(now)
        if status in ("succeeded", "failed", "cancelled"):
            raise AzureHTTPError(
                400,
                "unexpectedEntityState",
                f"The job '{job_id}' is already {status} and cannot be cancelled.",
            )
        job.cancelled_at = now
        return job.body(now)


@router.delete(_PREFIX + "/fine_tuning/jobs/{job_id}")
def delete_job(request: Request, account: str, job_id: str) -> Response:
    """Delete a job record (204)."""
    world = world_of(request)
    acc = account_or_404(world, account)
    with world.lock:
        _job_or_404(acc, job_id)
        del acc.finetune.jobs[job_id]
    return Response(status_code=204)
