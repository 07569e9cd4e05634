"""The model-migration flow under the Prefect test harness, on the emulator, with a temp store."""

from __future__ import annotations

from datetime import date

import pytest
from prefect.artifacts import Artifact

from flows.migrate import model_migration
from modelshift.errors import MigrationConflictError, NotFoundError
from modelshift.migration import MigrationPhase, MigrationStore, Trigger
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.settings import get_settings
from tests.flows.conftest import Env

pytestmark = pytest.mark.slow

# the emulator's scenario clock starts here: gpt-4o 2024-05-13 retires 2026-02-10, 26 days later
AS_OF = date(2026, 1, 15)


def _params(**overrides: object) -> MigrationParams:
    values: dict[str, object] = {
        "app": "support-chat",
        "reason": "test",
        "trigger": Trigger.CLI,
        "actor": "tester",
        "as_of": AS_OF,
    }
    values.update(overrides)
    return MigrationParams.model_validate(values)


def test_dry_run_assesses_plans_records_and_ends_dry_run_done(env: Env) -> None:
    outcome = model_migration(_params(dry_run=True))
    assert isinstance(outcome, MigrationOutcome)
    assert outcome.created and outcome.phase is MigrationPhase.DRY_RUN_DONE
    assert outcome.target == "gpt-4o@2024-11-20"
    assert outcome.plan is not None and outcome.plan["status"] in ("ready", "blocked")
    with env.store() as store:
        record = MigrationStore(store).get(outcome.migration_id or "")
        assert record.dry_run and record.phase is MigrationPhase.DRY_RUN_DONE
        assert record.plan == outcome.plan and record.flow_run_id is not None
        events = store.audit_events(migration_id=record.id)
        assert [(e.reason, e.data.get("to")) for e in events] == [
            ("migration.started", "pending"),
            ("migration.started", "assessing"),
            ("migration.finished", "dry_run_done"),
        ]
        assert events[1].data["status"] == "retiring" and events[1].data["days_left"] == 26
        assert store.verify_audit().ok
    # a dry run changes nothing, so it is never deduplicated and never blocks a real run
    again = model_migration(_params(dry_run=True))
    assert again.created and again.migration_id != outcome.migration_id
    artifact = Artifact.get("migration-plan-support-chat")
    assert artifact is not None and "gpt-4o@2024-11-20" in str(artifact.data)


def test_real_run_ends_planned_and_a_repeat_starts_nothing_new(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSHIFT_STOP_AFTER", "plan")  # plan-only operation
    get_settings.cache_clear()
    first = model_migration(_params())
    assert first.created and first.phase is MigrationPhase.PLANNED
    assert "MODELSHIFT_STOP_AFTER=plan" in first.message
    with env.store() as store:
        audit_before = len(store.audit_events())
        reasons = [e.reason for e in store.audit_events(migration_id=first.migration_id)]
        assert reasons == ["migration.started", "migration.started", "migration.planned"]
    second = model_migration(_params(trigger=Trigger.UI, reason="clicked twice"))
    assert not second.created and second.migration_id == first.migration_id
    assert second.phase is MigrationPhase.PLANNED
    with env.store() as store:
        assert len(store.audit_events()) == audit_before
        assert [m.id for m in MigrationStore(store).list("support-chat")] == [first.migration_id]


def test_another_target_while_one_is_active_fails_naming_the_active_migration(env: Env) -> None:
    first = model_migration(_params())
    state = model_migration(_params(target="gpt-4.1@2025-04-14"), return_state=True)
    assert state.is_failed()
    with pytest.raises(MigrationConflictError, match=str(first.migration_id)):
        state.result()
    with env.store() as store:
        assert len(MigrationStore(store).list("support-chat")) == 1


def test_unknown_app_fails_before_recording_anything(env: Env) -> None:
    state = model_migration(_params(app="no-such-app"), return_state=True)
    assert state.is_failed()
    with pytest.raises(NotFoundError, match="no production bundle"):
        state.result()
    with env.store() as store:
        assert MigrationStore(store).list() == []
