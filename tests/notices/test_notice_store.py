"""StoreNoticeLog on the real store (SQLite and PostgreSQL): dedupe, claims, retries, audit, durability."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from conftest import SetClock
from notice_payloads import common, properties
from sqlalchemy import inspect

from modelshift.audit import Reason
from modelshift.errors import StateError
from modelshift.notices import NoticeStatus, parse_notice
from modelshift.notices.log import CLAIM_LEASE
from modelshift.notices.store import NoticeRow, StoreNoticeLog
from modelshift.store import Store
from modelshift.store.migrate import alembic_config, head_revision

NOTICE = parse_notice(common())


def test_new_notice_is_claimed_and_audited_in_one_go(store: Store, clock: SetClock) -> None:
    log = StoreNoticeLog(store, clock=clock)
    recorded = log.record(NOTICE.key, NOTICE)
    assert (recorded.new, recorded.dispatched, recorded.claimed, recorded.attempts) == (True, False, True, 1)
    assert log.status(NOTICE.key) == (NoticeStatus.RECEIVED, 1)
    events = store.audit_events()
    assert [(e.reason, e.actor, e.subject) for e in events] == [
        (Reason.NOTICE_RECEIVED, "azure-service-health", "notice:4L7Q-9RZ")
    ]
    assert events[0].data["model_refs"] == ["gpt-4o@2024-05-13", "gpt-4.1@2025-04-14"]
    assert store.verify_audit().ok


# state before the second delivery -> (claimed, dispatched, attempts, status after)
SECOND_DELIVERY = [
    ("in flight", None, timedelta(0), (False, False, 1, NoticeStatus.RECEIVED)),
    (
        "in flight, lease not yet over",
        None,
        CLAIM_LEASE - timedelta(seconds=1),
        (False, False, 1, NoticeStatus.RECEIVED),
    ),
    ("claim abandoned", None, CLAIM_LEASE, (True, False, 2, NoticeStatus.RECEIVED)),
    ("dispatched", "dispatched", timedelta(0), (False, True, 1, NoticeStatus.DISPATCHED)),
    ("dispatched long ago", "dispatched", timedelta(days=30), (False, True, 1, NoticeStatus.DISPATCHED)),
    ("failed", "failed", timedelta(0), (True, False, 2, NoticeStatus.RECEIVED)),
]


@pytest.mark.parametrize(
    ("label", "mark", "later", "expected"), SECOND_DELIVERY, ids=[r[0] for r in SECOND_DELIVERY]
)
def test_second_delivery(
    store: Store,
    clock: SetClock,
    label: str,
    mark: str | None,
    later: timedelta,
    expected: tuple[bool, bool, int, NoticeStatus],
) -> None:
    log = StoreNoticeLog(store, clock=clock)
    log.record(NOTICE.key, NOTICE)
    if mark == "dispatched":
        log.mark_dispatched(NOTICE.key)
    elif mark == "failed":
        log.mark_failed(NOTICE.key, "DispatchError: 503")
    clock.advance(later)
    again = log.record(NOTICE.key, NOTICE)
    claimed, dispatched, attempts, status = expected
    assert (again.new, again.claimed, again.dispatched, again.attempts) == (
        False,
        claimed,
        dispatched,
        attempts,
    )
    assert log.status(NOTICE.key) == (status, attempts)
    assert len(store.audit_events()) == 1  # received once, however often delivered


def test_failed_then_dispatched(store: Store, clock: SetClock) -> None:
    log = StoreNoticeLog(store, clock=clock)
    log.record(NOTICE.key, NOTICE)
    log.mark_failed(NOTICE.key, "boom")
    assert log.record(NOTICE.key, NOTICE).claimed
    log.mark_dispatched(NOTICE.key)
    assert log.status(NOTICE.key) == (NoticeStatus.DISPATCHED, 2)
    assert log.record(NOTICE.key, NOTICE).dispatched


def test_other_stage_is_another_notice(store: Store, clock: SetClock) -> None:
    log = StoreNoticeLog(store, clock=clock)
    resolved = parse_notice(common(properties(stage="Resolved")))
    assert log.record(NOTICE.key, NOTICE).new
    assert log.record(resolved.key, resolved).new


@pytest.mark.parametrize("mark", ["dispatched", "failed"])
def test_marking_an_unknown_notice_names_it(store: Store, clock: SetClock, mark: str) -> None:
    log = StoreNoticeLog(store, clock=clock)
    with pytest.raises(StateError, match="nope"):
        if mark == "dispatched":
            log.mark_dispatched("nope")
        else:
            log.mark_failed("nope", "x")


def test_dedupe_survives_a_restart(tmp_path: Path, clock: SetClock) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with Store.open(url, clock=clock) as first:
        log = StoreNoticeLog(first, clock=clock)
        log.record(NOTICE.key, NOTICE)
        log.mark_dispatched(NOTICE.key)
    with Store.open(url, clock=clock) as second:
        assert StoreNoticeLog(second, clock=clock).record(NOTICE.key, NOTICE).dispatched


def test_migration_is_on_the_single_head_chain(store: Store) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "two migration heads: re-chain the newest after the other"
    chain = [rev.revision for rev in script.walk_revisions("base", head_revision())]
    assert "0002_notices" in chain
    columns = {c["name"] for c in inspect(store.engine).get_columns("notices")}
    assert columns == set(NoticeRow.__table__.columns.keys())
