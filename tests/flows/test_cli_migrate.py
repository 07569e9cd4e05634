"""``modelshift migrate`` end to end in a fresh process: ephemeral Prefect inside MODELSHIFT_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelshift.migration import MigrationStore
from tests.flows.conftest import REPO, Env

pytestmark = pytest.mark.slow

# The lead wires `migrate` into modelshift.cli; until then (and independently of it) the test builds an app.
_RUNNER = """
import sys, typer
from modelshift.cli.migrate import register
app = typer.Typer(pretty_exceptions_enable=False)
@app.callback()
def main() -> None: pass
register(app)
app(sys.argv[1:], prog_name="modelshift")
"""


def _run(env: Env, *args: str, stop_after: str = "plan") -> subprocess.CompletedProcess[str]:
    child = {
        k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")
    }  # never the harness's server, never ~/.prefect
    child["MODELSHIFT_STOP_AFTER"] = stop_after
    child["HOME"] = str(env.home / "user-home")
    child["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, "migrate", *args],
        cwd=REPO,
        env=child,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_migrate_dry_run_prints_id_phase_and_plan_and_keeps_prefect_inside_the_home(env: Env) -> None:
    # the emulator's clock is 2026-01-15 but the CLI assesses "now": retired or retiring, it needs a move
    done = _run(env, "support-chat", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    assert outcome["phase"] == "dry_run_done" and outcome["created"] is True
    assert outcome["plan_text"].startswith("Migration plan for support-chat")
    assert (env.home / "prefect" / "prefect.db").exists()
    assert not (env.home / "user-home" / ".prefect").exists()
    with env.store() as store:
        record = MigrationStore(store).get(outcome["migration_id"])
        assert record.trigger == "cli" and record.dry_run

    text = _run(env, "support-chat", "--target", "gpt-4.1@2025-04-14", stop_after="prepare")
    assert text.returncode == 0, text.stderr[-3000:]
    # a real run goes on (here through the prepare stage): side-by-side deployment and a candidate bundle
    assert "prepared" in text.stdout and "Migration plan for support-chat" in text.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["support-chat", "--target", "gpt-4o"], 2, "target"),
        (["no-such-app"], 2, "no production bundle"),
    ],
)
def test_migrate_bad_input_exits_2_with_the_reason(
    env: Env, args: list[str], code: int, message: str
) -> None:
    done = _run(env, *args)
    assert done.returncode == code, done.stderr[-3000:]
    assert message in done.stderr


def test_repo_root_is_where_flows_live() -> None:
    assert (Path(REPO) / "flows" / "migrate.py").exists()
