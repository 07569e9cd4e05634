"""Inference against any OpenAI-compatible server: vLLM, Ollama, LiteLLM, or Azure OpenAI's v1 surface.

``POST {base_url}/chat/completions`` and ``{base_url}/embeddings`` with the model named in the body, e.g.
``http://localhost:11434/v1`` for Ollama, ``http://localhost:8000/v1`` for vLLM, a LiteLLM proxy's URL, or
an Azure OpenAI account's ``{endpoint}openai/v1`` (where ``model`` is the deployment name). The optional key
goes out as ``Authorization: Bearer <key>``.

HTTP, the retry policy and the status → error table are the Azure adapter's own
(:class:`~modelshift.platforms.azure.http.AzureHttp`, :class:`~modelshift.platforms.azure.retry.RetryPolicy`):
401/403 AuthError, 404 DeploymentNotFoundError (the model is not served), 400 BadRequestError, 429
ThrottledError with the server's ``retry-after``, 408/5xx/timeouts/resets TransientPlatformError. Chat and
embeddings create nothing, so they are retried like idempotent calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

import httpx

from modelshift.clock import Clock, utcnow
from modelshift.errors import ConfigError, PlatformError
from modelshift.platforms import base
from modelshift.platforms.azure.http import AsyncAzureHttp, AzureHttp, Target, parse_body
from modelshift.platforms.azure.openai import rate_limit_info
from modelshift.platforms.azure.openai_models import DpChatCompletion, DpEmbeddings
from modelshift.platforms.azure.retry import SAFE_TO_REPEAT, RetryPolicy

__all__ = ["AsyncOpenAICompatClient", "BearerKey", "OpenAICompatClient", "normalize_base_url"]

#: generation can be slow on a local GPU; the whole request may take this long
DEFAULT_TIMEOUT: Final = httpx.Timeout(120.0, connect=10.0)
_PLANE: Final = "OpenAI-compatible server"


def normalize_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash; ConfigError when it is not an http(s) URL with a host."""
    url = httpx.URL(base_url) if base_url.startswith(("http://", "https://")) else None
    if url is None or not url.host:
        raise ConfigError(
            f"OpenAI-compatible base URL {base_url!r} is not an http(s) URL; use the server's API root, "
            "e.g. http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)",
            base_url=base_url,
        )
    return base_url.rstrip("/")


class BearerKey:
    """The server's API key as ``Authorization: Bearer``, or no auth header at all when there is none."""

    def __init__(self, key: str | None = None, *, source: str = "the api_key argument") -> None:
        self._key = key or None
        self._source = source

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <key>"}``, or ``{}`` without a key."""
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    async def aheaders(self) -> dict[str, str]:
        """Same as :meth:`headers` (nothing to fetch)."""
        return self.headers()

    def describe(self) -> str:
        """Which key was tried, never the key itself."""
        return f"bearer key from {self._source}" if self._key else "no API key"

    def remedy(self) -> str:
        """Where the right key comes from."""
        if self._key:
            return (
                f"check {self._source}: it must be a key this server accepts (vLLM --api-key, a LiteLLM "
                "master or virtual key, an Azure OpenAI key)"
            )
        return f"the server requires a key; pass it through {self._source}"


def _target(base_url: str, model: str) -> Target:
    # ``resource`` rather than ``deployment``: the Azure 404 advice (az ... deployment list) does not apply
    return Target(_PLANE, resource=f"model {model!r} on {base_url}")


def _chat_body(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> dict[str, Any]:
    return {**params, "model": model, "messages": [dict(m) for m in messages]}


def _chat_result(response: httpx.Response, target: Target) -> base.ChatResult:
    body = parse_body(DpChatCompletion, response, target)
    if not body.choices:
        raise PlatformError(
            f"{target.describe()} returned no choices; the server filtered or dropped the answer",
            status_code=response.status_code,
        )
    choice = body.choices[0]
    return base.ChatResult(
        content=choice.message.content or "",
        finish_reason=choice.finish_reason,
        usage=body.usage.to_result(),
        latency_ms=response.elapsed.total_seconds() * 1000.0,
        model=body.model,
        rate_limit=rate_limit_info(response.headers),
        request_id=response.headers.get("x-request-id") or body.id,
    )


def _embedding_result(response: httpx.Response, target: Target, count: int) -> base.EmbeddingResult:
    body = parse_body(DpEmbeddings, response, target)
    ordered = sorted(body.data, key=lambda d: d.index)
    if len(ordered) != count:
        raise PlatformError(
            f"{target.describe()} returned {len(ordered)} embeddings for {count} inputs",
            status_code=response.status_code,
        )
    return base.EmbeddingResult(
        vectors=tuple(tuple(d.embedding) for d in ordered),
        usage=body.usage.to_result(),
        latency_ms=response.elapsed.total_seconds() * 1000.0,
        model=body.model,
        rate_limit=rate_limit_info(response.headers),
    )


def _model_ids(response: httpx.Response, target: Target) -> list[str]:
    try:
        data = response.json().get("data", [])
        return [str(item["id"]) for item in data]
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise PlatformError(
            f"{target.describe()}: GET /models did not return an OpenAI model list ({exc})",
            status_code=response.status_code,
        ) from exc


class OpenAICompatClient:
    """Blocking :class:`~modelshift.platforms.base.Inference` over an OpenAI-compatible HTTP API.

    ``deployment`` in :meth:`chat`/:meth:`embed` is the model name the server knows (``llama3.1:8b``,
    a vLLM ``--served-model-name``, a LiteLLM alias, an Azure deployment name).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        client: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock = utcnow,
        key_source: str = "the api_key argument",
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._owns_client = client is None
        self._http = AzureHttp(
            client if client is not None else httpx.Client(timeout=DEFAULT_TIMEOUT),
            BearerKey(api_key, source=key_source),
            policy=policy,
            clock=clock,
        )

    def chat(self, deployment: str, messages: Sequence[Mapping[str, Any]], **params: Any) -> base.ChatResult:
        """One chat completion; ``params`` (temperature, max_tokens, seed, ...) go into the body as is."""
        target = _target(self.base_url, deployment)
        response = self._http.request(
            "POST",
            f"{self.base_url}/chat/completions",
            target,
            json=_chat_body(deployment, messages, params),
            guard=SAFE_TO_REPEAT,
        )
        return _chat_result(response, target)

    def embed(self, deployment: str, inputs: Sequence[str]) -> base.EmbeddingResult:
        """Embeddings of ``inputs``, in input order."""
        target = _target(self.base_url, deployment)
        response = self._http.request(
            "POST",
            f"{self.base_url}/embeddings",
            target,
            json={"model": deployment, "input": list(inputs)},
            guard=SAFE_TO_REPEAT,
        )
        return _embedding_result(response, target, len(inputs))

    def list_models(self) -> list[str]:
        """The model ids the server serves (``GET {base_url}/models``)."""
        target = Target(_PLANE, resource=f"model list of {self.base_url}")
        response = self._http.request("GET", f"{self.base_url}/models", target)
        return _model_ids(response, target)

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._http.client.close()

    def __enter__(self) -> OpenAICompatClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncOpenAICompatClient:
    """Async :class:`~modelshift.platforms.base.AsyncInference` twin of :class:`OpenAICompatClient`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock = utcnow,
        key_source: str = "the api_key argument",
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._owns_client = client is None
        self._http = AsyncAzureHttp(
            client if client is not None else httpx.AsyncClient(timeout=DEFAULT_TIMEOUT),
            BearerKey(api_key, source=key_source),
            policy=policy,
            clock=clock,
        )

    async def chat(
        self, deployment: str, messages: Sequence[Mapping[str, Any]], **params: Any
    ) -> base.ChatResult:
        """One chat completion; ``params`` go into the body as is."""
        target = _target(self.base_url, deployment)
        response = await self._http.request(
            "POST",
            f"{self.base_url}/chat/completions",
            target,
            json=_chat_body(deployment, messages, params),
            guard=SAFE_TO_REPEAT,
        )
        return _chat_result(response, target)

    async def embed(self, deployment: str, inputs: Sequence[str]) -> base.EmbeddingResult:
        """Embeddings of ``inputs``, in input order."""
        target = _target(self.base_url, deployment)
        response = await self._http.request(
            "POST",
            f"{self.base_url}/embeddings",
            target,
            json={"model": deployment, "input": list(inputs)},
            guard=SAFE_TO_REPEAT,
        )
        return _embedding_result(response, target, len(inputs))

    async def list_models(self) -> list[str]:
        """The model ids the server serves (``GET {base_url}/models``)."""
        target = Target(_PLANE, resource=f"model list of {self.base_url}")
        response = await self._http.request("GET", f"{self.base_url}/models", target)
        return _model_ids(response, target)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._http.client.aclose()

    async def __aenter__(self) -> AsyncOpenAICompatClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
