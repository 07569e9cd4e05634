"""Fixtures for the emulator tests: one running emulator per module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from emulator_helpers import ARM_VERSION, DATA_VERSION

from modelshift.emulator.testing import EmulatorHandle, running_emulator


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[EmulatorHandle]:
    """The default scenario, latency scaled to (almost) nothing so tests stay fast."""
    with running_emulator(latency_scale=0.0) as handle:
        yield handle


@pytest.fixture
def emu(emulator_server: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The module's emulator, reset to the scenario before each test."""
    emulator_server.reset()
    emulator_server.configure(latency_scale=0.0)
    yield emulator_server


@pytest.fixture
def arm(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    """An ARM client with the bearer token and the pinned api-version."""

    def add_version(request: httpx.Request) -> None:
        # client-level params would replace a nextLink's own query, so add api-version only when missing
        if "api-version" not in request.url.params:
            request.url = request.url.copy_add_param("api-version", ARM_VERSION)

    with httpx.Client(
        base_url=emu.arm_url,
        headers={"Authorization": f"Bearer {emu.bearer_token}"},
        event_hooks={"request": [add_version]},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def data(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    """A data-plane client with the api-key and api-version."""
    with httpx.Client(
        headers={"api-key": emu.api_key}, params={"api-version": DATA_VERSION}, timeout=10
    ) as client:
        yield client
