"""``modelshift demo`` end to end on the emulator: every step succeeds with the promised outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelshift.cli import app
from modelshift.settings import get_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELSHIFT_BUNDLES_DIR", str(REPO / "bundles"))
    monkeypatch.delenv("MODELSHIFT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["demo", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["ok"] is True
    assert out["state_dir"].startswith(str(tmp_path))
    steps = {s["name"]: s for s in out["steps"]}
    assert list(steps) == ["register", "serve", "scan", "plan", "audit"]
    assert {b["status"] for b in steps["register"]["details"]["bundles"]} == {"production"}
    assert all("answer" in call for call in steps["serve"]["details"]["calls"])
    statuses = {a["app"]: a["status"] for a in steps["scan"]["details"]["assessments"]}
    assert statuses["support-chat"] == "retiring"
    plans = {p["app"]: p for p in steps["plan"]["details"]["plans"]}
    assert plans["support-chat"]["target"] == "gpt-4o@2024-11-20"
    assert "rechunk" in plans["hr-handbook"]["stages"]
    assert steps["audit"]["ok"] is True
