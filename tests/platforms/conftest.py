"""Fixtures for the platform adapter tests: a real emulator over HTTP and adapters pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from modelshift.emulator.testing import EmulatorHandle, resolve_scenario, running_emulator
from modelshift.platforms.azure import arm_client
from modelshift.platforms.azure.arm import ArmClient
from modelshift.settings import Settings


def emulator_settings(emu: EmulatorHandle) -> Settings:
    """Settings that point modelshift at ``emu`` (what `modelshift emulator` prints as exports)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        arm_url=emu.arm_url,
        api_key=SecretStr(emu.api_key),
        arm_token=SecretStr(emu.bearer_token),
    )


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """The default scenario, fast: short deployment LRO, small latencies."""
    scenario = resolve_scenario(None).model_copy(update={"lro_delay_seconds": 0.5})
    with running_emulator(scenario, latency_scale=0.001) as emu:
        yield emu


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture
def arm(emulator: EmulatorHandle, http_client: httpx.Client) -> ArmClient:
    client = arm_client(emulator_settings(emulator), client=http_client)
    client.poll_interval = 0.2
    return client
