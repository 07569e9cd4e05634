"""`modelshift scan` and `modelshift plan` through typer's CliRunner, on the emulator and on recordings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from modelshift.bundle import load_bundle
from modelshift.cli import scan as scan_cmds
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.registry import register
from modelshift.settings import get_settings
from modelshift.store import Store

SUB = "00000000-0000-0000-0000-000000000001"
APPS = ("support-chat", "claims-assistant", "hr-handbook")


@pytest.fixture
def app() -> typer.Typer:
    """A CLI app with only the scan/plan commands registered."""
    cli = typer.Typer()
    scan_cmds.register(cli)
    return cli


@pytest.fixture
def fleet(cli_env: Path, examples: Path) -> Path:
    """The three example apps registered and adopted as production in the test's store."""
    with Store.open(get_settings().resolved_database_url) as store:
        for name in APPS:
            bundle = load_bundle(examples / name / "1.0.0")
            register(store, bundle, actor="t", adopt=True)
    return cli_env


@pytest.fixture
def emulator(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """The default emulator scenario, with ARM settings pointing at it."""
    with running_emulator() as emu:
        monkeypatch.setenv("MODELSHIFT_ARM_URL", emu.arm_url)
        monkeypatch.setenv("MODELSHIFT_ARM_TOKEN", emu.bearer_token)
        get_settings.cache_clear()
        yield emu


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # ARM points at a closed loopback port: any live call would fail the command
    monkeypatch.setenv("MODELSHIFT_ARM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MODELSHIFT_ARM_TOKEN", "none")
    get_settings.cache_clear()


def _recordings(tmp_path: Path) -> tuple[Path, Path]:
    dep_id = f"/subscriptions/{SUB}/resourceGroups/rg-support/providers/Microsoft.CognitiveServices/accounts/"
    catalog = {
        "value": [
            {
                "kind": "OpenAI",
                "model": {
                    "format": "OpenAI",
                    "name": "gpt-4o",
                    "version": "2024-05-13",
                    "lifecycleStatus": "Deprecating",
                    "deprecation": {"inference": "2026-02-10T00:00:00Z"},
                    "replacementConfig": {"targetModelName": "gpt-4o", "targetModelVersion": "2024-11-20"},
                },
            },
            {
                "kind": "OpenAI",
                "model": {
                    "format": "OpenAI",
                    "name": "gpt-4o",
                    "version": "2024-11-20",
                    "isDefaultVersion": True,
                    "lifecycleStatus": "GenerallyAvailable",
                },
            },
        ]
    }
    deployments = {
        "value": [
            {
                "id": dep_id + "contoso-aoai-eus/deployments/support-chat-4o",
                "name": "support-chat-4o",
                "sku": {"name": "GlobalStandard", "capacity": 50},
                "properties": {
                    "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-05-13"},
                    "versionUpgradeOption": "NoAutoUpgrade",
                },
            },
            {
                "id": dep_id + "contoso-aoai-eus/deployments/shadow-it",
                "name": "shadow-it",
                "sku": {"name": "GlobalStandard", "capacity": 5},
                "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-05-13"}},
            },
        ]
    }
    cat, deps = tmp_path / "eastus-models.json", tmp_path / "deployments.json"
    cat.write_text(json.dumps(catalog), encoding="utf-8")
    deps.write_text(json.dumps(deployments), encoding="utf-8")
    return cat, deps


@pytest.mark.slow
def test_scan_live_json(app: typer.Typer, runner: CliRunner, emulator: EmulatorHandle) -> None:
    result = runner.invoke(app, ["scan", "--as-of", "2026-01-15", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    managed = {r["app"]: r for r in report["rows"] if r["managed"]}
    assert managed["support-chat"]["status"] == "retiring" and managed["support-chat"]["days_left"] == 26
    assert managed["hr-handbook"]["retirement"].startswith("2026-02-28")
    assert managed["claims-assistant"]["status"] == "ok"
    assert {r["deployment"] for r in report["rows"] if not r["managed"]} >= {"legacy-35-0613", "faq-4o-mini"}


@pytest.mark.slow
def test_scan_live_table_and_horizon(
    app: typer.Typer, runner: CliRunner, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_cmds.console, "width", 250)  # one row per line, as on a wide terminal
    result = runner.invoke(app, ["scan", "--as-of", "2026-01-15", "--horizon-days", "10"])
    assert result.exit_code == 0, result.output
    for text in ("support-chat", "deprecating", "(unmanaged)", "retired", "gpt-4o@2024-11-20"):
        assert text in result.stdout


@pytest.mark.slow
def test_plan_live(app: typer.Typer, runner: CliRunner, emulator: EmulatorHandle) -> None:
    result = runner.invoke(app, ["plan", "hr-handbook", "--as-of", "2026-01-15", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["status"] == "ready" and plan["target"]["name"] == "gpt-4o-mini"
    runs = {s["name"]: s["runs"] for s in plan["stages"]}
    assert runs["rechunk"] and runs["prompt_variant"] and not runs["fine_tune"]
    assert plan["quota"]["status"] == "ok" and plan["quota"]["usage_name"] == "OpenAI.Standard.gpt-4o-mini"
    text = runner.invoke(
        app, ["plan", "support-chat", "--target", "gpt-4.1@2025-04-14", "--as-of", "2026-01-15"]
    )
    assert text.exit_code == 0 and "gpt-4.1@2025-04-14" in text.stdout and "intermediate" in text.stdout


def test_scan_recordings_offline(
    app: typer.Typer, runner: CliRunner, fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    cat, deps = _recordings(tmp_path)
    args = [
        "scan",
        "--as-of",
        "2026-03-01",
        "--catalog",
        f"eastus={cat}",
        "--deployments",
        str(deps),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    support = next(r for r in rows if r["app"] == "support-chat")
    assert support["status"] == "retired" and support["days_left"] == -19
    assert [r["deployment"] for r in rows if not r["managed"]] == ["shadow-it"]
    # the other apps' locations have no recorded catalog: unknown, not a crash
    assert {r["status"] for r in rows if r["app"] in ("hr-handbook", "claims-assistant")} == {"unknown_model"}


def test_plan_recordings_offline(
    app: typer.Typer, runner: CliRunner, fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    cat, deps = _recordings(tmp_path)
    result = runner.invoke(
        app,
        ["plan", "support-chat", "--as-of", "2026-01-15", "--catalog", str(cat), "--deployments", str(deps)],
    )
    assert result.exit_code == 0, result.output
    assert "support-chat-gpt-4o-2024-11-20" in result.stdout and "minor_version" in result.stdout
    assert "[unknown]" in result.stdout  # quota was not recorded


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["scan", "--catalog", "{missing}"], "cannot read the recording"),
        (["scan", "--deployments", "{bad}"], "not JSON"),
        (["scan", "--as-of", "March"], "--as-of 'March'"),
        (["plan", "support-chat", "--target", "gpt-4o@"], "expected NAME@VERSION"),
        (["plan", "no-such-app", "--catalog", "{good}"], "no production bundle"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    app: typer.Typer,
    runner: CliRunner,
    fleet: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    _no_network(monkeypatch)
    bad = tmp_path / "bad.json"
    bad.write_text("{oops", encoding="utf-8")
    good, _ = _recordings(tmp_path)
    paths: dict[str, Any] = {"missing": tmp_path / "missing.json", "bad": bad, "good": good}
    result = runner.invoke(app, [a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    if "{" in args[-1] and args[0] == "scan":
        assert str(paths[args[-1].strip("{}")]) in result.stderr.replace("\n", "")
