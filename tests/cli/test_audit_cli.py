"""``modelshift audit show|verify`` as a user runs them, including on a tampered chain."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelshift.cli import app


def _invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def populated(runner: CliRunner, cli_env: Path, examples: Path) -> Path:
    code, _, err = _invoke(runner, "bundle", "register", str(examples), "--adopt")
    assert code == 0, err
    return cli_env / "state.db"


def test_show_lists_registration_and_adoption_events(runner: CliRunner, populated: Path) -> None:
    code, out, _ = _invoke(runner, "audit", "show", "--json")
    assert code == 0
    events = json.loads(out)
    reasons = [e["reason"] for e in events]
    assert reasons.count("bundle.registered") == 4  # the example bundles
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["actor"] for e in events} == {"tester"}


def test_show_filters_by_migration(runner: CliRunner, populated: Path) -> None:
    code, out, _ = _invoke(runner, "audit", "show", "--migration", "mig-unknown", "--json")
    assert code == 0 and json.loads(out) == []


def test_verify_ok(runner: CliRunner, populated: Path) -> None:
    code, out, _ = _invoke(runner, "audit", "verify")
    assert code == 0 and "verifies" in out


@pytest.mark.parametrize(
    ("sql", "bad_seq"),
    [
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2", 2),
        ("DELETE FROM audit_events WHERE seq = 3", 3),
        ("UPDATE audit_events SET subject = 'other' WHERE seq = 1", 1),
    ],
)
def test_verify_names_first_bad_seq(runner: CliRunner, populated: Path, sql: str, bad_seq: int) -> None:
    with sqlite3.connect(populated) as conn:
        conn.execute(sql)
    code, out, err = _invoke(runner, "audit", "verify", "--json")
    assert code == 1
    result = json.loads(out)
    assert result["ok"] is False and result["first_bad_seq"] == bad_seq
    code, _, err = _invoke(runner, "audit", "verify")
    assert code == 1 and f"seq {bad_seq}" in err


def test_unreachable_store_is_a_clear_error(
    runner: CliRunner, cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelshift.settings import get_settings

    monkeypatch.setenv("MODELSHIFT_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/none")
    get_settings.cache_clear()
    code, _, err = _invoke(runner, "audit", "verify")
    assert code != 0
    assert "127.0.0.1:1" in err
    assert "secret" not in err
