"""The data-plane inference surface: chat completions, embeddings and models, classic and v1 routes.

Each request goes through the gates Azure applies, in Azure's order: auth, api-version, account,
deployment (404 / not yet provisioned), paused (423), retired (410), rate limits (429), injected faults,
then the local model, which sleeps for a sampled latency scaled by the scenario's ``latency_scale``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from typing import Any

import tiktoken
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from modelshift.emulator.answerer import answer_chat, embed
from modelshift.emulator.finetune_state import unix
from modelshift.emulator.judge import judge_answer
from modelshift.emulator.scenario import BehaviourProfile, CatalogModel
from modelshift.emulator.state import Account, Deployment, World
from modelshift.emulator.web import (
    AzureHTTPError,
    DropConnection,
    require_data_api_version,
    require_data_auth,
    world_of,
)
from modelshift.errors import ConfigError
from modelshift.grounding.tokenizers import encoding_for_model, get_encoding

router = APIRouter(dependencies=[Depends(require_data_auth)])

_CLASSIC = "/accounts/{account}/openai/deployments/{deployment}"
_V1 = "/accounts/{account}/openai/v1"


def tokenizer_for(model_name: str) -> tiktoken.Encoding:
    """The model's real tokenizer; non-OpenAI models are counted with o200k_base as an approximation."""
    try:
        return encoding_for_model(model_name)
    except ConfigError:
        return get_encoding("o200k_base")


def account_or_404(world: World, name: str) -> Account:
    """The account a data-plane prefix names, or Azure's bare 404."""
    account = world.accounts.get(name)
    if account is None:
        raise AzureHTTPError(404, "404", "Resource not found")
    return account


def _model_id(account: Account, dep: Deployment) -> str:
    if dep.model.name in account.finetune.models:
        return dep.model.name
    return f"{dep.model.name}-{dep.model.version}"


def _is_embedding(world: World, account: Account, dep: Deployment) -> bool:
    base = world.base_catalog_model(account, dep.model)
    return base is not None and base.capabilities.get("embeddings") == "true"


def gate(
    world: World, account: Account, deployment: str, operation: str
) -> tuple[Deployment, BehaviourProfile]:
    """404 / 423 / 410 checks, in Azure's order; returns the deployment and its behaviour profile."""
    with world.lock:
        dep = account.deployments.get(deployment)
        if dep is None or dep.provisioning_state(world.clock()) != "Succeeded":
            raise AzureHTTPError(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again.",
            )
        if dep.state == "Paused":
            raise AzureHTTPError(
                423,
                "DeploymentPaused",
                f"The deployment '{dep.name}' is paused. Resume it "
                f"(POST .../deployments/{dep.name}/resume) to serve requests again.",
            )
        if world.is_retired(account, dep):
            raise AzureHTTPError(
                410,
                "ModelDeprecated",
                "The model associated with the deployment is deprecated and no longer available for use. "
                "Please refer to the Azure OpenAI service documentation for more information.",
            )
        return dep, world.profile_for(account, dep)


def _rate_limit(
    world: World, account: Account, dep: Deployment, tokens: int, op: str, version: str
) -> dict[str, str]:
    decision = world.limiter(account.name, dep).acquire(tokens)
    headers = {
        "x-ratelimit-remaining-requests": str(decision.remaining_requests),
        "x-ratelimit-remaining-tokens": str(decision.remaining_tokens),
    }
    if not decision.allowed:
        seconds = max(1, math.ceil(decision.retry_after_s))
        headers["retry-after-ms"] = str(int(decision.retry_after_s * 1000))
        headers["retry-after"] = str(seconds)
        raise AzureHTTPError(
            429,
            "429",
            f"Requests to the {op} Operation under Azure OpenAI API version {version} have exceeded the rate "
            f"limit of your current deployment '{dep.name}' ({dep.capacity * 1000} TPM). Please retry after "
            f"{seconds} seconds.",
            headers=headers,
        )
    return headers


async def _faults_and_latency(
    world: World, account: Account, dep: Deployment, profile: BehaviourProfile
) -> float:
    """Apply injected faults and the profile's error rate; sleep the sampled latency; return it (ms)."""
    rng = world.rng(account.name, dep.name)
    fault = world.faults.get((account.name, dep.name))
    with world.lock:
        roll_reset, roll_timeout, roll_500, roll_503, roll_err = (rng.random() for _ in range(5))
        latency = rng.lognormvariate(math.log(profile.latency.median_ms), profile.latency.sigma)
    if fault is not None:
        if roll_reset < fault.reset_rate:
            raise DropConnection()
        if roll_timeout < fault.timeout_rate:
            await asyncio.sleep(fault.timeout_seconds)
            raise AzureHTTPError(408, "Timeout", "The operation was timeout.")
        if roll_500 < fault.rate_500:
            raise AzureHTTPError(
                500,
                "InternalServerError",
                "The server had an error while processing your request. Sorry about that!",
            )
        if roll_503 < fault.rate_503:
            raise AzureHTTPError(
                503,
                "ServiceUnavailable",
                "The service is temporarily unable to process your request. Try again.",
            )
    if roll_err < profile.error_rate:
        raise AzureHTTPError(
            500,
            "InternalServerError",
            "The server had an error while processing your request. Sorry about that!",
        )
    await asyncio.sleep(latency / 1000.0 * world.latency_scale)
    return latency


def _served(world: World, dep: Deployment, profile: BehaviourProfile) -> BehaviourProfile:
    """Count one more chat request served by ``dep``; its profile for it (degraded past the threshold)."""
    with world.lock:
        dep.chat_requests += 1
        served = dep.chat_requests
    return profile.under_load(served)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise AzureHTTPError(400, "BadRequest", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise AzureHTTPError(400, "BadRequest", "The request body must be a JSON object.")
    return body


async def chat(
    request: Request, account_name: str, deployment: str, version: str, body: dict[str, Any]
) -> JSONResponse:
    """Shared chat-completions handler for the classic and v1 routes."""
    world = world_of(request)
    account = account_or_404(world, account_name)
    dep, profile = gate(world, account, deployment, "ChatCompletions_Create")
    if _is_embedding(world, account, dep):
        raise AzureHTTPError(
            400,
            "OperationNotSupported",
            f"The chatCompletion operation does not work with the specified model, {dep.model.name}. Please "
            "choose different model and try again.",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise AzureHTTPError(
            400, "BadRequest", "'messages' is a required property and must be a non-empty array."
        )
    if body.get("stream"):
        raise AzureHTTPError(400, "BadRequest", "stream=true is not supported by the modelshift emulator.")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise AzureHTTPError(400, "BadRequest", "max_tokens must be a positive integer.")
    enc = tokenizer_for(_model_id(account, dep))
    from modelshift.emulator.answerer import count_prompt_tokens

    estimate = count_prompt_tokens(messages, enc) + (max_tokens or 0)
    headers = _rate_limit(world, account, dep, estimate, "ChatCompletions_Create", version)
    profile = _served(world, dep, profile)
    latency = await _faults_and_latency(world, account, dep, profile)
    response_format = body.get("response_format")
    system = " ".join(str(m.get("content", "")) for m in messages if m.get("role") in ("system", "developer"))
    json_mode = "JSON" in system or (
        isinstance(response_format, dict) and response_format.get("type") == "json_object"
    )
    # an azure-ai-evaluation judge prompt gets a judge's verdict; anything else the extractive answer
    answer = judge_answer(messages, enc=enc, max_tokens=max_tokens) or answer_chat(
        messages,
        enc=enc,
        quality=profile.quality,
        context_window=profile.context_window,
        seed=f"{account.name}/{dep.name}/{dep.model.name}@{dep.model.version}",
        max_tokens=max_tokens,
        json_mode=json_mode,
    )
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:24]
    headers.update(
        {
            "x-modelshift-emulated-latency-ms": f"{latency:.1f}",
            "x-modelshift-answer-picked": answer.picked,
            "x-modelshift-context-dropped-tokens": str(answer.dropped_context_tokens),
            "x-ms-region": account.location,
        }
    )
    payload = {
        "id": f"chatcmpl-{digest}",
        "object": "chat.completion",
        "created": unix(world.clock()),
        "model": _model_id(account, dep),
        "system_fingerprint": "fp_modelshift_emulator",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.content},
                "finish_reason": answer.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        },
    }
    return JSONResponse(payload, headers=headers)


async def embeddings(
    request: Request, account_name: str, deployment: str, version: str, body: dict[str, Any]
) -> JSONResponse:
    """Shared embeddings handler for the classic and v1 routes."""
    world = world_of(request)
    account = account_or_404(world, account_name)
    dep, profile = gate(world, account, deployment, "Embeddings_Create")
    if not _is_embedding(world, account, dep):
        raise AzureHTTPError(
            400,
            "OperationNotSupported",
            f"The embeddings operation does not work with the specified model, {dep.model.name}. "
            "Please choose different model and try again.",
        )
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise AzureHTTPError(400, "BadRequest", "'input' must be a string or a non-empty array of strings.")
    dims = body.get("dimensions", profile.embedding_dims)
    if not isinstance(dims, int) or not 1 <= dims <= profile.embedding_dims:
        raise AzureHTTPError(
            400, "BadRequest", f"'dimensions' must be between 1 and {profile.embedding_dims}."
        )
    enc = tokenizer_for(dep.model.name)
    tokens = sum(len(enc.encode(text, disallowed_special=())) for text in inputs)
    headers = _rate_limit(world, account, dep, tokens, "Embeddings_Create", version)
    await _faults_and_latency(world, account, dep, profile)
    payload = {
        "object": "list",
        "model": _model_id(account, dep),
        "data": [
            {"object": "embedding", "index": i, "embedding": embed(text, dims)}
            for i, text in enumerate(inputs)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return JSONResponse(payload, headers=headers)


@router.post(_CLASSIC + "/chat/completions")
async def chat_classic(request: Request, account: str, deployment: str) -> JSONResponse:
    """POST {endpoint}openai/deployments/{deployment}/chat/completions?api-version=..."""
    version = require_data_api_version(request)
    return await chat(request, account, deployment, version, await _json_body(request))


@router.post(_CLASSIC + "/embeddings")
async def embeddings_classic(request: Request, account: str, deployment: str) -> JSONResponse:
    """POST {endpoint}openai/deployments/{deployment}/embeddings?api-version=..."""
    version = require_data_api_version(request)
    return await embeddings(request, account, deployment, version, await _json_body(request))


def _v1_deployment(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise AzureHTTPError(
            400, "BadRequest", "'model' (the deployment name) is required on the v1 surface."
        )
    return model


@router.post(_V1 + "/chat/completions")
async def chat_v1(request: Request, account: str) -> JSONResponse:
    """POST {endpoint}openai/v1/chat/completions with model = deployment name (OpenAI-compatible)."""
    body = await _json_body(request)
    return await chat(request, account, _v1_deployment(body), "v1", body)


@router.post(_V1 + "/embeddings")
async def embeddings_v1(request: Request, account: str) -> JSONResponse:
    """POST {endpoint}openai/v1/embeddings with model = deployment name (OpenAI-compatible)."""
    body = await _json_body(request)
    return await embeddings(request, account, _v1_deployment(body), "v1", body)


def model_body(world: World, model: CatalogModel) -> dict[str, Any]:
    """A data-plane Model (unix-second dates, lifecycle preview | generally-available)."""
    deprecation: dict[str, int] = {}
    if model.deprecation.inference is not None:
        deprecation["inference"] = unix(model.deprecation.inference)
    if model.deprecation.fine_tune is not None:
        deprecation["fine_tune"] = unix(model.deprecation.fine_tune)
    caps = model.capabilities
    return {
        "id": f"{model.name}-{model.version}",
        "object": "model",
        "created_at": unix(model.created_at or world.scenario.clock.start),
        "status": "succeeded",
        "lifecycle_status": "preview" if model.lifecycle_status == "Preview" else "generally-available",
        "deprecation": deprecation,
        "capabilities": {
            "fine_tune": caps.get("fineTune") == "true",
            "inference": caps.get("inference", "true") == "true",
            "completion": False,
            "chat_completion": caps.get("chatCompletion") == "true",
            "embeddings": caps.get("embeddings") == "true",
        },
    }


def _models(world: World, account: Account) -> list[dict[str, Any]]:
    with world.lock:
        account.finetune.settle(world.clock())
        out = [
            model_body(world, m)
            for m in world.scenario.catalog
            if m.offered_in(account.location) and (m.kind == "OpenAI" or account.kind == "AIServices")
        ]
        for ft in account.finetune.models.values():
            base = world.catalog_for_base_id(ft.base_model)
            if base is None:
                continue
            body = model_body(world, base)
            body.update(
                {
                    "id": ft.id,
                    "created_at": unix(ft.created_at),
                    "model": ft.base_model,
                    "fine_tune": ft.job_id or f"ftjob-{ft.id.rsplit('.ft-', 1)[-1]}",
                }
            )
            body["deprecation"] = {k: v for k, v in body["deprecation"].items() if k == "inference"}
            body["capabilities"] = {**body["capabilities"], "fine_tune": False}
            out.append(body)
    return out


@router.get("/accounts/{account}/openai/models")
def list_models(request: Request, account: str) -> dict[str, Any]:
    """GET {endpoint}openai/models: base models of the account's location plus its fine-tuned models."""
    require_data_api_version(request)
    world = world_of(request)
    return {"object": "list", "data": _models(world, account_or_404(world, account))}


@router.get("/accounts/{account}/openai/models/{model_id}")
def get_model(request: Request, account: str, model_id: str) -> dict[str, Any]:
    """GET {endpoint}openai/models/{id}."""
    require_data_api_version(request)
    world = world_of(request)
    for body in _models(world, account_or_404(world, account)):
        if body["id"] == model_id:
            return body
    raise AzureHTTPError(
        404, "modelNotFound", f"The model '{model_id}' does not exist in account '{account}'."
    )


@router.get(_V1 + "/models")
def list_models_v1(request: Request, account: str) -> dict[str, Any]:
    """GET {endpoint}openai/v1/models: deployments (usable as ``model``) and base models."""
    world = world_of(request)
    acc = account_or_404(world, account)
    with world.lock:
        deployments = [
            {
                "id": d.name,
                "object": "model",
                "created": unix(d.created_at),
                "owned_by": "modelshift-emulator",
                "model": _model_id(acc, d),
            }
            for d in acc.deployments.values()
        ]
    models = [{**m, "created": m["created_at"], "owned_by": "system"} for m in _models(world, acc)]
    return {"object": "list", "data": deployments + models}
