"""Prepare fixtures: a temp copy of the example bundles, a temp SQLite store with them adopted, and an
emulator whose deployment PUTs and fine-tuning jobs settle fast."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from modelshift.bundle import Bundle, load_bundle
from modelshift.emulator.scenario import Scenario
from modelshift.emulator.testing import EmulatorHandle, resolve_scenario, running_emulator
from modelshift.platforms.azure import arm_client
from modelshift.platforms.azure.arm import ArmClient
from modelshift.registry import register
from modelshift.settings import Settings
from modelshift.store import Store

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_APPS = ("support-chat", "claims-assistant", "hr-handbook")


@dataclass
class Workspace:
    """A bundles directory and a state store of one test."""

    bundles_dir: Path
    store: Store
    baselines: dict[str, Bundle]

    def digest(self, app: str) -> str:
        """The adopted baseline's digest of ``app``."""
        return self.baselines[app].digest


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """The example bundles copied to a temp dir, registered and adopted in a temp SQLite store."""
    bundles = tmp_path / "bundles"
    for app in EXAMPLE_APPS:
        shutil.copytree(REPO / "bundles" / app, bundles / app)
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        baselines = {}
        for app in EXAMPLE_APPS:
            bundle = load_bundle(bundles / app / "1.0.0")
            register(store, bundle, actor="test", adopt=True)
            baselines[app] = bundle
        yield Workspace(bundles_dir=bundles, store=store, baselines=baselines)


# ------------------------------------------------------------------------------------ emulator


def fast_scenario() -> Scenario:
    """The default scenario with deployment PUTs that settle in a fraction of a second."""
    return resolve_scenario(None).model_copy(update={"lro_delay_seconds": 0.2})


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[EmulatorHandle]:
    """The emulator for this module's tests."""
    with running_emulator(fast_scenario(), latency_scale=0.0) as handle:
        yield handle


@pytest.fixture
def emu(emulator_server: EmulatorHandle) -> EmulatorHandle:
    """The module's emulator, reset to its scenario before each test."""
    emulator_server.reset()
    return emulator_server


def emulator_settings(emu: EmulatorHandle, **extra: object) -> Settings:
    """Settings that point modelshift at ``emu``."""
    return Settings(
        _env_file=None,
        arm_url=emu.arm_url,
        api_key=SecretStr(emu.api_key),
        arm_token=SecretStr(emu.bearer_token),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def puts() -> list[str]:
    """Paths of every PUT sent through ``http_client``."""
    return []


@pytest.fixture
def http_client(puts: list[str]) -> Iterator[httpx.Client]:
    """A real HTTP client that records the PUTs it sends."""

    def hook(request: httpx.Request) -> None:
        if request.method == "PUT":
            puts.append(request.url.path)

    with httpx.Client(timeout=30, event_hooks={"request": [hook]}) as client:
        yield client


@pytest.fixture
def arm(emu: EmulatorHandle, http_client: httpx.Client) -> ArmClient:
    """The ARM adapter on the emulator, polling deployment PUTs quickly."""
    client = arm_client(emulator_settings(emu), client=http_client)
    client.poll_interval = 0.1
    return client
