"""CLI test fixtures: a private state store and a copy of the example bundles per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelshift.settings import get_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """MODELSHIFT_HOME and a SQLite store in a temp dir; settings re-read for this test."""
    home = tmp_path / "home"
    monkeypatch.setenv("MODELSHIFT_HOME", str(home))
    monkeypatch.setenv("MODELSHIFT_DATABASE_URL", f"sqlite:///{home / 'state.db'}")
    monkeypatch.setenv("MODELSHIFT_ACTOR", "tester")
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A private copy of the repo's example bundles (``bundles/``), safe to modify."""
    dest = tmp_path / "bundles"
    shutil.copytree(REPO / "bundles", dest)
    return dest


@pytest.fixture
def runner() -> CliRunner:
    """A typer CliRunner (stderr kept apart from stdout)."""
    return CliRunner()
