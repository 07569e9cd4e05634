"""The ``notices`` table and ``StoreNoticeLog``: notice dedupe in the state store, audited in one transaction.

The table is created by the Alembic migration ``0002_notices`` (``modelshift/store/migrations/versions/``);
the row class registers on the store's declarative ``Base`` so both describe the same columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

# The store package must initialise before modelshift.audit: importing audit first is a cycle
# (audit -> store.models -> store/__init__ -> store.store -> audit).
from modelshift.store.store import Store

# isort: split
from modelshift import audit
from modelshift.clock import Clock, utcnow
from modelshift.errors import StateError
from modelshift.notices.log import CLAIM_LEASE, NoticeStatus, Recorded
from modelshift.notices.model import Notice
from modelshift.store.engine import run_read, run_write
from modelshift.store.models import Base

#: who the audit chain names for notices: the trigger, since Azure (not a person) acted
NOTICE_ACTOR = "azure-service-health"
#: longest key: tracking id, stage and communication id are each at most 100 characters (parse.py checks)
KEY_LEN = 310


class NoticeRow(Base):
    """One Azure notice seen by the webhook, keyed by tracking id + stage + communication id."""

    __tablename__ = "notices"

    key: Mapped[str] = mapped_column(String(KEY_LEN), primary_key=True)
    notice_id: Mapped[str] = mapped_column(String(36))
    tracking_id: Mapped[str | None] = mapped_column(String(100))
    stage: Mapped[str | None] = mapped_column(String(100))
    communication_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime]
    claimed_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]


class StoreNoticeLog:
    """``NoticeLog`` on the state store. Every call is one write transaction under the store's write lock."""

    def __init__(self, store: Store, *, clock: Clock = utcnow, actor: str = NOTICE_ACTOR) -> None:
        self._store = store
        self._clock = clock
        self._actor = actor

    def record(self, key: str, notice: Notice) -> Recorded:
        """Insert (and audit) a new notice, or claim a failed/abandoned one, or report it as seen."""
        now = self._clock()

        def work(session: Session) -> Recorded:
            # The write lock serialises this read-then-write against every other writer, on both backends.
            row = session.get(NoticeRow, key)
            if row is None:
                session.add(
                    NoticeRow(
                        key=key,
                        notice_id=notice.notice_id,
                        tracking_id=notice.tracking_id,
                        stage=notice.stage,
                        communication_id=notice.communication_id,
                        status=NoticeStatus.RECEIVED,
                        attempts=1,
                        received_at=now,
                        claimed_at=now,
                        dispatched_at=None,
                        last_error=None,
                        payload=notice.model_dump(mode="json"),
                    )
                )
                session.flush()
                audit.append(
                    session,
                    occurred_at=now,
                    actor=self._actor,
                    reason=audit.Reason.NOTICE_RECEIVED,
                    subject=f"notice:{notice.tracking_id}",
                    data=notice.summary(),
                )
                return Recorded(new=True, dispatched=False, claimed=True)
            if row.status == NoticeStatus.DISPATCHED:
                return Recorded(new=False, dispatched=True, claimed=False, attempts=row.attempts)
            abandoned = row.status == NoticeStatus.RECEIVED and now - row.claimed_at >= CLAIM_LEASE
            if row.status == NoticeStatus.FAILED or abandoned:
                row.status = NoticeStatus.RECEIVED
                row.claimed_at = now
                row.attempts += 1
                return Recorded(new=False, dispatched=False, claimed=True, attempts=row.attempts)
            # another delivery holds a live claim: it will dispatch (or fail, and Azure retries that one)
            return Recorded(new=False, dispatched=False, claimed=False, attempts=row.attempts)

        return run_write(self._store.engine, work, url=self._store.engine.url)

    def mark_dispatched(self, key: str) -> None:
        """Mark the notice dispatched; Azure's later retries of it are answered "duplicate"."""
        self._set(key, status=NoticeStatus.DISPATCHED, dispatched_at=self._clock(), last_error=None)

    def mark_failed(self, key: str, error: str) -> None:
        """Release the claim so that the next delivery of this notice dispatches it again."""
        self._set(key, status=NoticeStatus.FAILED, last_error=error[:2000])

    def status(self, key: str) -> tuple[NoticeStatus, int] | None:
        """The status and attempt count of a recorded notice, or None if it was never seen."""

        def work(session: Session) -> tuple[NoticeStatus, int] | None:
            row = session.execute(
                select(NoticeRow.status, NoticeRow.attempts).where(NoticeRow.key == key)
            ).first()
            return None if row is None else (NoticeStatus(row.status), row.attempts)

        return run_read(self._store.engine, work, url=self._store.engine.url)

    def _set(self, key: str, **values: Any) -> None:
        def work(session: Session) -> int:
            result = session.execute(update(NoticeRow).where(NoticeRow.key == key).values(**values))
            return int(getattr(result, "rowcount", 0) or 0)

        if run_write(self._store.engine, work, url=self._store.engine.url) != 1:
            raise StateError(
                f"notice {key!r} is not in the notices table; record() it before marking it "
                "(was the store reset while the webhook was running?)",
                key=key,
            )
