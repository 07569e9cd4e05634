"""Azure OpenAI data plane (api-version 2024-10-21): models, chat, embeddings, files and fine-tuning.

:class:`AzureOpenAIClient` implements :class:`~modelshift.platforms.base.Inference` and
:class:`~modelshift.platforms.base.FineTuning`; :class:`AsyncAzureOpenAIClient` implements
:class:`~modelshift.platforms.base.AsyncInference`. URLs are ``{endpoint}/openai/...`` exactly as on Azure,
where ``endpoint`` is the account's ARM ``properties.endpoint`` (the emulator's per-account prefix included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from modelshift.errors import BadRequestError, PlatformError
from modelshift.platforms import base
from modelshift.platforms.azure.http import LATENCY_KEY, AsyncAzureHttp, AzureHttp, Target, parse_body
from modelshift.platforms.azure.openai_models import (
    DpChatCompletion,
    DpEmbeddings,
    DpEvent,
    DpFile,
    DpFineTuningJob,
    DpList,
    DpModel,
)
from modelshift.platforms.azure.retry import SAFE_TO_REPEAT

DEFAULT_DATA_PLANE_API_VERSION: Final = "2024-10-21"
_PAGE_LIMIT: Final = 100
_MAX_PAGES: Final = 10_000


def account_name_from_endpoint(endpoint: str) -> str:
    """The account an endpoint belongs to: ``https://contoso.openai.azure.com/`` → ``contoso``; the emulator's
    ``http://127.0.0.1:PORT/accounts/contoso/`` → ``contoso``."""
    parts = urlsplit(endpoint)
    segments = [s for s in parts.path.split("/") if s]
    if "accounts" in segments and segments.index("accounts") + 1 < len(segments):
        return segments[segments.index("accounts") + 1]
    host = parts.hostname or endpoint
    if host.endswith((".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")):
        return host.split(".", 1)[0]
    return host


def rate_limit_info(headers: Mapping[str, str]) -> base.RateLimitInfo:
    """The ``x-ratelimit-*`` headers as numbers (absent or malformed → None)."""

    def num(name: str) -> int | None:
        raw = headers.get(name)
        try:
            return int(float(raw)) if raw is not None else None
        except ValueError:
            return None

    return base.RateLimitInfo(
        remaining_requests=num("x-ratelimit-remaining-requests"),
        remaining_tokens=num("x-ratelimit-remaining-tokens"),
        limit_requests=num("x-ratelimit-limit-requests"),
        limit_tokens=num("x-ratelimit-limit-tokens"),
    )


class _DataPlane:
    """URL building and response parsing shared by the sync and async clients."""

    def __init__(self, endpoint: str, api_version: str, account: str | None) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise BadRequestError(
                f"data-plane endpoint {endpoint!r} is not an http(s) URL; "
                "use the account's ARM properties.endpoint"
            )
        self.endpoint = endpoint.rstrip("/")
        self.api_version = api_version
        self.account = account or account_name_from_endpoint(endpoint)

    def url(self, path: str) -> str:
        return f"{self.endpoint}/openai/{path.lstrip('/')}"

    @property
    def params(self) -> dict[str, str]:
        return {"api-version": self.api_version}

    def target(self, deployment: str | None = None, resource: str | None = None) -> Target:
        return Target(
            "Azure OpenAI data plane", account=self.account, deployment=deployment, resource=resource
        )

    @staticmethod
    def chat_result(response: httpx.Response, target: Target) -> base.ChatResult:
        body = parse_body(DpChatCompletion, response, target)
        if not body.choices:
            raise PlatformError(
                f"{target.describe()} returned no choices (content filtered or empty response)"
            )
        choice = body.choices[0]
        return base.ChatResult(
            content=choice.message.content or "",
            finish_reason=choice.finish_reason,
            usage=body.usage.to_result(),
            latency_ms=float(response.extensions.get(LATENCY_KEY, 0.0)),
            model=body.model,
            rate_limit=rate_limit_info(response.headers),
            request_id=response.headers.get("apim-request-id") or response.headers.get("x-request-id"),
        )

    @staticmethod
    def embedding_result(response: httpx.Response, target: Target, count: int) -> base.EmbeddingResult:
        body = parse_body(DpEmbeddings, response, target)
        ordered = sorted(body.data, key=lambda d: d.index)
        if len(ordered) != count:
            raise PlatformError(f"{target.describe()} returned {len(ordered)} embeddings for {count} inputs")
        return base.EmbeddingResult(
            vectors=tuple(tuple(d.embedding) for d in ordered),
            usage=body.usage.to_result(),
            latency_ms=float(response.extensions.get(LATENCY_KEY, 0.0)),
            model=body.model,
            rate_limit=rate_limit_info(response.headers),
        )


class AzureOpenAIClient:
    """Blocking data-plane client for one account endpoint."""

    def __init__(
        self,
        http: AzureHttp,
        endpoint: str,
        *,
        api_version: str = DEFAULT_DATA_PLANE_API_VERSION,
        account: str | None = None,
    ) -> None:
        self.http = http
        self._dp = _DataPlane(endpoint, api_version, account)

    @property
    def account(self) -> str:
        """The account name used in error messages."""
        return self._dp.account

    # -------------------------------------------------------------------------------------- models

    def list_models(self) -> list[base.CatalogModel]:
        """``GET /openai/models``: base and fine-tuned models with lifecycle and unix-second dates."""
        target = self._dp.target(resource="model list")
        response = self.http.request("GET", self._dp.url("models"), target, params=self._dp.params)
        page = parse_body(DpList, response, target)
        return [DpModel.model_validate(item).to_result() for item in page.data]

    def get_model(self, model_id: str) -> base.CatalogModel:
        """``GET /openai/models/{id}``."""
        target = self._dp.target(resource=f"model {model_id}")
        response = self.http.request(
            "GET", self._dp.url(f"models/{model_id}"), target, params=self._dp.params
        )
        return parse_body(DpModel, response, target).to_result()

    # ----------------------------------------------------------------------------------- inference

    def chat(self, deployment: str, messages: Sequence[Mapping[str, Any]], **params: Any) -> base.ChatResult:
        """Chat completion; repeated on 429/5xx since a completion creates nothing."""
        target = self._dp.target(deployment=deployment)
        body = {**params, "messages": [dict(m) for m in messages]}
        url = self._dp.url(f"deployments/{deployment}/chat/completions")
        response = self.http.request(
            "POST", url, target, params=self._dp.params, json=body, guard=SAFE_TO_REPEAT
        )
        return self._dp.chat_result(response, target)

    def embed(self, deployment: str, inputs: Sequence[str]) -> base.EmbeddingResult:
        """Embeddings of ``inputs`` in order; repeated on 429/5xx."""
        target = self._dp.target(deployment=deployment)
        url = self._dp.url(f"deployments/{deployment}/embeddings")
        response = self.http.request(
            "POST", url, target, params=self._dp.params, json={"input": list(inputs)}, guard=SAFE_TO_REPEAT
        )
        return self._dp.embedding_result(response, target, len(inputs))

    # --------------------------------------------------------------------------------------- files

    def list_files(self, purpose: str | None = None) -> list[base.FileInfo]:
        """``GET /openai/files[?purpose=]``."""
        target = self._dp.target(resource="file list")
        params = {**self._dp.params, **({"purpose": purpose} if purpose else {})}
        response = self.http.request("GET", self._dp.url("files"), target, params=params)
        return [DpFile.model_validate(item).to_result() for item in parse_body(DpList, response, target).data]

    def upload_file(self, filename: str, content: bytes, purpose: str = "fine-tune") -> base.FileInfo:
        """Multipart upload (201). If the response is lost, the retry first looks for a file with the same
        name and size, so put a content digest in ``filename`` to make that lookup exact."""
        target = self._dp.target(resource=f"file upload {filename}")

        def upload() -> base.FileInfo:
            response = self.http.send_once(
                "POST",
                self._dp.url("files"),
                target,
                params=self._dp.params,
                data={"purpose": purpose},
                files={"file": (filename, content, "application/octet-stream")},
            )
            return parse_body(DpFile, response, target).to_result()

        def already_uploaded() -> base.FileInfo | None:
            return next(
                (
                    f
                    for f in self.list_files(purpose)
                    if f.filename == filename and f.bytes in (None, len(content))
                ),
                None,
            )

        return self.http.call("POST", upload, guard=already_uploaded)

    # --------------------------------------------------------------------------------- fine-tuning

    def list_jobs(self) -> list[base.FineTuneJob]:
        """Every fine-tuning job (paged by ``after``)."""
        target = self._dp.target(resource="fine-tuning job list")
        items = self._paged(self._dp.url("fine_tuning/jobs"), target)
        return [DpFineTuningJob.model_validate(i).to_result() for i in items]

    def create_job(self, spec: base.FineTuneJobSpec) -> base.FineTuneJob:
        """``POST /openai/fine_tuning/jobs`` (201). With a ``suffix`` a lost response is found again by
        (model, training_file, suffix) instead of starting a second job; without one it is not retried."""
        target = self._dp.target(resource=f"fine-tuning job on {spec.model}")
        body = spec.model_dump(exclude_none=True)
        if not body.get("hyperparameters"):
            body.pop("hyperparameters", None)

        def create() -> base.FineTuneJob:
            response = self.http.send_once(
                "POST", self._dp.url("fine_tuning/jobs"), target, params=self._dp.params, json=body
            )
            return parse_body(DpFineTuningJob, response, target).to_result()

        def already_created() -> base.FineTuneJob | None:
            return next(
                (
                    j
                    for j in self.list_jobs()
                    if j.suffix == spec.suffix
                    and j.model == spec.model
                    and j.training_file == spec.training_file
                ),
                None,
            )

        return self.http.call("POST", create, guard=already_created if spec.suffix else None)

    def get_job(self, job_id: str) -> base.FineTuneJob:
        """``GET /openai/fine_tuning/jobs/{id}``."""
        target = self._dp.target(resource=f"fine-tuning job {job_id}")
        response = self.http.request(
            "GET", self._dp.url(f"fine_tuning/jobs/{job_id}"), target, params=self._dp.params
        )
        return parse_body(DpFineTuningJob, response, target).to_result()

    def list_events(self, job_id: str) -> list[base.FineTuneEvent]:
        """Every event of the job, oldest first (the API pages newest-first by ``after``)."""
        target = self._dp.target(resource=f"events of fine-tuning job {job_id}")
        items = self._paged(self._dp.url(f"fine_tuning/jobs/{job_id}/events"), target)
        events = [DpEvent.model_validate(i).to_result() for i in items]
        return sorted(events, key=lambda e: e.created_at)

    def cancel_job(self, job_id: str) -> base.FineTuneJob:
        """``POST .../cancel``; repeating a cancel is harmless."""
        target = self._dp.target(resource=f"fine-tuning job {job_id}")
        url = self._dp.url(f"fine_tuning/jobs/{job_id}/cancel")
        response = self.http.request("POST", url, target, params=self._dp.params, guard=SAFE_TO_REPEAT)
        return parse_body(DpFineTuningJob, response, target).to_result()

    def _paged(self, url: str, target: Target) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(_MAX_PAGES):
            params = {**self._dp.params, "limit": str(_PAGE_LIMIT), **({"after": after} if after else {})}
            page = parse_body(DpList, self.http.request("GET", url, target, params=params), target)
            items.extend(page.data)
            if not page.has_more or not page.data:
                return items
            last = page.data[-1].get("id")
            if not isinstance(last, str) or last == after:
                raise PlatformError(f"{target.describe()}: paging by `after` does not advance at {last!r}")
            after = last
        raise PlatformError(f"{target.describe()}: more than {_MAX_PAGES} pages; report this to the platform")


class AsyncAzureOpenAIClient:
    """Async chat and embeddings for one account endpoint (the evaluation runner's concurrent path)."""

    def __init__(
        self,
        http: AsyncAzureHttp,
        endpoint: str,
        *,
        api_version: str = DEFAULT_DATA_PLANE_API_VERSION,
        account: str | None = None,
    ) -> None:
        self.http = http
        self._dp = _DataPlane(endpoint, api_version, account)

    async def chat(
        self, deployment: str, messages: Sequence[Mapping[str, Any]], **params: Any
    ) -> base.ChatResult:
        """Chat completion; repeated on 429/5xx."""
        target = self._dp.target(deployment=deployment)
        body = {**params, "messages": [dict(m) for m in messages]}
        url = self._dp.url(f"deployments/{deployment}/chat/completions")
        response = await self.http.request(
            "POST", url, target, params=self._dp.params, json=body, guard=SAFE_TO_REPEAT
        )
        return self._dp.chat_result(response, target)

    async def embed(self, deployment: str, inputs: Sequence[str]) -> base.EmbeddingResult:
        """Embeddings of ``inputs`` in order; repeated on 429/5xx."""
        target = self._dp.target(deployment=deployment)
        url = self._dp.url(f"deployments/{deployment}/embeddings")
        response = await self.http.request(
            "POST", url, target, params=self._dp.params, json={"input": list(inputs)}, guard=SAFE_TO_REPEAT
        )
        return self._dp.embedding_result(response, target, len(inputs))
