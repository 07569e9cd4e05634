"""The append-only, hash-chained audit log: fixed reason codes, the canonical event form, append and verify.

Each event's ``hash`` is ``sha256`` of its canonical form: sorted-key, compact JSON of ``seq``,
``occurred_at`` (ISO 8601 UTC, microseconds, ``Z``), ``migration_id``, ``actor``, ``reason``, ``subject``,
``data`` and ``prev_hash``. ``prev_hash`` is the previous event's hash (64 zeros for the first), so changing,
removing or reordering any stored row breaks the chain from that row on, and :func:`verify` finds it.

The store calls :func:`append` inside the same transaction as the state change it records, while holding
the store's write lock, so reading the chain head and appending after it cannot race.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelshift.clock import ensure_utc
from modelshift.errors import AuditChainError, StateError

if TYPE_CHECKING:
    from modelshift.store.models import AuditEventRow
    from modelshift.store.store import Store

#: prev_hash of the first event
GENESIS_HASH = "0" * 64


class Reason(StrEnum):
    """The fixed reason codes of audit events; one list for every stage."""

    BUNDLE_REGISTERED = "bundle.registered"
    BUNDLE_STATUS_CHANGED = "bundle.status_changed"
    BUNDLE_ADOPTED = "bundle.adopted"
    ROUTER_UPDATED = "router.updated"
    ROUTER_LEASE_EXPIRED = "router.lease_expired"
    EVALUATION_RECORDED = "evaluation.recorded"
    MIGRATION_STARTED = "migration.started"
    MIGRATION_PLANNED = "migration.planned"
    MIGRATION_PREPARED = "migration.prepared"
    MIGRATION_FINISHED = "migration.finished"
    CANARY_STEP = "canary.step"
    CANARY_ANALYSIS = "canary.analysis"
    CANARY_EXTENDED = "canary.extended"
    CANARY_APPROVAL_REQUESTED = "canary.approval_requested"
    #: a person sent an approve/reject answer to a paused canary (the dashboard; the flow then records
    #: canary.approved or canary.rejected)
    CANARY_APPROVAL_SUBMITTED = "canary.approval_submitted"
    CANARY_APPROVED = "canary.approved"
    CANARY_REJECTED = "canary.rejected"
    CANARY_PROMOTED = "canary.promoted"
    CANARY_ROLLED_BACK = "canary.rolled_back"
    NOTICE_RECEIVED = "notice.received"
    FINETUNE_FILES_UPLOADED = "finetune.files_uploaded"
    FINETUNE_SUBMITTED = "finetune.submitted"
    FINETUNE_RECOVERED = "finetune.recovered"
    FINETUNE_SUCCEEDED = "finetune.succeeded"
    FINETUNE_FAILED = "finetune.failed"
    FINETUNE_TIMED_OUT = "finetune.timed_out"
    FINETUNE_DEPLOYED = "finetune.deployed"
    CANDIDATE_COMPOSED = "candidate.composed"
    DEPLOYMENT_CREATED = "deployment.created"
    #: a retired bundle's deployment deleted by the retirement sweep after its grace period
    DEPLOYMENT_DELETED = "deployment.deleted"
    DATA_VALIDATED = "data.validated"
    GROUNDING_RECHUNKED = "grounding.rechunked"


@dataclass(frozen=True)
class AuditEvent:
    """One stored audit event, exactly as hashed."""

    seq: int
    occurred_at: datetime
    migration_id: str | None
    actor: str
    reason: str
    subject: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: AuditEventRow) -> AuditEvent:
        """Copy a row out of its session."""
        return cls(
            seq=row.seq,
            occurred_at=ensure_utc(row.occurred_at),
            migration_id=row.migration_id,
            actor=row.actor,
            reason=row.reason,
            subject=row.subject,
            data=row.data,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found: ``ok``, how many events it read, and the first bad seq with the problem."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    problem: str | None = None
    #: hash of the last verified event: keep it elsewhere (a report, an artifact) to detect tail truncation,
    #: which no chain can see from the inside
    head_hash: str | None = None

    def raise_for_problem(self) -> None:
        """Raise AuditChainError (carrying ``first_bad_seq``) unless the chain verified."""
        if not self.ok:
            raise AuditChainError(
                f"audit chain broken at seq {self.first_bad_seq}: {self.problem}; "
                "restore the audit_events table from a backup and investigate who changed it",
                first_bad_seq=self.first_bad_seq,
            )


def format_time(value: datetime) -> str:
    """The canonical timestamp: UTC, microseconds, ``Z`` (independent of how a backend round-trips it)."""
    return ensure_utc(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_data(data: Mapping[str, Any], *, subject: str) -> dict[str, Any]:
    """``data`` as it will be stored and hashed: a JSON round trip, refusing what JSON cannot hold."""
    try:
        loaded: dict[str, Any] = json.loads(_json(dict(data)))
    except (TypeError, ValueError) as exc:
        raise StateError(
            f"audit data for {subject!r} is not plain JSON ({exc}); pass str/int/float/bool/None, lists and "
            "dicts with str keys (format datetimes with modelshift.audit.format_time)",
            subject=subject,
        ) from exc
    return loaded


def canonical_form(
    *,
    seq: int,
    occurred_at: datetime,
    migration_id: str | None,
    actor: str,
    reason: str,
    subject: str,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The exact string an event's hash is computed over."""
    return _json(
        {
            "seq": seq,
            "occurred_at": format_time(occurred_at),
            "migration_id": migration_id,
            "actor": actor,
            "reason": str(reason),
            "subject": subject,
            "data": dict(data),
            "prev_hash": prev_hash,
        }
    )


def event_hash(**fields: Any) -> str:
    """sha256 (hex) of :func:`canonical_form` of the given fields."""
    return hashlib.sha256(canonical_form(**fields).encode("utf-8")).hexdigest()


def parse_reason(value: str) -> Reason:
    """The Reason for a code, or StateError listing the valid codes."""
    try:
        return Reason(value)
    except ValueError:
        codes = ", ".join(r.value for r in Reason)
        raise StateError(f"{value!r} is not an audit reason code; use one of: {codes}") from None


def append(
    session: Session,
    *,
    occurred_at: datetime,
    actor: str,
    reason: Reason,
    subject: str,
    data: Mapping[str, Any] | None = None,
    migration_id: str | None = None,
) -> AuditEvent:
    """Append one event after the current head, in the caller's transaction (which holds the write lock)."""
    if not actor:
        raise StateError(f"audit event {reason} for {subject!r} has no actor; say who or what acted")
    # Imported here, not at the top, so `import modelshift.audit` works first: the store imports audit.
    from modelshift.store.models import AuditEventRow

    stored = canonical_data(data or {}, subject=subject)
    head = session.execute(
        select(AuditEventRow.seq, AuditEventRow.hash).order_by(AuditEventRow.seq.desc()).limit(1)
    ).first()
    seq = 1 if head is None else head.seq + 1
    prev_hash = GENESIS_HASH if head is None else head.hash
    when = ensure_utc(occurred_at)
    fields: dict[str, Any] = {
        "seq": seq,
        "occurred_at": when,
        "migration_id": migration_id,
        "actor": actor,
        "reason": str(reason),
        "subject": subject,
        "data": stored,
        "prev_hash": prev_hash,
    }
    digest = event_hash(**fields)
    row = AuditEventRow(hash=digest, **fields)
    session.add(row)
    session.flush()
    return AuditEvent(hash=digest, **fields)


def _problem(event: AuditEvent, expected_seq: int, expected_prev: str) -> str | None:
    if event.seq != expected_seq:
        if event.seq > expected_seq:
            return f"seq {expected_seq}..{event.seq - 1} missing (removed rows)"
        return f"seq {event.seq} out of order after {expected_seq - 1}"
    if event.prev_hash != expected_prev:
        return "prev_hash does not match the previous event's hash (a row was removed or reordered)"
    recomputed = event_hash(
        seq=event.seq,
        occurred_at=event.occurred_at,
        migration_id=event.migration_id,
        actor=event.actor,
        reason=event.reason,
        subject=event.subject,
        data=event.data,
        prev_hash=event.prev_hash,
    )
    if recomputed != event.hash:
        return "hash does not match the event's content (the row was altered)"
    return None


def verify_events(events: Iterable[AuditEvent]) -> VerifyResult:
    """Recompute a chain given in seq order; stop at the first bad event."""
    count = 0
    expected_prev = GENESIS_HASH
    for event in events:
        expected_seq = count + 1
        problem = _problem(event, expected_seq, expected_prev)
        if problem is not None:
            # Rows come in seq order, so the first wrong (or missing) position is expected_seq.
            return VerifyResult(ok=False, count=count, first_bad_seq=expected_seq, problem=problem)
        count += 1
        expected_prev = event.hash
    return VerifyResult(ok=True, count=count, head_hash=None if count == 0 else expected_prev)


def verify(store: Store) -> VerifyResult:
    """Recompute the whole chain held by ``store``: detects altered, removed and reordered rows."""
    return verify_events(store.iter_audit_events())
