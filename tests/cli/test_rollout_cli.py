"""``modelshift promote APP`` / ``modelshift rollback APP``: idempotent, audited, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from modelshift.audit import Reason
from modelshift.cli.rollout import register
from modelshift.emulator.testing import running_emulator
from modelshift.registry import register as register_bundle
from modelshift.settings import get_settings
from modelshift.store import BundleStatus, Store
from tests.gateway.gateway_helpers import scenario, start_canary, write_bundle

APP = "shop"


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop", hidden=True)
    def noop() -> None:
        """Keeps typer in multi-command mode, as in the real CLI."""

    return app


def _canary(home: Path, tmp_path: Path) -> tuple[str, str]:
    """Production 1.0.0 and an evaluated 2.0.0 in canary at 20 %, in the CLI's store."""
    with Store.open(get_settings().resolved_database_url) as store:
        prod = write_bundle(tmp_path, APP, "1.0.0", "red", "support-chat-4o")
        cand = write_bundle(tmp_path, APP, "2.0.0", "blue", "faq-4o-mini")
        register_bundle(store, prod, actor="test", adopt=True)
        start_canary(store, cand, 20)
        return prod.digest, cand.digest


def _store() -> Store:
    return Store.open(get_settings().resolved_database_url)


def test_rollback_routes_everything_to_production_and_is_audited_with_the_actor(
    cli_env: Path, tmp_path: Path, runner: CliRunner
) -> None:
    prod, cand = _canary(cli_env, tmp_path)
    result = runner.invoke(_cli(), ["rollback", APP, "--keep-deployment", "--reason", "pager", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["router"] == {prod: 100}
    assert body["digest"] == cand
    assert body["actor"] == "tester"
    with _store() as store:
        assert store.get_bundle_by_digest(cand).status is BundleStatus.ROLLED_BACK
        events = [e for e in store.audit_events() if e.reason == Reason.CANARY_ROLLED_BACK]
        assert len(events) == 1
        assert events[0].actor == "tester"
        assert "pager" in events[0].data["reason"]
        revision = store.get_router(APP).revision
    # again: nothing in canary -> a clear message, exit 1, nothing changed
    again = runner.invoke(_cli(), ["rollback", APP, "--keep-deployment"])
    assert again.exit_code == 1
    assert "has no bundle in canary" in again.stderr
    assert "shop@1.0.0" in again.stderr
    with _store() as store:
        assert store.get_router(APP).revision == revision


def test_promote_makes_the_canary_production_and_retires_the_baseline(
    cli_env: Path, tmp_path: Path, runner: CliRunner
) -> None:
    prod, cand = _canary(cli_env, tmp_path)
    result = runner.invoke(_cli(), ["promote", APP, "--keep-deployment"])
    assert result.exit_code == 0, result.output
    assert "promoted shop@2.0.0" in result.stdout
    with _store() as store:
        assert store.get_router(APP).weights == {cand: 100}
        assert store.get_bundle_by_digest(cand).status is BundleStatus.PRODUCTION
        assert store.get_bundle_by_digest(prod).status is BundleStatus.RETIRED
        promoted = [e for e in store.audit_events() if e.reason == Reason.CANARY_PROMOTED]
        assert [e.actor for e in promoted] == ["tester"]
    again = runner.invoke(_cli(), ["promote", APP, "--keep-deployment"])
    assert again.exit_code == 1
    assert "nothing to promote or roll back" in again.stderr


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_unknown_app_is_a_clear_error(cli_env: Path, runner: CliRunner, command: str) -> None:
    result = runner.invoke(_cli(), [command, "nope", "--keep-deployment"])
    assert result.exit_code == 1
    assert "app 'nope' has no bundle in canary (production: none)" in result.stderr


def test_rollback_deletes_the_candidate_deployment_on_arm(
    cli_env: Path, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_emulator(scenario(), latency_scale=0.0) as emu:
        monkeypatch.setenv("MODELSHIFT_ARM_URL", emu.arm_url)
        monkeypatch.setenv("MODELSHIFT_ARM_TOKEN", emu.bearer_token)
        get_settings.cache_clear()
        prod, _ = _canary(cli_env, tmp_path)
        result = runner.invoke(_cli(), ["rollback", APP, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["deleted_deployments"] == ["faq-4o-mini"]
        # promote with nothing in canary after that: exit 1 and production untouched
        assert runner.invoke(_cli(), ["promote", APP]).exit_code == 1
        with _store() as store:
            assert store.get_router(APP).weights == {prod: 100}


def test_sweep_deletes_the_retired_baseline_deployment_after_the_grace_period(
    cli_env: Path, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_emulator(scenario(), latency_scale=0.0) as emu:
        monkeypatch.setenv("MODELSHIFT_ARM_URL", emu.arm_url)
        monkeypatch.setenv("MODELSHIFT_ARM_TOKEN", emu.bearer_token)
        monkeypatch.setenv("MODELSHIFT_RETIRE_GRACE_SECONDS", "3600")
        get_settings.cache_clear()
        prod, _ = _canary(cli_env, tmp_path)
        promoted = runner.invoke(_cli(), ["promote", APP, "--json"])
        assert promoted.exit_code == 0, promoted.output
        assert json.loads(promoted.stdout)["baseline_deployment_due_for_deletion"]["digest"] == prod
        pending = runner.invoke(_cli(), ["sweep"])
        assert pending.exit_code == 0, pending.output
        assert "pending  shop@1.0.0 deployment" in pending.stdout and "grace period not" in pending.stdout
        monkeypatch.setenv("MODELSHIFT_RETIRE_GRACE_SECONDS", "0")
        get_settings.cache_clear()
        dry = runner.invoke(_cli(), ["sweep", "--dry-run", "--json"])
        assert [(i["deployment"], i["action"]) for i in json.loads(dry.stdout)["items"]] == [
            ("support-chat-4o", "due")
        ]
        swept = runner.invoke(_cli(), ["sweep", "--json"])
        assert [i["action"] for i in json.loads(swept.stdout)["items"]] == ["deleted"]
        with _store() as store:
            deleted = [e for e in store.audit_events() if e.reason == Reason.DEPLOYMENT_DELETED]
            assert [e.actor for e in deleted] == ["tester"]
        again = runner.invoke(_cli(), ["sweep", "--json"])
        assert [i["action"] for i in json.loads(again.stdout)["items"]] == ["gone"]
