"""Azure adapters: ARM (:mod:`.arm`) and the Azure OpenAI data plane (:mod:`.openai`), built from settings.

The HTTP client is always passed in, so the same code talks to Azure, to the local emulator, or to an
``httpx.MockTransport`` in unit tests::

    with httpx.Client(timeout=60) as client:
        arm = azure.arm_client(client=client)  # MODELSHIFT_ARM_URL, _ARM_API_VERSION, _ARM_TOKEN
        account = arm.accounts(subscription_id)[0]
        aoai = azure.openai_client(account.endpoint, client=client)  # MODELSHIFT_API_KEY or a bearer
        aoai.chat("chat-4o", [{"role": "user", "content": "hi"}])
"""

from __future__ import annotations

import httpx

from modelshift.clock import Clock, utcnow
from modelshift.errors import ConfigError
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.azure.auth import arm_credential, data_plane_credential
from modelshift.platforms.azure.http import AsyncAzureHttp, AzureHttp
from modelshift.platforms.azure.openai import AsyncAzureOpenAIClient, AzureOpenAIClient
from modelshift.platforms.azure.retry import RetryPolicy
from modelshift.settings import Settings, get_settings

__all__ = [
    "ArmClient",
    "AsyncAzureOpenAIClient",
    "AzureOpenAIClient",
    "RetryPolicy",
    "arm_client",
    "async_openai_client",
    "openai_client",
]


def arm_client(
    settings: Settings | None = None,
    *,
    client: httpx.Client,
    policy: RetryPolicy | None = None,
    clock: Clock = utcnow,
) -> ArmClient:
    """An :class:`ArmClient` for MODELSHIFT_ARM_URL with the pinned MODELSHIFT_ARM_API_VERSION."""
    s = settings or get_settings()
    http = AzureHttp(client, arm_credential(s, clock=clock), policy=policy, clock=clock)
    return ArmClient(http, base_url=s.arm_url, api_version=s.arm_api_version)


def _check_endpoint(endpoint: str | None) -> str:
    if not endpoint:
        raise ConfigError(
            "the account has no data-plane endpoint (ARM properties.endpoint is empty); "
            "pick an Azure OpenAI / AI Services account from `ArmClient.accounts()`"
        )
    return endpoint


def openai_client(
    endpoint: str | None,
    settings: Settings | None = None,
    *,
    client: httpx.Client,
    policy: RetryPolicy | None = None,
    clock: Clock = utcnow,
) -> AzureOpenAIClient:
    """An :class:`AzureOpenAIClient` for an account's endpoint with MODELSHIFT_DATA_PLANE_API_VERSION."""
    s = settings or get_settings()
    http = AzureHttp(client, data_plane_credential(s, clock=clock), policy=policy, clock=clock)
    return AzureOpenAIClient(http, _check_endpoint(endpoint), api_version=s.data_plane_api_version)


def async_openai_client(
    endpoint: str | None,
    settings: Settings | None = None,
    *,
    client: httpx.AsyncClient,
    policy: RetryPolicy | None = None,
    clock: Clock = utcnow,
) -> AsyncAzureOpenAIClient:
    """An :class:`AsyncAzureOpenAIClient` for an account's endpoint."""
    s = settings or get_settings()
    http = AsyncAzureHttp(client, data_plane_credential(s, clock=clock), policy=policy, clock=clock)
    return AsyncAzureOpenAIClient(http, _check_endpoint(endpoint), api_version=s.data_plane_api_version)
