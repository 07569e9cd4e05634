"""Crash safety of the whole DAG: ``modelshift migrate`` in its own process, SIGKILLed at each stage boundary
in turn, then run again until it finishes.

One migration of support-chat (gpt-4o 2024-05-13 -> 2024-11-20) with a real gateway and live traffic:

1. killed once the candidate is prepared (composed, registered, deployed side by side);
2. killed once the candidate is evaluated (the evaluation record written);
3. killed mid-canary, once the candidate takes live traffic: within the canary lease the gateway serves
   every request from the production bundle again, and the store records why (``router.lease_expired``);
4. run once more: it resumes (no second candidate deployment, no second evaluation, the canary restarted from
   its first step) and reaches the same outcome as an uninterrupted run — promoted — with the audit chain
   intact (``modelshift audit verify``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelshift.clock import utcnow
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.evaluation.records import EvaluationRunRow
from modelshift.gateway.server import open_gateway, running_gateway
from modelshift.gateway.traffic import Traffic
from modelshift.migration import MigrationPhase, MigrationStore
from modelshift.platforms.azure import arm_client
from modelshift.registry import register
from modelshift.settings import Settings
from modelshift.store import BundleStatus, Store
from modelshift.store.models import EvaluationRecordRow
from tests.flows.test_evaluate_flow import (
    ACCOUNT,
    APP,
    BASELINE_DEPLOYMENT,
    GOOD,
    REPO,
)
from tests.flows.test_full_migration import live_baseline, live_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

LEASE_SECONDS = 10


@dataclass
class Rig:
    """The child's environment, the store, the emulator and the gateway the test process runs."""

    env: dict[str, str]
    database_url: str
    emulator: EmulatorHandle
    gateway: str
    baseline_digest: str
    questions: list[str]
    settings: Settings

    def store(self) -> Store:
        """Open the shared store (close it when done)."""
        return Store.open(self.database_url)

    def migration(self) -> tuple[MigrationPhase | None, str | None]:
        """The app's one migration: its phase and id (None, None before the child opens it)."""
        with self.store() as store:
            records = MigrationStore(store).list(APP)
        return (records[-1].phase, records[-1].id) if records else (None, None)

    def count(self, row: type[Any]) -> int:
        """Rows of one table."""
        with self.store() as store, store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(row)).scalar_one())

    def deployments(self) -> set[str]:
        """Deployment names of support-chat's account, read through ARM."""
        with httpx.Client(timeout=30) as client:
            return {d.name for d in arm_client(self.settings, client=client).list(ACCOUNT)}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    home, bundles = tmp_path / "home", tmp_path / "bundles"
    baseline, questions = live_baseline(bundles)
    url = f"sqlite:///{home / 'state.db'}"
    with running_emulator(live_scenario(), latency_scale=0.01) as emu:
        settings = Settings(
            _env_file=None,
            home=home,
            database_url=url,
            bundles_dir=bundles,
            arm_url=emu.arm_url,
            arm_token=emu.bearer_token,
            api_key=emu.api_key,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MODELSHIFT_"))}
        env |= {
            "HOME": str(home / "user-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MODELSHIFT_HOME": str(home),
            "MODELSHIFT_DATABASE_URL": url,
            "MODELSHIFT_BUNDLES_DIR": str(bundles),
            "MODELSHIFT_ARM_URL": emu.arm_url,
            "MODELSHIFT_ARM_TOKEN": emu.bearer_token,
            "MODELSHIFT_API_KEY": emu.api_key,
            "MODELSHIFT_CANARY_POLL_SECONDS": "0.3",
            "MODELSHIFT_CANARY_LEASE_SECONDS": str(LEASE_SECONDS),
            "MODELSHIFT_RETIRE_GRACE_SECONDS": "0",
            "MODELSHIFT_ACTOR": "crash-test",
        }
        with Store.open(url) as store:
            register(store, baseline, actor="test", adopt=True)
        with (
            Store.open(url) as gateway_store,
            open_gateway(settings, gateway_store, clock=utcnow, ttl_s=0.05, flush_ms=50, max_rows=50) as gw,
            running_gateway(gw) as gateway,
        ):
            yield Rig(env, url, emu, gateway, baseline.digest, questions, settings)


def _migrate(rig: Rig) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from modelshift.cli import main; main()",
            "migrate",
            APP,
            "--target",
            GOOD,
            "--json",
        ],
        cwd=REPO,
        env=rig.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(rig: Rig, child: subprocess.Popen[str], reached: Callable[[], bool], what: str) -> None:
    """SIGKILL the child as soon as ``reached()`` holds; fail if the child ends first."""
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        if reached():
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            return
        if child.poll() is not None:
            out, err = child.communicate()
            pytest.fail(
                f"the migration ended ({child.returncode}) before {what}: {out[-2000:]} {err[-3000:]}"
            )
        time.sleep(0.1)
    child.kill()
    pytest.fail(f"the migration never reached {what}")


def _phase_is(rig: Rig, *phases: MigrationPhase) -> Callable[[], bool]:
    return lambda: rig.migration()[0] in phases


def _candidate_has_traffic(rig: Rig) -> Callable[[], bool]:
    def check() -> bool:
        with rig.store() as store:
            weights = store.get_router(APP).weights
        return any(d != rig.baseline_digest and w > 0 for d, w in weights.items())

    return check


def _served_by(rig: Rig, requests: int = 20) -> set[str]:
    with httpx.Client(base_url=rig.gateway, timeout=30) as client:
        return {
            client.post(f"/apps/{APP}/chat", json={"question": q, "session_id": f"probe-{i}"}).headers[
                "x-modelshift-digest"
            ]
            for i, q in enumerate((rig.questions * 5)[:requests])
        }


def test_killed_at_each_stage_boundary_a_migration_resumes_to_the_same_outcome(rig: Rig) -> None:
    with Traffic(rig.gateway, APP, rig.questions, limit=None, threads=2, pause_s=0.08):
        # 1. prepared: the candidate exists and is deployed side by side
        _kill_when(
            rig, _migrate(rig), _phase_is(rig, MigrationPhase.PREPARED, MigrationPhase.EVALUATING), "prepared"
        )
        _, migration_id = rig.migration()
        with rig.store() as store:
            (candidate,) = [b for b in store.list_bundles(APP) if b.digest != rig.baseline_digest]
        candidate_deployment = str(candidate.manifest["model"]["deployment"])
        assert candidate_deployment in rig.deployments()
        deployments_after_prepare = rig.deployments()

        # 2. evaluated: the evaluation record is written; the re-run must not evaluate again
        _kill_when(
            rig, _migrate(rig), _phase_is(rig, MigrationPhase.EVALUATED, MigrationPhase.CANARY), "evaluated"
        )
        assert rig.migration()[1] == migration_id
        records, runs = rig.count(EvaluationRecordRow), rig.count(EvaluationRunRow)
        assert records == 1

        # 3. mid-canary: the candidate serves live users when the process dies
        _kill_when(rig, _migrate(rig), _candidate_has_traffic(rig), "the canary's first step")
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < LEASE_SECONDS + 15:
            if _served_by(rig) == {rig.baseline_digest}:
                break
            time.sleep(0.5)
        assert _served_by(rig, 40) == {rig.baseline_digest}, "traffic did not return to production"
        assert time.monotonic() - killed_at < LEASE_SECONDS + 15
        with rig.store() as store:
            assert "router.lease_expired" in {e.reason for e in store.audit_events()}

        # 4. the last run resumes and finishes
        child = _migrate(rig)
        out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-3000:]
    outcome = json.loads(out)
    assert outcome["migration_id"] == migration_id and outcome["phase"] == "succeeded", outcome
    assert outcome["candidate_digest"] == candidate.digest
    # no duplicate remote work: one candidate deployment (the baseline's deleted at promotion), one evaluation
    assert rig.deployments() == (deployments_after_prepare - {BASELINE_DEPLOYMENT})
    assert (rig.count(EvaluationRecordRow), rig.count(EvaluationRunRow)) == (records, runs)
    with rig.store() as store:
        assert store.get_bundle_by_digest(candidate.digest).status is BundleStatus.PRODUCTION
        assert store.get_router(APP).weights == {candidate.digest: 100}
        assert MigrationStore(store).get(migration_id or "").phase is MigrationPhase.SUCCEEDED
    verify = subprocess.run(
        [sys.executable, "-c", "from modelshift.cli import main; main()", "audit", "verify"],
        cwd=REPO,
        env=rig.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
