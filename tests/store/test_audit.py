"""The audit chain: canonical form, append, and verify catching altered, removed and reordered rows."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, update
from store_helpers import bundle_args, register

from modelshift import audit
from modelshift.errors import AuditChainError, StateError
from modelshift.store import Store
from modelshift.store.models import AuditEventRow

T = AuditEventRow.__table__


def test_reason_codes_are_one_fixed_list() -> None:
    assert [r.value for r in audit.Reason] == [
        "bundle.registered",
        "bundle.status_changed",
        "bundle.adopted",
        "router.updated",
        "router.lease_expired",
        "evaluation.recorded",
        "migration.started",
        "migration.planned",
        "migration.prepared",
        "migration.finished",
        "canary.step",
        "canary.analysis",
        "canary.extended",
        "canary.approval_requested",
        "canary.approval_submitted",
        "canary.approved",
        "canary.rejected",
        "canary.promoted",
        "canary.rolled_back",
        "notice.received",
        "finetune.files_uploaded",
        "finetune.submitted",
        "finetune.recovered",
        "finetune.succeeded",
        "finetune.failed",
        "finetune.timed_out",
        "finetune.deployed",
        "candidate.composed",
        "deployment.created",
        "deployment.deleted",
        "data.validated",
        "grounding.rechunked",
    ]


def test_canonical_form_is_sorted_compact_json_with_utc_time() -> None:
    fields: dict[str, Any] = {
        "seq": 1,
        "occurred_at": datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC),
        "migration_id": None,
        "actor": "cli",
        "reason": audit.Reason.BUNDLE_REGISTERED,
        "subject": "bundle:a@1",
        "data": {"b": [1, 2.5], "a": "é"},
        "prev_hash": audit.GENESIS_HASH,
    }
    form = audit.canonical_form(**fields)
    assert form == (
        '{"actor":"cli","data":{"a":"é","b":[1,2.5]},"migration_id":null,'
        '"occurred_at":"2026-03-01T12:00:00.000005Z","prev_hash":"' + "0" * 64 + '",'
        '"reason":"bundle.registered","seq":1,"subject":"bundle:a@1"}'
    )
    assert audit.event_hash(**fields) == hashlib.sha256(form.encode()).hexdigest()
    assert json.loads(form)["occurred_at"].endswith("Z")


def _chain(store: Store, n: int = 5) -> None:
    for i in range(n):
        store.append_audit(
            audit.Reason.CANARY_STEP, f"canary:app step {i}", {"weight": i * 10, "p": 0.5}, actor="flow",
            migration_id="m-1" if i % 2 else None,
        )  # fmt: skip


def _tamper(store: Store, statement: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(statement)


def test_events_chain_from_genesis(store: Store) -> None:
    assert store.verify_audit() == audit.VerifyResult(ok=True, count=0)
    _chain(store)
    events = store.audit_events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert [e.seq for e in store.audit_events(migration_id="m-1")] == [2, 4]
    result = audit.verify(store)
    assert (result.ok, result.count, result.head_hash) == (True, 5, events[-1].hash)
    result.raise_for_problem()  # does not raise


ALTERATIONS = [
    pytest.param({"actor": "mallory"}, id="actor"),
    pytest.param({"reason": "canary.rolled_back"}, id="reason"),
    pytest.param({"subject": "canary:other"}, id="subject"),
    pytest.param({"migration_id": "m-2"}, id="migration_id"),
    pytest.param({"data": {"weight": 100, "p": 0.5}}, id="data"),
    pytest.param({"occurred_at": datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)}, id="occurred_at"),
    pytest.param({"hash": "e" * 64}, id="hash"),
    pytest.param({"prev_hash": "f" * 64}, id="prev_hash"),
]


@pytest.mark.parametrize("values", ALTERATIONS)
def test_verify_detects_an_altered_row(store: Store, values: dict[str, Any]) -> None:
    _chain(store)
    _tamper(store, update(T).where(T.c.seq == 3).values(**values))
    result = audit.verify(store)
    assert (result.ok, result.first_bad_seq, result.count) == (False, 3, 2), result
    with pytest.raises(AuditChainError, match="broken at seq 3") as caught:
        result.raise_for_problem()
    assert caught.value.first_bad_seq == 3


def test_an_altered_and_rehashed_row_breaks_the_next_link(store: Store) -> None:
    _chain(store)
    row = store.audit_events()[2]
    forged = {**row.__dict__, "actor": "mallory"}
    forged.pop("hash")
    _tamper(store, update(T).where(T.c.seq == 3).values(actor="mallory", hash=audit.event_hash(**forged)))
    result = audit.verify(store)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "prev_hash" in (result.problem or "")


@pytest.mark.parametrize(("removed", "first_bad"), [(1, 1), (3, 3), (4, 4)])
def test_verify_detects_a_removed_row(store: Store, removed: int, first_bad: int) -> None:
    _chain(store)
    _tamper(store, delete(T).where(T.c.seq == removed))
    result = audit.verify(store)
    assert (result.ok, result.first_bad_seq) == (False, first_bad)
    assert "missing" in (result.problem or "")


def test_removing_the_newest_row_is_seen_only_against_a_kept_head(store: Store) -> None:
    _chain(store)
    head = audit.verify(store).head_hash
    _tamper(store, delete(T).where(T.c.seq == 5))
    result = audit.verify(store)
    assert result.ok and result.count == 4 and result.head_hash != head


def test_verify_detects_reordered_rows(store: Store) -> None:
    _chain(store)
    # swap the positions of events 2 and 3 (via a free seq, because seq is the primary key)
    _tamper(store, update(T).where(T.c.seq == 3).values(seq=-3))
    _tamper(store, update(T).where(T.c.seq == 2).values(seq=3))
    _tamper(store, update(T).where(T.c.seq == -3).values(seq=2))
    result = audit.verify(store)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_state_changes_verify_and_name_their_subjects(store: Store) -> None:
    bundle = register(store, bundle_args("app", "1"))
    store.adopt_production(bundle.digest, actor="onboarder")
    assert [(e.reason, e.subject) for e in store.audit_events()] == [
        ("bundle.registered", "bundle:app@1"),
        ("bundle.adopted", "bundle:app@1"),
        ("router.updated", "router:app"),
    ]
    assert audit.verify(store).ok


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"data": {"when": datetime(2026, 1, 1)}}, "not plain JSON", id="datetime-in-data"),
        pytest.param({"data": {"x": float("nan")}}, "not plain JSON", id="nan"),
        pytest.param({"actor": ""}, "has no actor", id="no-actor"),
        pytest.param({"reason": "canary.exploded"}, "not an audit reason code", id="unknown-reason"),
    ],
)
def test_bad_events_are_refused(store: Store, kwargs: dict[str, Any], expected: str) -> None:
    args: dict[str, Any] = {"reason": audit.Reason.NOTICE_RECEIVED, "actor": "webhook", "data": {}, **kwargs}
    with pytest.raises(StateError, match=expected):
        store.append_audit(args.pop("reason"), "notice:AZ-1", args.pop("data"), **args)
    assert store.audit_events() == []
