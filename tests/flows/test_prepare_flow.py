"""The model-migration flow through the prepare stage, under the Prefect test harness, on the emulator.

Each test gets its own copy of the example bundles (candidates are written there), its own store with the
copies adopted, and ``MODELSHIFT_STOP_AFTER=prepare``. The module's emulator finishes fine-tuning jobs in
a few scenario seconds and settles deployment PUTs fast.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import flow
from pydantic import SecretStr

from flows.migrate import model_migration
from modelshift.bundle import load_bundle
from modelshift.clock import utcnow
from modelshift.emulator.scenario import FineTuneOutcome, Scenario
from modelshift.emulator.testing import EmulatorHandle, resolve_scenario, running_emulator
from modelshift.grounding.index import LocalIndexStore
from modelshift.migration import MigrationPhase, MigrationStore, Trigger
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.platforms.azure import arm_client, openai_client
from modelshift.platforms.base import AccountRef, DeploymentSpec, ModelRef
from modelshift.registry import register
from modelshift.settings import Settings, get_settings
from modelshift.store import Store
from tasks.prepare import fine_tune
from tests.flows.conftest import artifact_text, audit_reasons

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 1, 15)
APPS = ("support-chat", "claims-assistant", "hr-handbook")
SUB = "00000000-0000-0000-0000-000000000001"
ACCOUNTS = {
    "support-chat": AccountRef(subscription_id=SUB, resource_group="rg-support", name="contoso-aoai-eus"),
    "claims-assistant": AccountRef(subscription_id=SUB, resource_group="rg-claims", name="fabrikam-aoai-swc"),
    "hr-handbook": AccountRef(subscription_id=SUB, resource_group="rg-hr", name="northwind-aoai-weu"),
}
FT_TARGET = "gpt-4.1-mini@2025-04-14"
#: a fine-tunable target whose jobs this module's scenario makes fail
FAILING_FT_TARGET = "gpt-4o@2024-11-20"


def _scenario() -> Scenario:
    scenario = resolve_scenario(None)
    profiles = dict(scenario.profiles)
    quick = FineTuneOutcome(outcome="succeed", duration_minutes=0.05, queue_minutes=0)
    profiles[FT_TARGET] = profiles[FT_TARGET].model_copy(update={"fine_tune": quick})
    failing = FineTuneOutcome(outcome="fail", duration_minutes=0.05, queue_minutes=0)
    profiles[FAILING_FT_TARGET] = profiles[FAILING_FT_TARGET].model_copy(update={"fine_tune": failing})
    # 30 scenario seconds per real second: a job's 30 s "created" phase passes in one
    clock = scenario.clock.model_copy(update={"speed": 30.0})
    return scenario.model_copy(update={"lro_delay_seconds": 0.2, "profiles": profiles, "clock": clock})


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """This module's emulator (overrides the session one): fast fine-tuning and deployment PUTs."""
    with running_emulator(_scenario(), latency_scale=0.0) as handle:
        yield handle


@dataclass
class PrepEnv:
    """This test's bundles, store and emulator."""

    home: Path
    bundles: Path
    database_url: str
    emulator: EmulatorHandle

    def store(self) -> Store:
        """Open this test's store (close it when done)."""
        return Store.open(self.database_url)

    def settings(self) -> Settings:
        """Settings on the emulator."""
        emu = self.emulator
        return Settings(
            _env_file=None,
            arm_url=emu.arm_url,
            api_key=SecretStr(emu.api_key),
            arm_token=SecretStr(emu.bearer_token),
        )

    def deployments(self, app: str) -> dict[str, str]:
        """Deployment name -> model of the app's account, read from ARM."""
        with httpx.Client(timeout=30) as client:
            arm = arm_client(self.settings(), client=client)
            return {d.name: str(d.model) for d in arm.list(ACCOUNTS[app])}

    def fine_tune_jobs(self) -> list[str]:
        """Ids of every fine-tuning job of the claims account, read from the data plane."""
        with httpx.Client(timeout=30) as client:
            endpoint = self.emulator.endpoint_for(ACCOUNTS["claims-assistant"].name)
            return [j.id for j in openai_client(endpoint, self.settings(), client=client).list_jobs()]


def _prep_env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emu: EmulatorHandle,
    mutate: Callable[[Path], None] | None,
) -> PrepEnv:
    emu.reset()
    home, bundles = tmp_path / "home", tmp_path / "bundles"
    for app in APPS:
        shutil.copytree(REPO / "bundles" / app, bundles / app)
    if mutate is not None:
        mutate(bundles)
    url = f"sqlite:///{home / 'state.db'}"
    for name, value in {
        "HOME": str(home),
        "DATABASE_URL": url,
        "BUNDLES_DIR": str(bundles),
        "ARM_URL": emu.arm_url,
        "ARM_TOKEN": emu.bearer_token,
        "API_KEY": emu.api_key,
        "STOP_AFTER": "prepare",
        "FINETUNE_POLL_SECONDS": "0.5",
    }.items():
        monkeypatch.setenv(f"MODELSHIFT_{name}", value)
    get_settings.cache_clear()
    with Store.open(url) as store:
        for app in APPS:
            register(store, load_bundle(bundles / app / "1.0.0"), actor="test", adopt=True)
    return PrepEnv(home=home, bundles=bundles, database_url=url, emulator=emu)


@pytest.fixture
def prep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Iterator[PrepEnv]:
    """The example bundles, untouched."""
    yield _prep_env(tmp_path, monkeypatch, emulator, None)
    get_settings.cache_clear()


def _params(app: str, **overrides: Any) -> MigrationParams:
    values: dict[str, Any] = {
        "app": app,
        "reason": "test",
        "trigger": Trigger.CLI,
        "actor": "tester",
        "as_of": AS_OF,
    }
    values.update(overrides)
    return MigrationParams.model_validate(values)


def test_support_chat_gets_a_side_by_side_deployment_and_a_candidate(prep: PrepEnv) -> None:
    before = prep.deployments("support-chat")
    outcome = model_migration(_params("support-chat"))
    assert isinstance(outcome, MigrationOutcome)
    assert outcome.phase is MigrationPhase.PREPARED, outcome.message
    assert outcome.target == "gpt-4o@2024-11-20"
    after = prep.deployments("support-chat")
    (new,) = set(after) - set(before)
    assert after[new] == "gpt-4o@2024-11-20" and after["support-chat-4o"] == before["support-chat-4o"]
    with prep.store() as store:
        candidate = store.get_bundle("support-chat", "1.1.0")
        assert candidate.status == "candidate"
        assert store.get_bundle("support-chat", "1.0.0").status == "production"
        record = MigrationStore(store).get(outcome.migration_id or "")
        assert record.phase is MigrationPhase.PREPARED
        reasons = audit_reasons(store, record.id)
        assert reasons[-4:] == [
            "deployment.created",
            "bundle.registered",
            "candidate.composed",
            "migration.prepared",
        ]
        assert "data.validated" in reasons  # the golden dataset, before anything else
        prepared = store.audit_events(migration_id=record.id)[-1]
        assert prepared.data["candidate_digest"] == candidate.digest
        assert store.verify_audit().ok
    bundle = load_bundle(prep.bundles / "support-chat" / "1.1.0")
    assert bundle.manifest.model.deployment == new and bundle.manifest.model.version == "2024-11-20"
    assert "1.1.0" in artifact_text("candidate-support-chat")
    # the same migration again: nothing new anywhere
    again = model_migration(_params("support-chat", trigger=Trigger.UI))
    assert not again.created and again.migration_id == outcome.migration_id
    assert again.phase is MigrationPhase.PREPARED
    assert prep.deployments("support-chat") == after
    with prep.store() as store:
        assert len(store.list_bundles(app="support-chat")) == 2


def test_a_plan_blocked_by_quota_stops_at_planned_and_prepares_nothing(prep: PrepEnv) -> None:
    # another deployment takes the eastus gpt-4o GlobalStandard quota: 50 + 380 of 450 leaves 20, 50 needed
    with httpx.Client(timeout=30) as client:
        arm = arm_client(prep.settings(), client=client)
        arm.poll_interval = 0.1
        spec = DeploymentSpec(
            model=ModelRef(name="gpt-4o", version="2024-08-06"), sku_name="GlobalStandard", capacity=380
        )
        arm.create_or_update(ACCOUNTS["support-chat"], "quota-hog", spec)
    before = prep.deployments("support-chat")
    outcome = model_migration(_params("support-chat"))
    assert outcome.phase is MigrationPhase.PLANNED
    assert outcome.plan is not None and outcome.plan["status"] == "blocked"
    assert prep.deployments("support-chat") == before
    with prep.store() as store:
        assert "migration.started" not in audit_reasons(store, outcome.migration_id or "")[2:]
        assert [b.version for b in store.list_bundles(app="support-chat")] == ["1.0.0"]


def test_the_fine_tuned_app_reruns_its_fine_tune_and_gets_a_candidate(prep: PrepEnv) -> None:
    outcome = model_migration(_params("claims-assistant", target=FT_TARGET))
    assert outcome.phase is MigrationPhase.PREPARED, outcome.message
    assert len(prep.fine_tune_jobs()) == 1
    candidate = load_bundle(prep.bundles / "claims-assistant" / "1.1.0")
    ft = candidate.manifest.model.fine_tune
    assert (
        ft is not None
        and ft.fine_tuned_model
        and ft.fine_tuned_model.startswith("gpt-4.1-mini-2025-04-14.ft-")
    )
    assert ft.training_file == "../shared/train.jsonl"
    deployments = prep.deployments("claims-assistant")
    assert deployments[candidate.manifest.model.deployment] == f"{ft.fine_tuned_model}@1"
    # the plan picked the gpt-4.1 prompt variant (gpt-4.1-mini is in that family)
    baseline = load_bundle(prep.bundles / "claims-assistant" / "1.0.0")
    assert candidate.prompt_for().system == baseline.prompt_for("gpt-4.1-mini").system
    with prep.store() as store:
        reasons = audit_reasons(store, outcome.migration_id or "")
        for reason in ("finetune.submitted", "finetune.succeeded", "finetune.deployed", "candidate.composed"):
            assert reason in reasons
        assert reasons.count("data.validated") == 3  # golden, training, validation files
    assert "succeeded" in artifact_text("fine-tune-report-claims-assistant")


def test_hr_handbook_rechunks_into_a_new_generation(prep: PrepEnv) -> None:
    outcome = model_migration(_params("hr-handbook"))
    assert outcome.phase is MigrationPhase.PREPARED, outcome.message
    candidate = load_bundle(prep.bundles / "hr-handbook" / "1.1.0")
    retrieval = candidate.manifest.retrieval
    assert retrieval is not None and retrieval.tokenizer == "o200k_base" and retrieval.index_generation
    generations = LocalIndexStore(prep.home, utcnow).list_generations("hr-handbook")
    assert [g.generation for g in generations] == [retrieval.index_generation]
    assert (generations[0].chunk_tokens, generations[0].overlap_tokens) == (
        retrieval.chunk_tokens,
        retrieval.overlap_tokens,
    )
    assert retrieval.corpus == "../shared/corpus"
    with prep.store() as store:
        assert "grounding.rechunked" in audit_reasons(store, outcome.migration_id or "")
    assert retrieval.index_generation in artifact_text("rechunk-hr-handbook")


def _bad_training(bundles: Path) -> None:
    train = bundles / "claims-assistant" / "shared" / "train.jsonl"
    lines = train.read_text().splitlines()
    example = json.loads(lines[0])
    example["messages"][-1]["content"] = ""  # an empty assistant turn
    train.write_text("\n".join([*lines, json.dumps(example)]) + "\n")


def _bad_corpus(bundles: Path) -> None:
    (bundles / "hr-handbook" / "shared" / "corpus" / "blank.md").write_text("  \n\n   \n")


@pytest.mark.parametrize(
    ("app", "target", "mutate", "stage", "suite"),
    [
        ("claims-assistant", FT_TARGET, _bad_training, "fine_tune", "fine-tuning-file"),
        ("hr-handbook", None, _bad_corpus, "rechunk", "chunk-table"),
    ],
)
def test_bad_data_is_stopped_with_the_gx_report_and_the_migration_fails(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: EmulatorHandle,
    app: str,
    target: str | None,
    mutate: Callable[[Path], None],
    stage: str,
    suite: str,
) -> None:
    env = _prep_env(tmp_path, monkeypatch, emulator, mutate)
    try:
        before = env.deployments(app)
        outcome = model_migration(_params(app, target=target))
        assert outcome.phase is MigrationPhase.FAILED
        assert f"prepare failed at {stage}" in outcome.message and "failed data validation" in outcome.message
        with env.store() as store:
            record = MigrationStore(store).get(outcome.migration_id or "")
            assert record.phase is MigrationPhase.FAILED
            finished = store.audit_events(migration_id=record.id)[-1]
            assert finished.reason == "migration.finished" and finished.data["stage"] == stage
            report = finished.data["report"]
            assert report["suite"] == suite and report["success"] is False and report["failures"]
            assert [b.version for b in store.list_bundles(app=app)] == ["1.0.0"]
            assert store.get_bundle(app, "1.0.0").status == "production"
        assert env.deployments(app) == before  # baseline untouched, nothing deployed
        assert env.fine_tune_jobs() == []  # nothing uploaded or submitted
        assert LocalIndexStore(env.home, utcnow).list_generations(app) == []
        assert not (env.bundles / app / "1.1.0").exists()
        assert "FAILED" in artifact_text(f"gx-{suite}-{app}") or "Failed" in artifact_text(
            f"gx-{suite}-{app}"
        )
    finally:
        get_settings.cache_clear()


def test_a_failed_fine_tune_fails_the_migration_with_azures_error(prep: PrepEnv) -> None:
    before = prep.deployments("claims-assistant")
    outcome = model_migration(_params("claims-assistant", target=FAILING_FT_TARGET))
    assert outcome.phase is MigrationPhase.FAILED
    assert "prepare failed at fine_tune" in outcome.message and "scenario outcome: fail" in outcome.message
    assert len(prep.fine_tune_jobs()) == 1
    assert prep.deployments("claims-assistant") == before
    with prep.store() as store:
        finished = store.audit_events(migration_id=outcome.migration_id)[-1]
        assert finished.reason == "migration.finished" and finished.data["to"] == "failed"
        assert finished.data["error_type"] == "FineTuneFailedError" and finished.data["stage"] == "fine_tune"
        assert [b.version for b in store.list_bundles(app="claims-assistant")] == ["1.0.0"]
        assert store.get_bundle("claims-assistant", "1.0.0").status == "production"
    # no candidate bundle was written
    assert not (prep.bundles / "claims-assistant" / "1.1.0").exists()


@flow
def _crashed_first_run(migration_id: str, digest: str, plan: dict[str, Any]) -> None:
    """The part of a first run that got through before its worker died: the fine-tune re-run."""
    fine_tune(migration_id, digest, plan, "tester")


def test_a_crash_mid_stage_resumes_without_duplicate_jobs_or_deployments(prep: PrepEnv) -> None:
    dry = model_migration(_params("claims-assistant", target=FT_TARGET, dry_run=True))
    assert dry.plan is not None and dry.baseline_digest is not None
    before = prep.deployments("claims-assistant")
    # the first real run: recorded, planned, preparing... then the fine-tune ran and the process died
    with prep.store() as store:
        migrations = MigrationStore(store)
        started = migrations.start(
            app="claims-assistant", baseline_digest=dry.baseline_digest, target=FT_TARGET, trigger="cli",
            reason="first try", actor="tester", parameters={},
        )  # fmt: skip
        mid = started.migration.id
        migrations.advance(mid, MigrationPhase.ASSESSING, actor="tester")
        migrations.advance(mid, MigrationPhase.PLANNED, actor="tester", plan=dry.plan)
        migrations.advance(mid, MigrationPhase.PREPARING, actor="tester")
    _crashed_first_run(mid, dry.baseline_digest, dry.plan)
    jobs, deployed = prep.fine_tune_jobs(), prep.deployments("claims-assistant")
    assert len(jobs) == 1 and len(deployed) == len(before) + 1
    # the re-run finds the same migration in preparing and finishes it from there
    resumed = model_migration(_params("claims-assistant", target=FT_TARGET))
    assert resumed.migration_id == mid and not resumed.created
    assert resumed.phase is MigrationPhase.PREPARED, resumed.message
    assert prep.fine_tune_jobs() == jobs
    assert prep.deployments("claims-assistant") == deployed
    with prep.store() as store:
        reasons = audit_reasons(store, mid)
        assert reasons.count("finetune.submitted") == 1 and "finetune.recovered" not in reasons
        assert reasons.count("candidate.composed") == 1
        candidates = [b for b in store.list_bundles(app="claims-assistant") if b.status == "candidate"]
        assert len(candidates) == 1
    # and once more: prepared is not resumed, nothing changes
    again = model_migration(_params("claims-assistant", target=FT_TARGET))
    assert again.phase is MigrationPhase.PREPARED and again.migration_id == mid
    assert prep.fine_tune_jobs() == jobs and prep.deployments("claims-assistant") == deployed


def test_a_migration_left_planned_is_prepared_by_the_next_run(prep: PrepEnv) -> None:
    # e.g. planned by a release (or a run) without the prepare stage, or a crash right after planning
    dry = model_migration(_params("support-chat", dry_run=True))
    assert dry.plan is not None and dry.baseline_digest is not None
    with prep.store() as store:
        migrations = MigrationStore(store)
        started = migrations.start(
            app="support-chat", baseline_digest=dry.baseline_digest, target=dry.target, trigger="cli",
            reason="earlier", actor="tester", parameters={},
        )  # fmt: skip
        planned = started.migration.id
        migrations.advance(planned, MigrationPhase.ASSESSING, actor="tester")
        migrations.advance(planned, MigrationPhase.PLANNED, actor="tester", plan=dry.plan)
    outcome = model_migration(_params("support-chat"))
    assert outcome.migration_id == planned and not outcome.created
    assert outcome.phase is MigrationPhase.PREPARED, outcome.message
    with prep.store() as store:
        reasons = audit_reasons(store, planned)
        assert reasons[3:5] == ["migration.started", "data.validated"]  # preparing, then the golden check
        assert store.audit_events(migration_id=planned)[3].data["stage"] == "preparing"
        assert store.get_bundle("support-chat", "1.1.0").status == "candidate"
