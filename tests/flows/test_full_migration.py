"""The whole model-migration DAG under the Prefect test harness: assess -> plan -> prepare -> evaluate ->
canary -> promote | roll back, with a real gateway on a loopback port and live traffic through it.

support-chat (gpt-4o 2024-05-13) migrates to gpt-4o 2024-11-20. In one test the candidate is good and is
promoted (baseline retired, its deployment deleted at once with a zero grace period); in the other the
candidate passes the offline gate but its deployment starts failing once it takes live traffic (faults
injected through the emulator's control API when the migration enters the canary), so the canary analysis
rolls it back automatically. The bundle copies carry a short canary policy (25 % -> 100 %, 5 s steps) and
accept the emulated model's latency and answer-length change (canary.analysis tolerances). Live traffic is
kept to ~20 requests/s: it shares the baseline deployment's rate limit with the evaluation.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flows.migrate import model_migration
from modelshift.bundle import Bundle, load_bundle
from modelshift.clock import utcnow
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.evaluation.dataset import load_dataset
from modelshift.gateway.server import open_gateway, running_gateway
from modelshift.gateway.traffic import Traffic
from modelshift.migration import MigrationPhase, MigrationStore
from modelshift.platforms.azure import arm_client
from modelshift.registry import register
from modelshift.settings import get_settings
from modelshift.store import BundleStatus, Store
from tests.flows.conftest import audit_reasons
from tests.flows.test_evaluate_flow import (
    ACCOUNT,
    APP,
    BASELINE_DEPLOYMENT,
    GOOD,
    REPO,
    _params,
    _quality_only,
    _scenario,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CANARY = {
    "steps": [25, 100],
    "min_requests_per_step": 15,
    "step_duration_seconds": 5,
    "max_step_extensions": 3,
    "approval_required": False,
    "on_inconclusive": "rollback",
    # the emulated successor answers at another speed and length by design; errors decide here
    "analysis": {"latency_tolerance": 1.0, "tokens_tolerance": 1.0},
}


@dataclass
class Dag:
    """This test's bundles, store, emulator, gateway URL and the baseline's digest."""

    bundles: Path
    database_url: str
    emulator: EmulatorHandle
    gateway: str
    baseline_digest: str
    questions: list[str]

    def store(self) -> Store:
        """Open this test's store (close it when done)."""
        return Store.open(self.database_url)


def live_scenario() -> dict[str, Any]:
    """The evaluate tests' scenario with room for live traffic too: ~20 requests/s of ~2k tokens each need
    more than 2M TPM next to the evaluation, so the emulator enforces 10x each deployment's SKU limits (a
    capacity above the SKU's maximum would be refused, as Azure does)."""
    data = _scenario()
    data["rate_limit_scale"] = 10.0
    return data


def live_baseline(bundles: Path) -> tuple[Bundle, list[str]]:
    """support-chat 1.0.0 copied into ``bundles`` with a quality-only gate and the short canary policy
    above, loaded; and 20 of its golden questions for live traffic."""
    shutil.copytree(REPO / "bundles" / APP, bundles / APP)
    _quality_only(bundles)
    path = bundles / APP / "1.0.0" / "bundle.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest["canary"] = CANARY
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    baseline = load_bundle(path.parent)
    dataset = baseline.manifest.evaluation.dataset
    return baseline, [item.question for item in load_dataset(baseline.root / dataset).items][:20]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """This module's emulator: the evaluate tests' roomy scenario, 1 % of the sampled latency."""
    with running_emulator(live_scenario(), latency_scale=0.01) as handle:
        yield handle


@pytest.fixture
def dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Iterator[Dag]:
    emulator.reset()
    home, bundles = tmp_path / "home", tmp_path / "bundles"
    url = f"sqlite:///{home / 'state.db'}"
    for name, value in {
        "HOME": str(home),
        "DATABASE_URL": url,
        "BUNDLES_DIR": str(bundles),
        "ARM_URL": emulator.arm_url,
        "ARM_TOKEN": emulator.bearer_token,
        "API_KEY": emulator.api_key,
        "CANARY_POLL_SECONDS": "0.3",
        "RETIRE_GRACE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(f"MODELSHIFT_{name}", value)
    monkeypatch.delenv("MODELSHIFT_STOP_AFTER", raising=False)
    get_settings.cache_clear()
    baseline, questions = live_baseline(bundles)
    with Store.open(url) as store:
        register(store, baseline, actor="test", adopt=True)
    with (
        Store.open(url) as gateway_store,
        open_gateway(get_settings(), gateway_store, clock=utcnow, ttl_s=0.05, flush_ms=50, max_rows=50) as gw,
        running_gateway(gw) as gateway,
    ):
        yield Dag(bundles, url, emulator, gateway, baseline.digest, questions)
    get_settings.cache_clear()


def _deployments(dag: Dag) -> set[str]:
    with httpx.Client(timeout=30) as client:
        return {d.name for d in arm_client(get_settings(), client=client).list(ACCOUNT)}


def _phases(dag: Dag, migration_id: str) -> list[str]:
    with dag.store() as store:
        return [
            str(e.data["to"])
            for e in store.audit_events(migration_id=migration_id)
            if e.reason in ("migration.started", "migration.finished") and "to" in e.data
        ]


def test_a_good_candidate_goes_through_every_stage_and_is_promoted(dag: Dag) -> None:
    with Traffic(dag.gateway, APP, dag.questions, limit=None, threads=2, pause_s=0.08) as traffic:
        outcome = model_migration(_params(GOOD))
    assert outcome.phase is MigrationPhase.SUCCEEDED, outcome.message
    assert outcome.candidate_digest and outcome.canary_verdict == "successful"
    mid = outcome.migration_id or ""
    with dag.store() as store:
        candidate = store.get_bundle_by_digest(outcome.candidate_digest)
        assert candidate.status is BundleStatus.PRODUCTION
        assert store.get_bundle_by_digest(dag.baseline_digest).status is BundleStatus.RETIRED
        assert store.get_router(APP).weights == {candidate.digest: 100}
        assert MigrationStore(store).get(mid).phase is MigrationPhase.SUCCEEDED
        reasons = audit_reasons(store, mid)
        assert "evaluation.recorded" in reasons and "canary.promoted" in reasons
        assert store.verify_audit().ok
    assert [p for p in _phases(dag, mid) if p in ("evaluated", "canary", "promoting", "succeeded")] == [
        "evaluated",
        "canary",
        "promoting",
        "succeeded",
    ]
    # live users were served by both bundles, never by anything else
    assert set(traffic.by_digest) <= {dag.baseline_digest, candidate.digest}
    assert traffic.by_digest[candidate.digest] > 0 and traffic.by_digest[dag.baseline_digest] > 0
    # grace 0: the retired baseline's deployment is gone, the candidate's serves
    names = _deployments(dag)
    assert BASELINE_DEPLOYMENT not in names and candidate.manifest["model"]["deployment"] in names
    # the run wrote the migration report (every stage, the gate and the canary in one file)
    assert outcome.report_path and mid in Path(outcome.report_path).read_text()


def test_a_candidate_that_fails_live_is_rolled_back_by_the_canary(dag: Dag) -> None:
    injected = threading.Event()
    stop = threading.Event()

    def break_the_candidate_once_in_canary() -> None:
        # the candidate passed offline; once the migration is in canary its deployment starts failing
        while not stop.wait(0.1):
            with dag.store() as store:
                canaries = store.list_bundles(APP, BundleStatus.CANARY)
            if canaries:
                deployment = canaries[0].manifest["model"]["deployment"]
                dag.emulator.inject_faults(ACCOUNT.name, str(deployment), rate_500=0.7)
                injected.set()
                return

    breaker = threading.Thread(target=break_the_candidate_once_in_canary, daemon=True)
    breaker.start()
    try:
        with Traffic(dag.gateway, APP, dag.questions, limit=None, threads=2, pause_s=0.08):
            outcome = model_migration(_params(GOOD))
    finally:
        stop.set()
        breaker.join(timeout=10)
    assert injected.is_set()
    assert outcome.phase is MigrationPhase.ROLLED_BACK, outcome.message
    assert outcome.canary_verdict == "failed"
    mid = outcome.migration_id or ""
    with dag.store() as store:
        assert store.get_bundle_by_digest(outcome.candidate_digest or "").status is BundleStatus.ROLLED_BACK
        assert store.get_bundle_by_digest(dag.baseline_digest).status is BundleStatus.PRODUCTION
        assert store.get_router(APP).weights == {dag.baseline_digest: 100}
        assert "canary.rolled_back" in audit_reasons(store, mid)
        assert store.verify_audit().ok
    assert _phases(dag, mid)[-3:] == ["canary", "rolling_back", "rolled_back"]
    assert BASELINE_DEPLOYMENT in _deployments(dag)
