"""The model-migration flow through the evaluate stage, under the Prefect test harness, on the emulator.

support-chat (gpt-4o 2024-05-13) migrates to the scenario's good successor (gpt-4o 2024-11-20, quality 0.95)
and to its worse one (gpt-4o 2024-08-06, quality 0.45, slower, 8 % errors). Each test gets its own copy of
the example bundles, its own store with the copies adopted, and ``MODELSHIFT_STOP_AFTER=evaluate`` (the
canary stage has its own tests). The emulator sleeps 1 % of each sampled latency (a few ms per call) and
the deployments are roomy, so the 62-item golden set on both sides takes seconds. The bundle copies gate on
quality only (answer F1 and similarity, groundedness, retrieval hit rate, refusal rate): loopback latency
made the latency_p95_ms row flaky.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect import flow
from pydantic import SecretStr
from sqlalchemy import func, select

from flows.migrate import model_migration
from modelshift.bundle import load_bundle
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.evaluation.records import EvaluationRunRow
from modelshift.evaluation.report import GateCounts, GateReport, MetricRow, Verdict
from modelshift.evaluation.stage import EvaluationSummary
from modelshift.migration import MigrationPhase, MigrationStore, Trigger
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.platforms.azure import arm_client
from modelshift.platforms.base import AccountRef
from modelshift.registry import register
from modelshift.settings import Settings, get_settings
from modelshift.store import Store
from modelshift.store.models import EvaluationRecordRow
from tasks.evaluate import evaluate_candidate
from tests.flows.conftest import artifact_text, audit_reasons

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = REPO / "modelshift" / "emulator" / "scenarios" / "default.yaml"
AS_OF = date(2026, 1, 15)
APP = "support-chat"
SUB = "00000000-0000-0000-0000-000000000001"
ACCOUNT = AccountRef(subscription_id=SUB, resource_group="rg-support", name="contoso-aoai-eus")
BASELINE_DEPLOYMENT = "support-chat-4o"
GOOD = "gpt-4o@2024-11-20"
WORSE = "gpt-4o@2024-08-06"


def _scenario() -> dict[str, Any]:
    """The default scenario with a roomy baseline deployment (400 units; the candidate copies its capacity,
    and the eastus gpt-4o quota grows to fit both), so the golden set fits in one rate-limit window."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    account = data["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    (baseline,) = [d for d in account["deployments"] if d["name"] == BASELINE_DEPLOYMENT]
    baseline["sku"]["capacity"] = 400
    for quotas in data["usages"].values():
        for quota in quotas:
            if quota["name"] == "OpenAI.GlobalStandard.gpt-4o":
                quota["limit"] = 1000
    data["lro_delay_seconds"] = 0.2
    return data


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """This module's emulator (overrides the session one): roomy capacity, fast PUTs, 1 % of latency."""
    with running_emulator(_scenario(), latency_scale=0.01) as handle:
        yield handle


def _quality_only(bundles: Path) -> None:
    # loopback latency at 1 % of the sampled one is mostly noise: latency_p95_ms turned the good successor's
    # verdict inconclusive in a trial run, so this copy of the bundle gates on quality metrics only
    path = bundles / APP / "1.0.0" / "bundle.yaml"
    data = yaml.safe_load(path.read_text())
    del data["evaluation"]["metrics"]["latency_p95_ms"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@dataclass
class EvalEnv:
    """This test's bundles, store and emulator."""

    home: Path
    bundles: Path
    database_url: str
    emulator: EmulatorHandle
    baseline_digest: str

    def store(self) -> Store:
        """Open this test's store (close it when done)."""
        return Store.open(self.database_url)

    def deployments(self) -> dict[str, str]:
        """Deployment name -> model of support-chat's account, read from ARM."""
        emu = self.emulator
        settings = Settings(
            _env_file=None,
            arm_url=emu.arm_url,
            api_key=SecretStr(emu.api_key),
            arm_token=SecretStr(emu.bearer_token),
        )
        with httpx.Client(timeout=30) as client:
            return {d.name: str(d.model) for d in arm_client(settings, client=client).list(ACCOUNT)}

    def count(self, row: Any) -> int:
        """Rows of one table (evaluation records or cached runs)."""
        with self.store() as store, store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(row)).scalar_one())


def _eval_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> EvalEnv:
    emulator.reset()
    home, bundles = tmp_path / "home", tmp_path / "bundles"
    shutil.copytree(REPO / "bundles" / APP, bundles / APP)
    _quality_only(bundles)
    url = f"sqlite:///{home / 'state.db'}"
    for name, value in {
        "HOME": str(home),
        "DATABASE_URL": url,
        "BUNDLES_DIR": str(bundles),
        "ARM_URL": emulator.arm_url,
        "ARM_TOKEN": emulator.bearer_token,
        "API_KEY": emulator.api_key,
        "STOP_AFTER": "evaluate",
    }.items():
        monkeypatch.setenv(f"MODELSHIFT_{name}", value)
    get_settings.cache_clear()
    baseline = load_bundle(bundles / APP / "1.0.0")
    with Store.open(url) as store:
        register(store, baseline, actor="test", adopt=True)
    return EvalEnv(home, bundles, url, emulator, baseline.digest)


@pytest.fixture
def ev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Iterator[EvalEnv]:
    """support-chat 1.0.0 copied and adopted; prepare and evaluate stages on."""
    yield _eval_env(tmp_path, monkeypatch, emulator)
    get_settings.cache_clear()


def _stop_after(monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    """Real runs from here on end after ``stage`` (the settings are read again)."""
    monkeypatch.setenv("MODELSHIFT_STOP_AFTER", stage)
    get_settings.cache_clear()


def _params(target: str, **overrides: Any) -> MigrationParams:
    values: dict[str, Any] = {
        "app": APP,
        "target": target,
        "reason": "test",
        "trigger": Trigger.CLI,
        "actor": "tester",
        "as_of": AS_OF,
    }
    values.update(overrides)
    return MigrationParams.model_validate(values)


def _candidate_deployment(env: EvalEnv) -> str:
    name = load_bundle(env.bundles / APP / "1.1.0").manifest.model.deployment
    assert name is not None
    return name


def test_the_good_successor_passes_and_the_candidate_is_evaluated(ev: EvalEnv) -> None:
    outcome = model_migration(_params(GOOD))
    assert isinstance(outcome, MigrationOutcome)
    assert outcome.phase is MigrationPhase.EVALUATED, outcome.message
    assert "passed the offline gate" in outcome.message
    mid = outcome.migration_id or ""
    with ev.store() as store:
        candidate = store.get_bundle(APP, "1.1.0")
        assert candidate.status == "evaluated"
        assert store.get_bundle(APP, "1.0.0").status == "production"
        assert store.get_router(APP).weights == {ev.baseline_digest: 100}
        assert MigrationStore(store).get(mid).phase is MigrationPhase.EVALUATED
        reasons = audit_reasons(store, mid)
        assert reasons[-3:] == ["evaluation.recorded", "bundle.status_changed", "migration.started"]
        last = store.audit_events(migration_id=mid)[-1]
        assert last.data["to"] == "evaluated" and last.data["verdict"] == "pass"
        assert last.data["candidate_digest"] == candidate.digest and last.data["record_id"]
        record = store.passing_evaluation(candidate.digest)
        assert record is not None and record.migration_id == mid
        assert store.verify_audit().ok
    # the candidate's deployment stays for the canary
    assert _candidate_deployment(ev) in ev.deployments()
    assert "PASS" in artifact_text(f"evaluation-{mid}")
    metrics = artifact_text(f"evaluation-metrics-{mid}")
    assert "answer_f1" in metrics and "groundedness" in metrics
    assert float(artifact_text(f"evaluation-progress-{mid}")) == 100.0
    # the same migration again: it stays evaluated and nothing is evaluated again
    runs = ev.count(EvaluationRunRow)
    again = model_migration(_params(GOOD, trigger=Trigger.UI))
    assert again.migration_id == mid and not again.created and again.phase is MigrationPhase.EVALUATED
    assert ev.count(EvaluationRecordRow) == 1 and ev.count(EvaluationRunRow) == runs


def test_the_worse_successor_fails_on_answer_f1_and_is_rejected_and_removed(ev: EvalEnv) -> None:
    before = ev.deployments()
    outcome = model_migration(_params(WORSE))
    assert outcome.phase is MigrationPhase.FAILED, outcome.message
    assert "rejected by the offline gate" in outcome.message and "answer_f1" in outcome.message
    mid = outcome.migration_id or ""
    deployment = _candidate_deployment(ev)
    # the side-by-side deployment is gone again; the baseline's is untouched
    assert deployment not in before
    assert ev.deployments() == before
    with ev.store() as store:
        candidate = store.get_bundle(APP, "1.1.0")
        assert candidate.status == "rejected"
        assert store.get_bundle(APP, "1.0.0").status == "production"
        assert store.get_router(APP).weights == {ev.baseline_digest: 100}
        record = MigrationStore(store).get(mid)
        assert record.phase is MigrationPhase.FAILED
        events = store.audit_events(migration_id=mid)
        finished = events[-1]
        assert finished.reason == "migration.finished" and finished.data["to"] == "failed"
        assert finished.data["stage"] == "evaluate" and finished.data["verdict"] == "fail"
        assert "answer_f1" in finished.data["failing"] and "answer_f1" in finished.data["vetoes"]
        assert finished.data["deleted_deployment"] == deployment
        rejected = events[-2]
        assert rejected.reason == "bundle.status_changed" and rejected.data["to"] == "rejected"
        shown = rejected.data["evidence"]
        assert "answer_f1" in shown["failing"] and shown["deployment_deleted"] == deployment
        assert store.passing_evaluation(candidate.digest) is None
        assert store.verify_audit().ok
    assert "FAIL" in artifact_text(f"evaluation-{mid}")
    assert "answer_f1" in artifact_text(f"evaluation-metrics-{mid}")


@flow
def _crashed_evaluation(migration_id: str, baseline: str, candidate: str) -> EvaluationSummary:
    """The part of a first evaluate stage that got through before its worker died: the evaluation."""
    return evaluate_candidate(migration_id, baseline, candidate, "tester")


def test_a_rerun_after_a_recorded_evaluation_uses_the_record_and_runs_nothing(
    ev: EvalEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a first run without the evaluate stage ends prepared
    _stop_after(monkeypatch, "prepare")
    prepared = model_migration(_params(GOOD))
    assert prepared.phase is MigrationPhase.PREPARED, prepared.message
    mid = prepared.migration_id or ""
    with ev.store() as store:
        candidate = store.get_bundle(APP, "1.1.0").digest
        MigrationStore(store).advance(mid, MigrationPhase.EVALUATING, actor="tester")
    # ... then a worker evaluated (record written) and died before it moved the migration on
    first = _crashed_evaluation(mid, ev.baseline_digest, candidate)
    assert first.passed and first.record_id is not None and not first.reused
    runs = ev.count(EvaluationRunRow)
    # a second run of the candidate would now fail every item: its deployment is gone
    with httpx.Client(timeout=30) as client:
        arm = arm_client(get_settings(), client=client)
        arm.poll_interval = 0.1
        arm.delete(ACCOUNT, _candidate_deployment(ev))
    _stop_after(monkeypatch, "evaluate")
    resumed = model_migration(_params(GOOD))
    assert resumed.migration_id == mid and not resumed.created
    assert resumed.phase is MigrationPhase.EVALUATED, resumed.message
    assert ev.count(EvaluationRecordRow) == 1 and ev.count(EvaluationRunRow) == runs
    with ev.store() as store:
        assert store.get_bundle(APP, "1.1.0").status == "evaluated"
        reasons = audit_reasons(store, mid)
        assert reasons.count("evaluation.recorded") == 1
        assert store.audit_events(migration_id=mid)[-1].data["record_id"] == first.record_id
        assert store.verify_audit().ok
    assert "earlier run" in artifact_text(f"evaluation-{mid}")


def test_a_prepared_migration_is_evaluated_by_the_next_run(
    ev: EvalEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stop_after(monkeypatch, "prepare")
    prepared = model_migration(_params(GOOD))
    assert prepared.phase is MigrationPhase.PREPARED, prepared.message
    assert "MODELSHIFT_STOP_AFTER=prepare" in prepared.message
    _stop_after(monkeypatch, "evaluate")
    outcome = model_migration(_params(GOOD))
    assert outcome.migration_id == prepared.migration_id and not outcome.created
    assert outcome.phase is MigrationPhase.EVALUATED, outcome.message
    with ev.store() as store:
        reasons = audit_reasons(store, outcome.migration_id or "")
        assert reasons.count("migration.prepared") == 1 and reasons.count("evaluation.recorded") == 1


def _inconclusive() -> GateReport:
    row = MetricRow(
        name="answer_f1", candidate=0.80, baseline=0.81, diff=-0.01, ci_low=-0.06, ci_high=0.04, p_value=0.4,
        margin=0.03, greater_is_better=True, critical=True, n=62, verdict=Verdict.INCONCLUSIVE,
        reason="the CI straddles the margin",
    )  # fmt: skip
    return GateReport(
        verdict=Verdict.INCONCLUSIVE, rows=[row], counts=GateCounts(paired=62), confidence=0.95,
        min_items=30, seed=0, n_resamples=200,
    )  # fmt: skip


def test_an_inconclusive_gate_rejects_the_candidate_and_removes_its_deployment(
    ev: EvalEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the emulator's successors are clearly better or clearly worse, so the inconclusive outcome comes from
    # an evaluation record a crashed earlier run left behind (the flow takes it as it is)
    _stop_after(monkeypatch, "prepare")
    prepared = model_migration(_params(GOOD))
    assert prepared.phase is MigrationPhase.PREPARED, prepared.message
    mid = prepared.migration_id or ""
    deployment = _candidate_deployment(ev)
    with ev.store() as store:
        candidate = store.get_bundle(APP, "1.1.0").digest
        MigrationStore(store).advance(mid, MigrationPhase.EVALUATING, actor="tester")
        store.record_evaluation(
            candidate, "d" * 64, False, "inconclusive", _inconclusive().model_dump(mode="json"),
            baseline_digest=ev.baseline_digest, actor="tester", migration_id=mid,
        )  # fmt: skip
    assert deployment in ev.deployments()
    _stop_after(monkeypatch, "evaluate")
    outcome = model_migration(_params(GOOD))
    assert outcome.migration_id == mid and outcome.phase is MigrationPhase.FAILED, outcome.message
    assert "gate INCONCLUSIVE" in outcome.message
    assert deployment not in ev.deployments() and BASELINE_DEPLOYMENT in ev.deployments()
    with ev.store() as store:
        assert store.get_bundle(APP, "1.1.0").status == "rejected"
        assert store.get_router(APP).weights == {ev.baseline_digest: 100}
        finished = store.audit_events(migration_id=mid)[-1]
        assert finished.data["verdict"] == "inconclusive" and finished.data["failing"] == []
        assert finished.data["inconclusive"] == ["answer_f1"]
        assert finished.data["deleted_deployment"] == deployment
        assert store.verify_audit().ok
    assert ev.count(EvaluationRunRow) == 0  # nothing ran


def test_an_evaluation_that_cannot_run_fails_the_migration_and_keeps_the_candidate(
    ev: EvalEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stop_after(monkeypatch, "prepare")
    prepared = model_migration(_params(GOOD))
    assert prepared.phase is MigrationPhase.PREPARED, prepared.message
    # someone removed the candidate's deployment before it was evaluated
    with httpx.Client(timeout=30) as client:
        arm = arm_client(get_settings(), client=client)
        arm.poll_interval = 0.1
        arm.delete(ACCOUNT, _candidate_deployment(ev))
    _stop_after(monkeypatch, "evaluate")
    outcome = model_migration(_params(GOOD))
    assert outcome.migration_id == prepared.migration_id
    assert outcome.phase is MigrationPhase.FAILED
    assert "evaluate failed" in outcome.message and "does not exist" in outcome.message
    with ev.store() as store:
        # nothing was judged: the candidate keeps its status, no record, baseline untouched
        assert store.get_bundle(APP, "1.1.0").status == "candidate"
        assert store.get_bundle(APP, "1.0.0").status == "production"
        finished = store.audit_events(migration_id=outcome.migration_id)[-1]
        assert finished.reason == "migration.finished" and finished.data["stage"] == "evaluate"
        assert finished.data["error_type"] == "ConfigError"
        assert store.verify_audit().ok
    assert ev.count(EvaluationRecordRow) == 0
