"""Gateway fixtures: the emulator (no latency, roomy limits), a store, and a running gateway over both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.settings import Settings
from modelshift.store import Store
from tests.gateway.gateway_helpers import MovableClock, scenario

if TYPE_CHECKING:
    from modelshift.gateway.service import Gateway


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """One emulator per test module (limits are per deployment and window, so modules do not interfere)."""
    with running_emulator(scenario(), latency_scale=0.0) as emu:
        yield emu


@pytest.fixture
def clock() -> MovableClock:
    """The gateway's and the store's clock."""
    return MovableClock()


@pytest.fixture
def store(tmp_path: Path, clock: MovableClock) -> Iterator[Store]:
    """A fresh SQLite store."""
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=clock) as opened:
        yield opened


@pytest.fixture
def settings(tmp_path: Path, emulator: EmulatorHandle) -> Settings:
    """Settings pointing ARM and the data plane at the emulator."""
    return Settings(
        home=tmp_path / "home",
        arm_url=emulator.arm_url,
        api_key=emulator.api_key,
        arm_token=emulator.bearer_token,
    )


@dataclass
class LiveGateway:
    """A gateway served by uvicorn on a loopback port."""

    url: str
    gateway: Gateway


@pytest.fixture
def live(settings: Settings, store: Store, clock: MovableClock) -> Iterator[LiveGateway]:
    """The gateway over ``store`` and the emulator; metrics flush every 50 ms or 100 rows."""
    from modelshift.gateway.server import open_gateway, running_gateway

    with (
        open_gateway(settings, store, clock=clock, ttl_s=0.05, flush_ms=50, max_rows=100) as gateway,
        running_gateway(gateway) as url,
    ):
        yield LiveGateway(url, gateway)
