"""The actions that go through Prefect, against a real Prefect API (a test server) and the emulator:

- a dry run from the dashboard runs the model-migration flow (assess and plan only), audited with the
  operator; the real start refers to that dry run and creates a flow run of the ``model-migration``
  deployment carrying the operator as the actor;
- a canary flow paused for approval is resumed from the dashboard with the typed input: the operator's
  answer is audited (``canary.approval_submitted`` by them, ``canary.approved`` naming them as approver)
  and the flow carries on to promote the candidate.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness

from modelshift.audit import Reason
from modelshift.bundle import load_bundle
from modelshift.dashboard import open_dashboard, running_dashboard
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.migration import MigrationPhase, MigrationStore
from modelshift.registry import register
from modelshift.rollout import RolloutPhase
from modelshift.settings import Settings, get_settings
from modelshift.store import BundleStatus, Store
from tests.dashboard.conftest import REPO, TOKEN, login
from tests.gateway.gateway_helpers import write_bundle

pytestmark = pytest.mark.slow

APP = "support-chat"
TARGET = "gpt-4o@2024-11-20"


@pytest.fixture(scope="module", autouse=True)
def prefect_backend() -> Iterator[None]:
    """A temporary Prefect API (SQLite + subprocess server) for this module."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """The emulator on its default scenario (the quota there leaves room for a side-by-side deployment)."""
    with running_emulator() as emu:
        yield emu


@pytest.fixture
def env(
    settings: Settings, emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """MODELSHIFT_* for the flows (they read the environment) matching the dashboard's settings."""
    for key, value in {
        "MODELSHIFT_HOME": str(settings.home),
        "MODELSHIFT_DATABASE_URL": settings.resolved_database_url,
        "MODELSHIFT_ARM_URL": emulator.arm_url,
        "MODELSHIFT_ARM_TOKEN": emulator.bearer_token,
        "MODELSHIFT_API_KEY": emulator.api_key,
        "MODELSHIFT_BUNDLES_DIR": str(tmp_path / "bundles-out"),
        "MODELSHIFT_RETIRE_GRACE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    with Store.open(settings.resolved_database_url) as store:
        register(store, load_bundle(REPO / "bundles" / APP / "1.0.0"), actor="test", adopt=True)
    yield settings
    get_settings.cache_clear()


def _deployment() -> None:
    """The ``model-migration/model-migration`` deployment (no worker: its runs stay scheduled)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("model-migration")
        client.create_deployment(flow_id=flow_id, name="model-migration")


def _flow_run(run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)  # type: ignore[arg-type]


def test_dry_run_first_then_the_real_start_through_the_deployment(env: Settings) -> None:
    _deployment()
    with (
        open_dashboard(env, mode="deployment") as dash,
        running_dashboard(dash) as url,
        httpx.Client(base_url=url, timeout=300) as client,
    ):
        csrf = login(client, "dana")
        page = client.get(f"/apps/{APP}")
        assert 'action="/apps/support-chat/dry-run"' in page.text
        dry = client.post(
            f"/apps/{APP}/dry-run", data={"csrf": csrf, "target": TARGET, "reason": "retiring soon"}
        )
        assert dry.status_code == 200, dry.text
        assert "Migration plan for support-chat" in dry.text
        assert 'action="/apps/support-chat/migrate"' in dry.text
        with Store.open(env.resolved_database_url) as store:
            dry_runs = [m for m in MigrationStore(store).list(APP) if m.dry_run]
            assert len(dry_runs) == 1
            record = dry_runs[0]
            assert record.phase is MigrationPhase.DRY_RUN_DONE
            assert record.actor == "dana"
            assert [m for m in MigrationStore(store).list(APP) if not m.dry_run] == []
            started = [
                e for e in store.audit_events(migration_id=record.id) if e.reason == Reason.MIGRATION_STARTED
            ]
        assert started[0].actor == "dana"
        assert f'value="{record.id}"' in dry.text
        # the start from a script: the header token, a JSON answer
        start = client.post(
            f"/apps/{APP}/migrate",
            data={"dry_run_id": record.id, "reason": "go"},
            headers={"authorization": f"Bearer {TOKEN}", "x-modelshift-operator": "dana"},
        )
        assert start.status_code == 200, start.text
        fleet = client.get("/api/fleet").json()
    body = start.json()
    assert body["mode"] == "deployment"
    assert body["dry_run_id"] == record.id
    run = _flow_run(body["flow_run_id"])
    params = run.parameters["params"]
    assert params["app"] == APP
    assert params["actor"] == "dana"
    assert params["trigger"] == "ui"
    assert params["dry_run"] is False
    assert params["target"] == TARGET
    assert "dashboard" in run.tags
    row = next(r for r in fleet["rows"] if r["app"] == APP)
    assert row["next_action"]["kind"] == "plan_ready"  # the worker has not picked the run up yet


def _candidate(tmp_path: Path) -> str:
    """support-chat 1.1.0 on gpt-4o 2024-11-20 whose canary asks a person before taking 100 %; evaluated."""
    bundle = write_bundle(tmp_path / "cand", APP, "1.1.0", "red", "support-chat-4o")
    manifest = yaml.safe_load(bundle.yaml_path.read_text())
    manifest["canary"] = {"steps": [100], "approval_required": True}
    bundle.yaml_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    bundle = load_bundle(bundle.yaml_path.parent)
    with Store.open(get_settings().resolved_database_url) as store:
        register(store, bundle, actor="test")
        store.record_evaluation(bundle.digest, "golden", True, "pass", {}, actor="test")
        store.set_status(bundle.digest, BundleStatus.EVALUATED, actor="test", reason="gate passed")
    return bundle.digest


@pytest.mark.parametrize(
    ("decision", "phase", "status", "recorded"),
    [
        ("approve", RolloutPhase.PROMOTED, BundleStatus.PRODUCTION, Reason.CANARY_APPROVED),
        pytest.param(
            "reject",
            RolloutPhase.ROLLED_BACK,
            BundleStatus.ROLLED_BACK,
            Reason.CANARY_REJECTED,
        ),
    ],
)
def test_a_paused_canary_is_answered_from_the_dashboard_with_the_typed_input(
    env: Settings,
    tmp_path: Path,
    decision: str,
    phase: RolloutPhase,
    status: BundleStatus,
    recorded: Reason,
) -> None:
    from flows.canary import canary_rollout

    candidate = _candidate(tmp_path)
    with Store.open(env.resolved_database_url) as store:
        baseline = store.get_bundle(APP).digest
    errors: list[BaseException] = []
    answers: list[httpx.Response] = []

    with open_dashboard(env, mode="in_process") as dash, running_dashboard(dash) as url:

        def approve() -> None:
            try:
                with httpx.Client(base_url=url, timeout=60) as client:
                    csrf = login(client, "dana")
                    deadline = time.monotonic() + 90
                    while time.monotonic() < deadline:
                        row = next(r for r in client.get("/api/fleet").json()["rows"] if r["app"] == APP)
                        if row["next_action"]["kind"] == "needs_approval":
                            page = client.get(f"/apps/{APP}")
                            assert 'value="approve"' in page.text and 'value="reject"' in page.text
                            answer = client.post(
                                f"/apps/{APP}/approval",
                                data={"csrf": csrf, "decision": decision, "reason": "numbers look fine"},
                            )
                            answers.append(answer)
                            if answer.status_code == 200:
                                return
                        time.sleep(0.5)
            except BaseException as exc:  # surfaced in the test thread below
                errors.append(exc)

        thread = threading.Thread(target=approve, daemon=True)
        thread.start()
        outcome = canary_rollout(
            app=APP,
            baseline_digest=baseline,
            candidate_digest=candidate,
            actor="canary-flow",
            poll_seconds=0.5,
            grace_seconds=0,
            approval_timeout_seconds=120,
        )
        thread.join(timeout=30)
    assert errors == []
    assert answers and answers[-1].status_code == 200, [a.text for a in answers]
    assert outcome.phase is phase, outcome
    with Store.open(env.resolved_database_url) as store:
        assert store.get_bundle_by_digest(candidate).status is status
        events = store.audit_events()
    submitted = [e for e in events if e.reason == Reason.CANARY_APPROVAL_SUBMITTED]
    approved = [e for e in events if e.reason == recorded]
    assert len(submitted) == 1
    assert submitted[0].actor == "dana"
    assert submitted[0].data["decision"] == decision
    assert len(approved) == 1
    assert approved[0].data["approver"] == "dana"
    assert approved[0].data["reason"] == "numbers look fine"
    assert submitted[0].seq < approved[0].seq


def test_without_a_prefect_server_the_real_start_runs_in_the_dashboards_process(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mode in_process: the migration runs in the background of the dashboard (plan-only here, so it ends
    in planned), recorded as a real migration started by the operator from the UI."""
    monkeypatch.setenv("MODELSHIFT_STOP_AFTER", "plan")
    get_settings.cache_clear()
    headers = {"authorization": f"Bearer {TOKEN}", "x-modelshift-operator": "lee"}
    with (
        open_dashboard(env, mode="in_process") as dash,
        running_dashboard(dash) as url,
        httpx.Client(base_url=url, timeout=300, headers=headers) as client,
    ):
        dry = client.post(f"/apps/{APP}/dry-run", data={"target": TARGET})
        assert dry.status_code == 200, dry.text
        assert dry.json()["phase"] == "dry_run_done"
        start = client.post(f"/apps/{APP}/migrate", data={"dry_run_id": dry.json()["migration_id"]})
        assert start.status_code == 200, start.text
        assert start.json()["mode"] == "in_process"
        deadline = time.monotonic() + 120
        real = []
        while time.monotonic() < deadline:
            with Store.open(env.resolved_database_url) as store:
                real = [m for m in MigrationStore(store).list(APP) if not m.dry_run]
            if real and real[0].phase is MigrationPhase.PLANNED:
                break
            time.sleep(0.5)
        row = next(r for r in client.get("/api/fleet").json()["rows"] if r["app"] == APP)
    assert len(real) == 1, real
    assert real[0].phase is MigrationPhase.PLANNED
    assert real[0].actor == "lee"
    assert real[0].trigger.value == "ui"
    assert real[0].target == TARGET
    assert row["next_action"]["kind"] == "plan_ready"
    assert row["next_action"]["migration_id"] == real[0].id
