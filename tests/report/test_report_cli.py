"""``modelshift report MIGRATION_ID [--out FILE] [--json]``: writes the report, prints the path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelshift.cli import app
from modelshift.settings import get_settings
from modelshift.store import Store
from tests.gateway.gateway_helpers import MovableClock
from tests.report.report_helpers import Built, Page, build


@dataclass
class Env:
    """The CLI's home and the migration built in its store."""

    home: Path
    built: Built


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """MODELSHIFT_HOME with an evaluated migration in its SQLite store; settings re-read for this test."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'state.db'}"
    monkeypatch.setenv("MODELSHIFT_HOME", str(home))
    monkeypatch.setenv("MODELSHIFT_DATABASE_URL", url)
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    get_settings.cache_clear()
    home.mkdir()
    clock = MovableClock()
    with Store.open(url, clock=clock) as store:
        built = build(store, clock, tmp_path, "evaluated")
    yield Env(home, built)
    get_settings.cache_clear()


def test_report_writes_the_html_under_home_and_prints_its_path(env: Env) -> None:
    result = CliRunner().invoke(app, ["report", env.built.migration_id])
    assert result.exit_code == 0, result.output
    expected = (env.home / "reports" / f"{env.built.migration_id}.html").resolve()
    assert result.stdout.strip() == str(expected)
    page = Page(expected.read_text(encoding="utf-8"))
    assert [s["id"] for s in page.find("section")] == [
        "summary", "assessment", "prepare", "evaluation", "canary", "audit",
    ]  # fmt: skip
    assert "gate PASS" in page.section("evaluation")
    # regenerating replaces the file (same migration, same path)
    again = CliRunner().invoke(app, ["report", env.built.migration_id])
    assert again.exit_code == 0 and again.stdout == result.stdout


def test_report_out_writes_where_asked(env: Env, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "r.html"
    result = CliRunner().invoke(app, ["report", env.built.migration_id, "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(target.resolve())
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not (env.home / "reports").exists()


def test_report_json_prints_the_view(env: Env) -> None:
    result = CliRunner().invoke(app, ["report", env.built.migration_id, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == env.built.migration_id and data["phase"] == "evaluated"
    assert data["baseline"]["digest"] == env.built.baseline
    assert (data["from_model"], data["to_model"]) == ("gpt-4o@2024-05-13", "gpt-4o-mini@2024-07-18")
    assert data["candidate"]["digest"] == env.built.candidate
    names = [m["name"] for m in data["evaluation"]["metrics"]]
    assert names == ["answer_f1", "latency_p95_ms", "refusal_rate"]
    assert len(data["evaluation"]["metrics"][0]["candidate_scores"]) == 40
    assert not (env.home / "reports").exists()


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_unknown_migration_id_exits_1_with_a_clear_message(env: Env, extra: list[str]) -> None:
    result = CliRunner().invoke(app, ["report", "no-such-migration", *extra])
    assert result.exit_code == 1
    assert result.stdout == ""
    message = " ".join(result.stderr.split())
    assert "no migration 'no-such-migration' in the state store" in message
    assert "modelshift audit show" in message
    assert not (env.home / "reports").exists()
