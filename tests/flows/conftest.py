"""Flow fixtures: one Prefect test harness for the session, the emulator, and a temp modelshift home with
the example bundles registered and adopted as production."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from modelshift.bundle.loader import load_bundle
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.registry import register
from modelshift.settings import get_settings
from modelshift.store import Store

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_APPS = ("support-chat", "claims-assistant", "hr-handbook")


@pytest.fixture(scope="session", autouse=True)
def prefect_backend() -> Iterator[None]:
    """A temporary Prefect API (SQLite + subprocess server) shared by every flow test."""
    # No telemetry calls from the test server: tests never need the internet.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    """The local Azure emulator on the default scenario (clock 2026-01-15)."""
    with running_emulator() as handle:
        yield handle


@dataclass
class Env:
    """Where this test's modelshift state lives."""

    home: Path
    database_url: str
    emulator: EmulatorHandle

    def store(self) -> Store:
        """Open this test's state store (close it when done)."""
        return Store.open(self.database_url)


def register_examples(store: Store, apps: tuple[str, ...] = EXAMPLE_APPS) -> dict[str, str]:
    """Register and adopt the example bundles; returns app -> digest."""
    digests: dict[str, str] = {}
    for app in apps:
        bundle = load_bundle(REPO / "bundles" / app / "1.0.0")
        register(store, bundle, actor="test", adopt=True)
        digests[app] = bundle.digest
    return digests


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Iterator[Env]:
    """MODELSHIFT_* pointed at a temp home, a temp SQLite store and the emulator; examples adopted."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'state.db'}"
    monkeypatch.setenv("MODELSHIFT_HOME", str(home))
    monkeypatch.setenv("MODELSHIFT_DATABASE_URL", url)
    monkeypatch.setenv("MODELSHIFT_ARM_URL", emulator.arm_url)
    monkeypatch.setenv("MODELSHIFT_ARM_TOKEN", emulator.bearer_token)
    monkeypatch.setenv("MODELSHIFT_API_KEY", emulator.api_key)
    # candidate bundles are written here, never into the checkout's bundles/
    monkeypatch.setenv("MODELSHIFT_BUNDLES_DIR", str(tmp_path / "bundles"))
    # these tests are about assess and plan (and launching); each later stage has its own flow tests
    monkeypatch.setenv("MODELSHIFT_STOP_AFTER", "plan")
    get_settings.cache_clear()
    with Store.open(url) as store:
        register_examples(store)
    yield Env(home=home, database_url=url, emulator=emulator)
    get_settings.cache_clear()


def audit_reasons(store: Store, migration_id: str) -> list[str]:
    """The reason codes of one migration's audit events, in order."""
    return [e.reason for e in store.audit_events(migration_id=migration_id)]


def artifact_text(key: str) -> str:
    """The latest Prefect artifact under ``key`` (it must exist)."""
    from prefect.artifacts import Artifact

    found = Artifact.get(key)
    assert found is not None, key
    return str(found.data)
