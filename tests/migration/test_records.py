"""Migration records on SQLite and PostgreSQL: idempotency, one active migration per app (enforced by the
database itself), audited phase changes, and illegal moves that change nothing."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from modelshift.errors import IllegalTransitionError, MigrationConflictError, NotFoundError, StateError
from modelshift.migration import MigrationPhase, MigrationRow, MigrationStore, Trigger, idempotency_key
from modelshift.store import Store

APP = "support-chat"
BASE = "sha256:" + "a" * 64
TARGET = "gpt-4o@2024-11-20"


def _start(ms: MigrationStore, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "app": APP,
        "baseline_digest": BASE,
        "target": TARGET,
        "trigger": Trigger.SCHEDULE,
        "reason": "gpt-4o 2024-05-13 retires 2026-02-10",
        "actor": "retirement-scan",
        "parameters": {"app": APP, "target": TARGET},
    }
    args.update(overrides)
    return ms.start(**args)


def _raw_insert(store: Store, **overrides: Any) -> None:
    now = datetime(2026, 1, 15, tzinfo=UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "app": APP,
        "baseline_digest": BASE,
        "target": TARGET,
        "idempotency_key": idempotency_key(APP, BASE, TARGET),
        "phase": "pending",
        "dry_run": False,
        "trigger": "cli",
        "reason": "raw",
        "actor": "test",
        "parameters": {},
        "plan": None,
        "created_at": now,
        "updated_at": now,
        "flow_run_id": None,
    }
    row.update(overrides)
    with store.engine.begin() as conn:
        conn.execute(insert(MigrationRow.__table__).values(**row))


def test_start_creates_a_pending_record_and_audits_it(store: Store, migrations: MigrationStore) -> None:
    result = _start(migrations, flow_run_id="11111111-2222-3333-4444-555555555555")
    m = result.migration
    assert result.created
    assert (m.app, m.phase, m.target, m.trigger, m.dry_run) == (APP, "pending", TARGET, "schedule", False)
    assert m.idempotency_key == idempotency_key(APP, BASE, TARGET)
    assert migrations.get(m.id) == m
    events = store.audit_events(migration_id=m.id)
    assert [e.reason for e in events] == ["migration.started"]
    assert events[0].data["idempotency_key"] == m.idempotency_key
    assert events[0].subject == f"migration:{APP}"
    assert store.verify_audit().ok


def test_the_same_key_starts_nothing_new(store: Store, migrations: MigrationStore) -> None:
    first = _start(migrations)
    again = _start(migrations, trigger=Trigger.NOTICE, reason="notice repeated")
    assert not again.created
    assert again.migration.id == first.migration.id
    assert len(migrations.list(APP)) == 1
    assert len(store.audit_events()) == 1  # the repeat wrote nothing


def test_a_succeeded_migration_keeps_its_key(migrations: MigrationStore) -> None:
    first = _start(migrations).migration
    for phase in ("assessing", "planned", "preparing", "evaluating", "canary", "promoting", "succeeded"):
        migrations.advance(first.id, phase, actor="flow")
    again = _start(migrations)
    assert not again.created and again.migration.phase is MigrationPhase.SUCCEEDED


@pytest.mark.parametrize("end", ["failed", "cancelled"])
def test_after_a_failed_or_cancelled_run_the_same_key_may_start_again(
    migrations: MigrationStore, end: str
) -> None:
    first = _start(migrations).migration
    migrations.advance(first.id, end, actor="flow")
    assert migrations.attempts(first.idempotency_key) == 1
    again = _start(migrations)
    assert again.created and again.migration.id != first.id
    assert migrations.holding_key(first.idempotency_key) == again.migration


def test_a_second_active_migration_for_the_app_is_refused_naming_the_first(
    store: Store, migrations: MigrationStore
) -> None:
    first = _start(migrations).migration
    migrations.advance(first.id, "assessing", actor="flow")
    migrations.advance(first.id, "planned", actor="flow")  # planned is still in flight
    before = len(store.audit_events())
    with pytest.raises(MigrationConflictError) as err:
        _start(migrations, target="gpt-4.1@2025-04-14")
    assert first.id in str(err.value) and "planned" in str(err.value)
    assert len(store.audit_events()) == before
    assert migrations.active_for(APP) == migrations.get(first.id)


def test_other_apps_and_dry_runs_do_not_conflict(migrations: MigrationStore) -> None:
    _start(migrations)
    other = _start(migrations, app="hr-handbook")
    dry = _start(migrations, target="gpt-4.1@2025-04-14", dry_run=True)
    dry_again = _start(migrations, target="gpt-4.1@2025-04-14", dry_run=True)
    assert other.created and dry.created and dry_again.created  # dry runs change nothing: never deduped
    assert migrations.active_for(APP) is not None and migrations.active_for(APP).dry_run is False  # type: ignore[union-attr]


def test_the_database_refuses_a_second_active_row_even_without_the_repository(store: Store) -> None:
    _raw_insert(store)
    with pytest.raises(IntegrityError):
        _raw_insert(store, idempotency_key="b" * 64, target="other@1")  # same app, another key, active
    with pytest.raises(IntegrityError):
        _raw_insert(store, app="other-app")  # same key held by an active row
    _raw_insert(store, app="other-app", idempotency_key="c" * 64)  # different app and key: fine
    _raw_insert(store, idempotency_key="d" * 64, phase="failed")  # finished rows are not active
    _raw_insert(store, idempotency_key="e" * 64, dry_run=True)  # dry runs are not counted


def test_the_database_refuses_a_repeated_key_of_a_succeeded_row(store: Store) -> None:
    _raw_insert(store, phase="succeeded")
    with pytest.raises(IntegrityError):
        _raw_insert(store, phase="pending")
    _raw_insert(store, phase="failed")  # a failed try with the same key may coexist


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "planned"),  # pending -> planned skips assessing
        (["assessing", "dry_run_done"], "failed"),  # terminal
        (["cancelled"], "pending"),
        (["assessing", "planned", "preparing", "evaluating", "canary"], "cancelled"),
    ],
)
def test_illegal_move_raises_and_changes_nothing(
    store: Store, migrations: MigrationStore, path: list[str], illegal: str
) -> None:
    m = _start(migrations).migration
    for phase in path:
        m = migrations.advance(m.id, phase, actor="flow")
    before = (migrations.get(m.id), len(store.audit_events()))
    with pytest.raises(IllegalTransitionError, match=f"to {illegal}"):
        migrations.advance(m.id, illegal, actor="flow", plan={"x": 1})
    assert (migrations.get(m.id), len(store.audit_events())) == before


def test_each_phase_change_writes_its_audit_event_with_plan_and_evidence(
    store: Store, migrations: MigrationStore
) -> None:
    m = _start(migrations).migration
    migrations.advance(m.id, "assessing", actor="flow", evidence={"status": "retiring", "days_left": 26})
    planned = migrations.advance(
        m.id, "planned", actor="flow", plan={"target": TARGET, "stages": ["rechunk"]}
    )
    assert planned.plan == {"target": TARGET, "stages": ["rechunk"]}
    assert planned.updated_at > m.updated_at
    done = migrations.advance(m.id, "cancelled", actor="alice", evidence={"why": "superseded"})
    events = store.audit_events(migration_id=m.id)
    assert [e.reason for e in events] == [
        "migration.started",
        "migration.started",
        "migration.planned",
        "migration.finished",
    ]
    assert events[1].data == {
        "from": "pending",
        "to": "assessing",
        "stage": "assessing",
        "status": "retiring",
        "days_left": 26,
    }
    assert events[3].actor == "alice" and events[3].data["to"] == "cancelled"
    assert done.phase is MigrationPhase.CANCELLED and not done.active
    assert store.verify_audit().ok


def test_unknown_id_and_missing_actor_are_reported(migrations: MigrationStore) -> None:
    with pytest.raises(NotFoundError, match="no migration 'nope'"):
        migrations.get("nope")
    with pytest.raises(NotFoundError):
        migrations.advance("nope", "assessing", actor="flow")
    with pytest.raises(StateError, match="no actor"):
        _start(migrations, actor="")


def test_parameters_must_be_plain_json(migrations: MigrationStore) -> None:
    with pytest.raises(StateError, match="not plain JSON"):
        _start(migrations, parameters={"when": datetime(2026, 1, 1, tzinfo=UTC)})
    assert migrations.list() == []


def test_racing_starts_create_exactly_one_record(store: Store) -> None:
    ms = MigrationStore(store)
    results: list[Any] = []
    errors: list[BaseException] = []

    def go(target: str) -> None:
        try:
            results.append(_start(ms, target=target))
        except MigrationConflictError as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=go, args=(TARGET if i % 2 else "gpt-4.1@2025-04-14",)) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    created = [r for r in results if r.created]
    assert len(created) == 1
    assert len(ms.list(APP)) == 1
    # everyone else either found the same key or was told about the active one
    assert len(results) + len(errors) == 8
    assert all(r.migration.id == created[0].migration.id for r in results)
