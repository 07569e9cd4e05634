"""OpenAICompatClient / AsyncOpenAICompatClient: request shape, parsing, retries and error mapping.

Pure unit tests over ``httpx.MockTransport``; the servers answer in the shapes vLLM, Ollama and LiteLLM use.
Nothing really sleeps: the retry policy gets a recording sleep and a fake monotonic clock.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from modelshift.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    DeploymentNotFoundError,
    PlatformError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.platforms.azure.retry import RetryPolicy
from modelshift.platforms.base import AsyncInference, Inference, RateLimitInfo, TokenUsage
from modelshift.platforms.openai_compat import (
    AsyncOpenAICompatClient,
    OpenAICompatClient,
    normalize_base_url,
)

BASE = "http://localhost:11434/v1"
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is RPO?"}]

CHAT_OK = {
    "id": "chatcmpl-417",
    "object": "chat.completion",
    "created": 1732186200,
    "model": "llama3.1:8b",
    "system_fingerprint": "fp_ollama",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The recovery point objective."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27},
}
EMBED_OK = {
    "object": "list",
    "model": "nomic-embed-text",
    "data": [
        {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
        {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
    ],
    "usage": {"prompt_tokens": 4, "total_tokens": 4},
}


class _Stream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that is streamed like a real transport's, so httpx times the response (``elapsed``)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def __iter__(self) -> Iterator[bytes]:
        yield self._content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._content


class Recorder:
    """A MockTransport handler that answers from a list of responses and keeps the requests.

    Each answer is a template: every request gets a fresh, unread copy of it (the last one repeats).
    """

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer.status_code, headers=answer.headers, stream=_Stream(answer.content))

    def body(self, i: int = -1) -> Any:
        return json.loads(self.requests[i].content)


def fast_policy(sleeps: list[float]) -> RetryPolicy:
    """Real policy, recorded sleeps, a clock that advances by the slept time."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    async def async_sleep(seconds: float) -> None:
        sleep(seconds)

    return RetryPolicy(
        max_attempts=3, total_budget=60.0, sleep=sleep, async_sleep=async_sleep, monotonic=lambda: now[0]
    )


def make(
    recorder: Recorder, api_key: str | None = "sk-local", sleeps: list[float] | None = None
) -> OpenAICompatClient:
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    return OpenAICompatClient(
        BASE + "/", api_key, client=client, policy=fast_policy(sleeps if sleeps is not None else [])
    )


def make_async(recorder: Recorder, sleeps: list[float] | None = None) -> AsyncOpenAICompatClient:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return AsyncOpenAICompatClient(
        BASE, "sk-local", client=client, policy=fast_policy(sleeps if sleeps is not None else [])
    )


# ----------------------------------------------------------------------------------- happy paths


def test_clients_satisfy_the_inference_protocols() -> None:
    recorder = Recorder(httpx.Response(200, json=CHAT_OK))
    assert isinstance(make(recorder), Inference)
    assert isinstance(make_async(recorder), AsyncInference)


def test_chat_posts_model_messages_and_params_and_parses_the_answer() -> None:
    recorder = Recorder(
        httpx.Response(
            200,
            json=CHAT_OK,
            headers={
                "x-ratelimit-remaining-requests": "59",
                "x-ratelimit-remaining-tokens": "9973",
                "x-request-id": "r-1",
            },
        )
    )

    result = make(recorder).chat("llama3.1:8b", MESSAGES, temperature=0, max_tokens=64, seed=7)

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/chat/completions")
    assert request.headers["Authorization"] == "Bearer sk-local"
    assert recorder.body() == {
        "model": "llama3.1:8b",
        "messages": MESSAGES,
        "temperature": 0,
        "max_tokens": 64,
        "seed": 7,
    }
    assert result.content == "The recovery point objective."
    assert result.finish_reason == "stop"
    assert result.model == "llama3.1:8b"
    assert result.usage == TokenUsage(prompt_tokens=21, completion_tokens=6, total_tokens=27)
    assert result.rate_limit == RateLimitInfo(remaining_requests=59, remaining_tokens=9973)
    assert result.request_id == "r-1"
    assert result.latency_ms >= 0


def test_without_a_key_no_authorization_header_is_sent() -> None:
    recorder = Recorder(httpx.Response(200, json=CHAT_OK))

    make(recorder, api_key=None).chat("llama3.1:8b", MESSAGES)

    assert "Authorization" not in recorder.requests[0].headers


def test_a_params_model_cannot_redirect_the_call() -> None:
    recorder = Recorder(httpx.Response(200, json=CHAT_OK))

    make(recorder).chat("llama3.1:8b", MESSAGES, model="other")

    assert recorder.body()["model"] == "llama3.1:8b"


def test_usage_total_is_derived_when_the_server_omits_it() -> None:
    body = {**CHAT_OK, "usage": {"prompt_tokens": 10, "completion_tokens": 5}}

    result = make(Recorder(httpx.Response(200, json=body))).chat("m", MESSAGES)

    assert result.usage.total_tokens == 15


def test_embed_returns_vectors_in_input_order() -> None:
    recorder = Recorder(httpx.Response(200, json=EMBED_OK))

    result = make(recorder).embed("nomic-embed-text", ["first", "second"])

    assert str(recorder.requests[0].url) == f"{BASE}/embeddings"
    assert recorder.body() == {"model": "nomic-embed-text", "input": ["first", "second"]}
    assert result.vectors == ((1.0, 0.0), (0.0, 1.0))
    assert result.usage.total_tokens == 4


def test_list_models() -> None:
    recorder = Recorder(
        httpx.Response(200, json={"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b"}]})
    )

    assert make(recorder).list_models() == ["a", "b"]
    assert str(recorder.requests[0].url) == f"{BASE}/models"


# -------------------------------------------------------------------------------------- base URL


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://localhost:11434/v1", "http://localhost:11434/v1"),
        ("http://localhost:8000/v1/", "http://localhost:8000/v1"),
        ("https://contoso.openai.azure.com/openai/v1/", "https://contoso.openai.azure.com/openai/v1"),
    ],
)
def test_base_url_is_normalized(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["localhost:11434/v1", "", "ftp://host/v1", "http://"])
def test_a_base_url_that_is_not_http_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="is not an http\\(s\\) URL"):
        OpenAICompatClient(bad)


# ---------------------------------------------------------------------------------------- errors

VLLM_404 = {
    "object": "error",
    "message": "The model `gpt-4o` does not exist.",
    "type": "NotFoundError",
    "param": None,
    "code": 404,
}
OLLAMA_404 = {
    "error": {
        "message": 'model "qwen2:7b" not found, try pulling it first',
        "type": "api_error",
        "param": None,
        "code": None,
    }
}
OPENAI_401 = {
    "error": {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
LITELLM_400 = {
    "error": {
        "message": "Invalid model name passed in model=gpt-5",
        "type": "invalid_request_error",
        "param": "model",
        "code": "400",
    }
}


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        pytest.param(
            httpx.Response(401, json=OPENAI_401),
            AuthError,
            "refused bearer key from the api_key argument",
            id="401",
        ),
        pytest.param(
            httpx.Response(403, json={"error": {"message": "forbidden"}}), AuthError, "(403)", id="403"
        ),
        pytest.param(
            httpx.Response(404, json=VLLM_404),
            DeploymentNotFoundError,
            "model 'llama3.1:8b' on http://localhost:11434/v1 was not found",
            id="404-vllm",
        ),
        pytest.param(
            httpx.Response(404, json=OLLAMA_404),
            DeploymentNotFoundError,
            "try pulling it first",
            id="404-ollama",
        ),
        pytest.param(
            httpx.Response(400, json=LITELLM_400), BadRequestError, "Invalid model name", id="400-litellm"
        ),
        pytest.param(
            httpx.Response(200, text="<html>proxy login</html>"), PlatformError, "is not JSON", id="not-json"
        ),
        pytest.param(
            httpx.Response(200, json={**CHAT_OK, "choices": []}),
            PlatformError,
            "returned no choices",
            id="no-choices",
        ),
    ],
)
def test_errors_are_translated_without_retrying(
    response: httpx.Response, error: type[Exception], message: str
) -> None:
    recorder = Recorder(response)

    with pytest.raises(error, match=re.escape(message)):
        make(recorder).chat("llama3.1:8b", MESSAGES)
    assert len(recorder.requests) == 1


def test_auth_error_without_a_key_says_the_server_wants_one() -> None:
    with pytest.raises(AuthError, match=r"refused no API key .* the server requires a key"):
        make(Recorder(httpx.Response(401, json=OPENAI_401)), api_key=None).chat("m", MESSAGES)


def test_throttling_waits_what_the_server_asked_then_succeeds() -> None:
    sleeps: list[float] = []
    recorder = Recorder(
        httpx.Response(429, json={"error": {"message": "rate limit"}}, headers={"retry-after-ms": "1500"}),
        httpx.Response(429, json={"error": {"message": "rate limit"}}, headers={"retry-after": "2"}),
        httpx.Response(200, json=CHAT_OK),
    )

    result = make(recorder, sleeps=sleeps).chat("llama3.1:8b", MESSAGES)

    assert result.content == "The recovery point objective."
    assert sleeps == [1.5, 2.0]
    assert len(recorder.requests) == 3


def test_throttling_that_persists_raises_with_the_wait() -> None:
    recorder = Recorder(
        httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "3"})
    )

    with pytest.raises(ThrottledError, match="gave up after 3 attempts") as info:
        make(recorder).embed("nomic-embed-text", ["x"])
    assert info.value.retry_after == 3.0
    assert len(recorder.requests) == 3


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.Response(500, json={"error": {"message": "CUDA out of memory"}}), id="500"),
        pytest.param(httpx.Response(503, text="upstream connect error"), id="503"),
        pytest.param(httpx.ConnectError("connection refused"), id="refused"),
        pytest.param(httpx.ReadTimeout("read timed out"), id="timeout"),
        pytest.param(httpx.RemoteProtocolError("peer closed connection"), id="reset"),
    ],
)
def test_transient_failures_are_retried_then_reported(failure: httpx.Response | Exception) -> None:
    sleeps: list[float] = []
    ok = Recorder(failure, httpx.Response(200, json=CHAT_OK))
    assert make(ok, sleeps=sleeps).chat("m", MESSAGES).content
    assert len(ok.requests) == 2 and len(sleeps) == 1

    stuck = Recorder(failure)
    with pytest.raises(TransientPlatformError) as info:
        make(stuck).chat("m", MESSAGES)
    assert info.value.retryable
    assert len(stuck.requests) == 3


def test_embedding_count_mismatch_is_a_platform_error() -> None:
    with pytest.raises(PlatformError, match="returned 2 embeddings for 3 inputs"):
        make(Recorder(httpx.Response(200, json=EMBED_OK))).embed("e", ["a", "b", "c"])


def test_list_models_rejects_a_non_list() -> None:
    with pytest.raises(PlatformError, match="did not return an OpenAI model list"):
        make(Recorder(httpx.Response(200, json={"data": [{"name": "x"}]}))).list_models()


# ----------------------------------------------------------------------------------------- async


def test_async_chat_and_embed() -> None:
    async def run() -> None:
        chat = Recorder(httpx.Response(200, json=CHAT_OK))
        async with make_async(chat) as client:
            result = await client.chat("llama3.1:8b", MESSAGES, temperature=0.2)
        assert result.usage.total_tokens == 27
        assert chat.body()["temperature"] == 0.2

        embed = Recorder(httpx.Response(200, json=EMBED_OK))
        vectors = (await make_async(embed).embed("e", ["a", "b"])).vectors
        assert vectors[0] == (1.0, 0.0)

        models = Recorder(httpx.Response(200, json={"data": [{"id": "e"}]}))
        assert await make_async(models).list_models() == ["e"]

    asyncio.run(run())


def test_async_errors_and_retries() -> None:
    async def run() -> None:
        sleeps: list[float] = []
        flaky = Recorder(
            httpx.Response(429, json={"error": {"message": "busy"}}, headers={"retry-after-ms": "250"}),
            httpx.Response(200, json=CHAT_OK),
        )
        assert (await make_async(flaky, sleeps).chat("m", MESSAGES)).content
        assert sleeps == [0.25]

        with pytest.raises(DeploymentNotFoundError, match="does not exist"):
            await make_async(Recorder(httpx.Response(404, json=VLLM_404))).chat("gpt-4o", MESSAGES)

    asyncio.run(run())


def test_owned_clients_are_closed() -> None:
    client = OpenAICompatClient(BASE)
    with client:
        pass
    assert client._http.client.is_closed

    async def run() -> None:
        aclient = AsyncOpenAICompatClient(BASE)
        async with aclient:
            pass
        assert aclient._http.client.is_closed

    asyncio.run(run())
