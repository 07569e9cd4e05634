"""The ``prepared`` migration phase: its moves, its audit reason, and the database rules that count it
active (migration 0006), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from modelshift.errors import IllegalTransitionError
from modelshift.migration import ACTIVE, KEY_HOLDING, MigrationPhase, MigrationStore, check_transition
from modelshift.migration.records import MigrationRow, idempotency_key
from modelshift.store import Store

P = MigrationPhase
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        factory: Callable[[], str] = request.getfixturevalue("postgres_url_factory")
        url = factory()
    with Store.open(url) as opened:
        yield opened


@pytest.mark.parametrize(
    ("current", "new", "legal"),
    [
        (P.PREPARING, P.PREPARED, True),
        (P.PREPARED, P.EVALUATING, True),
        (P.PREPARED, P.FAILED, True),
        (P.PREPARED, P.CANCELLED, True),
        (P.PREPARING, P.EVALUATING, True),  # a later release may go straight on
        (P.PLANNED, P.PREPARED, False),  # prepared only after preparing
        (P.PREPARED, P.PREPARING, False),
        (P.PREPARED, P.CANARY, False),
        (P.PREPARED, P.SUCCEEDED, False),
    ],
)
def test_prepared_moves(current: MigrationPhase, new: MigrationPhase, legal: bool) -> None:
    if legal:
        check_transition(current, new, subject="m")
    else:
        with pytest.raises(IllegalTransitionError, match=f"from {current} to {new}"):
            check_transition(current, new, subject="m")


def test_prepared_is_active_and_holds_its_key() -> None:
    assert P.PREPARED in ACTIVE and P.PREPARED in KEY_HOLDING


def test_entering_prepared_is_audited_as_migration_prepared(store: Store) -> None:
    migrations = MigrationStore(store)
    started = migrations.start(
        app="support-chat", baseline_digest="sha256:b", target="gpt-4o@2024-11-20", trigger="cli",
        reason="t", actor="tester", parameters={},
    )  # fmt: skip
    for phase in (P.ASSESSING, P.PLANNED, P.PREPARING, P.PREPARED):
        migrations.advance(started.migration.id, phase, actor="tester")
    events = store.audit_events(migration_id=started.migration.id)
    assert [(e.reason, e.data.get("stage")) for e in events[-2:]] == [
        ("migration.started", "preparing"),
        ("migration.prepared", None),
    ]
    # a prepared migration still blocks a second one for the app, and holds its key
    assert migrations.active_for("support-chat") is not None
    again = migrations.start(
        app="support-chat", baseline_digest="sha256:b", target="gpt-4o@2024-11-20", trigger="ui",
        reason="again", actor="tester", parameters={},
    )  # fmt: skip
    assert not again.created and again.migration.phase is P.PREPARED


def _raw(store: Store, **overrides: Any) -> None:
    now = datetime(2026, 1, 15, tzinfo=UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "app": "support-chat",
        "baseline_digest": "sha256:b",
        "target": "gpt-4o@2024-11-20",
        "idempotency_key": idempotency_key("support-chat", "sha256:b", "gpt-4o@2024-11-20"),
        "phase": "prepared",
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


def test_the_database_counts_a_prepared_row_as_active(store: Store) -> None:
    _raw(store)
    with pytest.raises(IntegrityError):
        _raw(store, idempotency_key="b" * 64, phase="pending")  # same app, another key
    with pytest.raises(IntegrityError):
        _raw(store, app="other-app", phase="pending")  # the key a prepared row holds
    _raw(store, app="other-app", idempotency_key="c" * 64, phase="pending")
