"""Prepare fixtures: a temp copy of the example bundles, a temp SQLite store with them adopted, and an
emulator whose deployment PUTs and fine-tuning jobs settle fast."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelshift.bundle import Bundle, load_bundle
from modelshift.registry import register
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
