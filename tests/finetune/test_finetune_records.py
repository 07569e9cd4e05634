"""The finetune_jobs table on SQLite and PostgreSQL: schema from the migration, writes audited atomically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from modelshift import audit
from modelshift.errors import StateError
from modelshift.finetune import FineTuneJobRow, FineTuneJobStore, FineTunePhase
from modelshift.store import Store
from modelshift.store.migrate import alembic_config, head_revision

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def identity(key: str = "k" * 64, migration_id: str = "mig-1") -> dict[str, Any]:
    """The columns a row is created with."""
    return {
        "key": key,
        "migration_id": migration_id,
        "app": "claims-assistant",
        "target_model": "gpt-4.1-2025-04-14",
        "training_sha256": "a" * 64,
        "validation_sha256": None,
        "hyperparameters": {"n_epochs": 3, "learning_rate_multiplier": 0.5},
        "suffix": "claims-tone-kkkkkkkk",
        "seed": 42,
    }


UPLOADED = {"training_file_id": "file-1", "validation_file_id": None, "phase": FineTunePhase.UPLOADED.value}


def test_table_matches_the_migration(any_store: Store) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "two migration heads: re-chain the newest after the other"
    assert "0004_finetune_jobs" in [r.revision for r in script.walk_revisions("base", head_revision())]
    columns = {c["name"] for c in inspect(any_store.engine).get_columns("finetune_jobs")}
    assert columns == set(FineTuneJobRow.__table__.columns.keys())

    def only_finetune(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table == "finetune_jobs"

    with any_store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": only_finetune})
        assert compare_metadata(context, FineTuneJobRow.metadata) == []


def test_create_update_and_read_back_with_audit(any_store: Store) -> None:
    jobs = FineTuneJobStore(any_store, actor="worker-1")
    assert jobs.get("k" * 64) is None
    created = jobs.create(now=T0, identity=identity(), changes=UPLOADED, data={"training_file_id": "file-1"})
    assert created.phase is FineTunePhase.UPLOADED and created.created_at == T0 == created.updated_at
    assert created.hyperparameters == {"n_epochs": 3, "learning_rate_multiplier": 0.5}

    later = T0 + timedelta(minutes=5)
    submitted = jobs.update(
        created.key,
        now=later,
        changes={"job_id": "ftjob-1", "phase": FineTunePhase.SUBMITTED.value, "job_status": "created"},
        reason=audit.Reason.FINETUNE_SUBMITTED,
        data={"seed": 42},
    )
    assert submitted.job_id == "ftjob-1" and submitted.updated_at == later and submitted.created_at == T0
    # progress without a step: the row changes, the audit chain does not
    progressed = jobs.update(created.key, now=later, changes={"job_status": "running", "last_event_id": "e"})
    assert jobs.get(created.key) == progressed

    events = any_store.audit_events("mig-1")
    assert [e.reason for e in events] == ["finetune.files_uploaded", "finetune.submitted"]
    assert events[0].subject == f"finetune:{'k' * 12}" and events[0].actor == "worker-1"
    assert events[1].data["job_id"] == "ftjob-1" and events[1].data["phase"] == "submitted"
    assert events[1].data["seed"] == 42 and events[1].occurred_at == later
    assert any_store.verify_audit().ok


def test_a_second_create_for_the_same_key_returns_the_first(any_store: Store) -> None:
    jobs = FineTuneJobStore(any_store, actor="worker-1")
    first = jobs.create(now=T0, identity=identity(), changes=UPLOADED, data={})
    other = {**UPLOADED, "training_file_id": "file-2"}
    second = jobs.create(now=T0 + timedelta(seconds=1), identity=identity(), changes=other, data={})
    assert second == first
    assert len(any_store.audit_events("mig-1")) == 1


def test_for_migration_lists_oldest_first_and_only_that_migration(store: Store) -> None:
    jobs = FineTuneJobStore(store, actor="w")
    jobs.create(now=T0 + timedelta(seconds=2), identity=identity("b" * 64), changes=UPLOADED, data={})
    jobs.create(now=T0, identity=identity("c" * 64), changes=UPLOADED, data={})
    jobs.create(now=T0, identity=identity("d" * 64, migration_id="mig-2"), changes=UPLOADED, data={})
    assert [r.key[0] for r in jobs.for_migration("mig-1")] == ["c", "b"]
    assert [r.key[0] for r in jobs.for_migration("mig-2")] == ["d"]
    assert jobs.for_migration("nope") == []


@pytest.mark.parametrize(
    "column", ["key", "migration_id", "target_model", "hyperparameters", "suffix", "seed"]
)
def test_identity_columns_never_change(store: Store, column: str) -> None:
    jobs = FineTuneJobStore(store, actor="w")
    jobs.create(now=T0, identity=identity(), changes=UPLOADED, data={})
    with pytest.raises(StateError, match=f"columns \\['{column}'\\] cannot change"):
        jobs.update("k" * 64, now=T0, changes={column: "x"})


def test_updating_a_missing_row_says_what_to_do(store: Store) -> None:
    with pytest.raises(StateError, match="re-run the migration"):
        FineTuneJobStore(store, actor="w").update("z" * 64, now=T0, changes={"job_status": "running"})
    assert store.audit_events() == []


def test_an_actor_is_required(store: Store) -> None:
    with pytest.raises(StateError, match="no actor"):
        FineTuneJobStore(store, actor="")


def test_a_failed_audit_write_leaves_no_row(store: Store) -> None:
    jobs = FineTuneJobStore(store, actor="w")
    with pytest.raises(StateError, match="not plain JSON"):
        jobs.create(now=T0, identity=identity(), changes=UPLOADED, data={"bad": object()})
    assert jobs.get("k" * 64) is None  # row and audit event are one transaction
