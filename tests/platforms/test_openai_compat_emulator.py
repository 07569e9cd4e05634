"""OpenAICompatClient against the local Azure emulator's OpenAI-compatible v1 surface, over real HTTP.

The emulator serves ``{account endpoint}openai/v1/`` (chat/completions, embeddings, models) with ``model``
= deployment name, exactly as Azure OpenAI's v1 API does; the client needs nothing but that base URL and
a key, as with vLLM, Ollama or LiteLLM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from modelshift.errors import AuthError, DeploymentNotFoundError, ModelRetiredError
from modelshift.platforms.azure.retry import RetryPolicy
from modelshift.platforms.openai_compat import AsyncOpenAICompatClient, OpenAICompatClient

testing = pytest.importorskip("modelshift.emulator.testing")

pytestmark = pytest.mark.slow

CONTEXT = (
    "Contoso Backup keeps daily snapshots for 30 days. Restores of a single file take under five minutes. "
    "Snapshots are encrypted at rest with customer-managed keys."
)
QUESTION = [
    {"role": "system", "content": f"Answer from the context only.\n\nContext:\n{CONTEXT}"},
    {"role": "user", "content": "How long are daily snapshots kept?"},
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with testing.running_emulator() as handle:
        yield handle


def v1(emulator: Any, account: str = "contoso-aoai-eus") -> str:
    """The account's OpenAI-compatible base URL, as a user would paste it."""
    return str(emulator.endpoint_for(account)).rstrip("/") + "/openai/v1"


def no_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=1)


def test_chat_against_the_emulator(emulator: Any) -> None:
    with OpenAICompatClient(v1(emulator), emulator.bearer_token) as client:
        result = client.chat("faq-4o-mini", QUESTION, temperature=0, max_tokens=100)

    assert "30 days" in result.content
    assert result.finish_reason in {"stop", "length"}
    assert result.usage.prompt_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.latency_ms > 0


def test_account_api_key_as_bearer(emulator: Any) -> None:
    with OpenAICompatClient(v1(emulator), emulator.api_key) as client:
        assert client.chat("faq-4o-mini", QUESTION).content


def test_embeddings_and_model_list(emulator: Any) -> None:
    with OpenAICompatClient(v1(emulator), emulator.bearer_token) as client:
        result = client.embed("support-embed", ["daily snapshots", "customer-managed keys"])
        models = client.list_models()

    assert len(result.vectors) == 2
    assert len(result.vectors[0]) == len(result.vectors[1]) > 0
    assert result.vectors[0] != result.vectors[1]
    assert result.usage.prompt_tokens > 0
    assert {"faq-4o-mini", "support-embed"} <= set(models)


def test_async_client_against_the_emulator(emulator: Any) -> None:
    async def run() -> list[str]:
        async with AsyncOpenAICompatClient(v1(emulator), emulator.bearer_token) as client:
            results = await asyncio.gather(*(client.chat("faq-4o-mini", QUESTION) for _ in range(3)))
        return [r.content for r in results]

    answers = asyncio.run(run())
    assert len(answers) == 3 and all("30 days" in a for a in answers)


def test_wrong_key_is_an_auth_error(emulator: Any) -> None:
    with (
        OpenAICompatClient(v1(emulator), "not-a-key", policy=no_retry()) as client,
        pytest.raises(AuthError, match="refused bearer key"),
    ):
        client.chat("faq-4o-mini", QUESTION)


def test_missing_key_is_an_auth_error(emulator: Any) -> None:
    with (
        OpenAICompatClient(v1(emulator), policy=no_retry()) as client,
        pytest.raises(AuthError, match="no API key"),
    ):
        client.chat("faq-4o-mini", QUESTION)


def test_unknown_deployment_is_not_found(emulator: Any) -> None:
    with (
        OpenAICompatClient(v1(emulator), emulator.bearer_token, policy=no_retry()) as client,
        pytest.raises(DeploymentNotFoundError, match="model 'no-such-deployment'") as info,
    ):
        client.chat("no-such-deployment", QUESTION)
    assert info.value.status_code == 404


def test_retired_model_answers_410(emulator: Any) -> None:
    with (
        OpenAICompatClient(
            v1(emulator, "tailspin-ai-eus2"), emulator.bearer_token, policy=no_retry()
        ) as client,
        pytest.raises(ModelRetiredError) as info,
    ):
        client.chat("legacy-35-0613", QUESTION)
    assert info.value.status_code == 410
