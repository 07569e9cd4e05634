"""Session-level bundle operations: registration checks, lookups and status changes (with their audit events).

Every function here runs inside a transaction the :class:`~modelshift.store.store.Store` opened, holding
the write lock when it mutates; none of them commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelshift import audit
from modelshift.errors import (
    BundleConflictError,
    BundleValidationError,
    IllegalTransitionError,
    NotFoundError,
)
from modelshift.store.models import DIGEST_LEN, BlobRow, BundleRow
from modelshift.store.records import RegisteredBundle
from modelshift.store.status import BundleStatus, check_transition


def bundle_subject(app: str, version: str) -> str:
    """The audit subject naming one bundle."""
    return f"bundle:{app}@{version}"


def validate_registration(
    app: str, version: str, digest: str, files: Mapping[str, str], blobs: Mapping[str, bytes]
) -> list[str]:
    """Problems with a registration request that need no database to see (bad names, blobs not matching)."""
    problems: list[str] = []
    for name, value in (("app", app), ("version", version), ("digest", digest)):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name}: must be a non-empty string")
    if isinstance(digest, str) and len(digest) > DIGEST_LEN:
        problems.append(f"digest: {len(digest)} characters; at most {DIGEST_LEN}")
    for key, data in sorted(blobs.items()):
        actual = hashlib.sha256(data).hexdigest()
        if actual != key:
            problems.append(
                f"blobs[{key!r}]: bytes hash to sha256 {actual}, not to the key; key blobs by sha256"
            )
    for logical, sha in sorted(files.items()):
        if not isinstance(sha, str) or len(sha) != 64:
            problems.append(f"files[{logical!r}]: {sha!r} is not a sha256 hex digest")
    return problems


def find_by_digest(session: Session, digest: str) -> BundleRow | None:
    """The bundle row with this digest, if any."""
    return session.scalars(select(BundleRow).where(BundleRow.digest == digest)).first()


def require_by_digest(session: Session, digest: str) -> BundleRow:
    """The bundle row with this digest, or NotFoundError with the next step."""
    row = find_by_digest(session, digest)
    if row is None:
        raise NotFoundError(
            f"no bundle with digest {digest} is registered; register it first (`modelshift bundle register`)",
            digest=digest,
        )
    return row


def production_row(session: Session, app: str) -> BundleRow | None:
    """The app's production bundle row, if it has one."""
    return session.scalars(
        select(BundleRow).where(BundleRow.app == app, BundleRow.status == BundleStatus.PRODUCTION.value)
    ).first()


def register(
    session: Session,
    *,
    now: datetime,
    app: str,
    version: str,
    digest: str,
    manifest: Mapping[str, Any],
    files: Mapping[str, str],
    blobs: Mapping[str, bytes],
    status: BundleStatus,
    actor: str,
    migration_id: str | None,
) -> RegisteredBundle:
    """Register a bundle (or return the identical one already there); audited as bundle.registered."""
    existing = session.scalars(
        select(BundleRow).where(BundleRow.app == app, BundleRow.version == version)
    ).first()
    if existing is not None:
        if existing.digest == digest:
            return RegisteredBundle.from_row(existing)
        raise BundleConflictError(
            f"bundle {app}@{version} is already registered with digest {existing.digest}; this content has "
            f"digest {digest}. Registered versions are immutable: bump the version in bundle.yaml and "
            "register again",
            app=app,
            version=version,
            existing_digest=existing.digest,
            new_digest=digest,
        )
    same_content = find_by_digest(session, digest)
    if same_content is not None:
        raise BundleConflictError(
            f"content with digest {digest} is already registered as "
            f"{same_content.app}@{same_content.version}; it cannot also be {app}@{version}. "
            "Use the registered version or change the bundle",
            existing_digest=digest,
            new_digest=digest,
        )
    stored = set(session.scalars(select(BlobRow.sha256).where(BlobRow.sha256.in_(set(files.values())))))
    missing = sorted({sha for sha in files.values() if sha not in stored and sha not in blobs})
    if missing:
        raise BundleValidationError(
            [f"files: blob {sha} is neither passed in blobs nor stored; pass its bytes" for sha in missing],
            app=app,
            version=version,
        )
    for sha in sorted(set(files.values()) - stored):
        # Content-addressed: a blob another bundle already stored is shared, never written twice.
        session.add(BlobRow(sha256=sha, size=len(blobs[sha]), data=bytes(blobs[sha])))
    if status is BundleStatus.PRODUCTION:
        ensure_no_other_production(session, app, digest)
    row = BundleRow(
        app=app,
        version=version,
        digest=digest,
        status=status.value,
        manifest=audit.canonical_data(manifest, subject=bundle_subject(app, version)),
        files=dict(files),
        registered_at=now,
        status_changed_at=now,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        occurred_at=now,
        actor=actor,
        reason=audit.Reason.BUNDLE_REGISTERED,
        subject=bundle_subject(app, version),
        data={"app": app, "version": version, "digest": digest, "status": status.value, "files": dict(files)},
        migration_id=migration_id,
    )
    return RegisteredBundle.from_row(row)


def ensure_no_other_production(session: Session, app: str, digest: str) -> None:
    """Raise IllegalTransitionError when another bundle of ``app`` is already in production."""
    current = production_row(session, app)
    if current is not None and current.digest != digest:
        raise IllegalTransitionError(
            f"app {app!r} already has production bundle {current.version} ({current.digest}); at most one "
            "production bundle per app: use Store.promote (it retires the old one) or retire it first",
            app=app,
            production_digest=current.digest,
        )


def change_status(
    session: Session,
    row: BundleRow,
    new: BundleStatus,
    *,
    now: datetime,
    actor: str,
    reason: str,
    migration_id: str | None,
    evidence: Mapping[str, Any],
    audit_reason: audit.Reason = audit.Reason.BUNDLE_STATUS_CHANGED,
    check: bool = True,
) -> RegisteredBundle:
    """Move ``row`` to ``new`` (checked against the transition table unless ``check`` is False), audited."""
    current = BundleStatus(row.status)
    subject = bundle_subject(row.app, row.version)
    if check:
        check_transition(current, new, subject=f"{subject} ({row.digest})")
    if new is BundleStatus.PRODUCTION:
        ensure_no_other_production(session, row.app, row.digest)
    row.status = new.value
    row.status_changed_at = now
    session.flush()
    audit.append(
        session,
        occurred_at=now,
        actor=actor,
        reason=audit_reason,
        subject=subject,
        data={
            "app": row.app,
            "version": row.version,
            "digest": row.digest,
            "from": current.value,
            "to": new.value,
            "why": reason,
            "evidence": dict(evidence),
        },
        migration_id=migration_id,
    )
    return RegisteredBundle.from_row(row)
