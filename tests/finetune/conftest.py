"""Fine-tuning fixtures: one real emulator per module (over HTTP), adapters on it, a store on each backend.

The emulator's scenario is the default one with two changes: deployment PUTs settle fast, and fine-tuning on
gpt-4.1-mini 2025-04-14 ends ``fail`` (the scenario outcome that makes a job fail after it ran).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from modelshift.bundle import load_bundle
from modelshift.bundle.core import Bundle
from modelshift.emulator.scenario import FineTuneOutcome, Scenario
from modelshift.emulator.testing import EmulatorHandle, resolve_scenario, running_emulator
from modelshift.platforms.azure import arm_client, openai_client
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.azure.openai import AzureOpenAIClient
from modelshift.settings import Settings
from modelshift.store import Store

REPO = Path(__file__).resolve().parents[2]
CLAIMS_BUNDLE = REPO / "bundles" / "claims-assistant" / "1.0.0"
ACCOUNT = "fabrikam-aoai-swc"
#: the target whose fine-tuning job the scenario makes fail
FAILING_TARGET = ("gpt-4.1-mini", "2025-04-14")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _scenario() -> Scenario:
    scenario = resolve_scenario(None)
    profiles = dict(scenario.profiles)
    key = "@".join(FAILING_TARGET)
    failing = profiles[key].model_copy(
        update={"fine_tune": FineTuneOutcome(outcome="fail", duration_minutes=30, queue_minutes=5)}
    )
    profiles[key] = failing
    return scenario.model_copy(update={"lro_delay_seconds": 0.2, "profiles": profiles})


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[EmulatorHandle]:
    """The emulator for this module's tests."""
    with running_emulator(_scenario(), latency_scale=0.0) as handle:
        yield handle


@pytest.fixture
def emu(emulator_server: EmulatorHandle) -> EmulatorHandle:
    """The module's emulator, reset to its scenario before each test."""
    emulator_server.reset()
    return emulator_server


class RequestLog:
    """Every request an httpx client sent, as ``METHOD path`` strings (an httpx event hook fills it)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, request: httpx.Request) -> None:
        self.lines.append(f"{request.method} {request.url.path}")

    def matching(self, method: str, path_end: str) -> list[str]:
        """The logged requests with this method whose path ends with ``path_end``."""
        return [line for line in self.lines if line.startswith(method + " ") and line.endswith(path_end)]


@pytest.fixture
def request_log() -> RequestLog:
    """The log of requests sent through ``http_client``."""
    return RequestLog()


@pytest.fixture
def http_client(request_log: RequestLog) -> Iterator[httpx.Client]:
    """A real HTTP client whose requests are logged."""
    with httpx.Client(timeout=30, event_hooks={"request": [request_log]}) as client:
        yield client


def emulator_settings(emu: EmulatorHandle) -> Settings:
    """Settings that point modelshift at ``emu``."""
    return Settings(
        _env_file=None,
        arm_url=emu.arm_url,
        api_key=SecretStr(emu.api_key),
        arm_token=SecretStr(emu.bearer_token),
    )


@pytest.fixture
def aoai(emu: EmulatorHandle, http_client: httpx.Client) -> AzureOpenAIClient:
    """The Azure OpenAI data-plane adapter for the claims account."""
    return openai_client(emu.endpoint_for(ACCOUNT), emulator_settings(emu), client=http_client)


@pytest.fixture
def arm(emu: EmulatorHandle, http_client: httpx.Client) -> ArmClient:
    """The ARM adapter, polling deployment PUTs quickly."""
    client = arm_client(emulator_settings(emu), client=http_client)
    client.poll_interval = 0.1
    return client


@pytest.fixture(scope="session")
def claims_bundle() -> Bundle:
    """The fine-tuned example bundle (gpt-4o-mini 2024-07-18, suffix claims-tone, seed 42)."""
    return load_bundle(CLAIMS_BUNDLE)


def _open(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Store:
    if backend == "sqlite":
        return Store.open(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    factory: Callable[[], str] = request.getfixturevalue("postgres_url_factory")
    return Store.open(factory())


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store."""
    opened = _open(request, tmp_path, "sqlite")
    yield opened
    opened.close()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on SQLite and on PostgreSQL."""
    opened = _open(request, tmp_path, request.param)
    yield opened
    opened.close()


class ScenarioTime:
    """The run's clock and sleep, both on the emulator's scenario clock: sleeping advances scenario time,
    so a 100-minute job finishes in a few polls without real waiting."""

    def __init__(self, emu: EmulatorHandle) -> None:
        self.emu = emu
        self.slept: list[float] = []

    def now(self) -> datetime:
        """The scenario's current time."""
        return self.emu.now()

    def sleep(self, seconds: float) -> None:
        """Advance the scenario clock instead of waiting."""
        self.slept.append(seconds)
        self.emu.advance_clock(seconds)


@pytest.fixture
def scenario_time(emu: EmulatorHandle) -> ScenarioTime:
    """Clock and sleep on the scenario clock."""
    return ScenarioTime(emu)
