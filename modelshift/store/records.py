"""Plain, immutable values the store hands out; no ORM object ever leaves a store transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelshift.store.models import BundleRow, EvaluationRecordRow
from modelshift.store.status import BundleStatus


@dataclass(frozen=True)
class RegisteredBundle:
    """A bundle as the store knows it: identity, content map and current status."""

    id: int
    app: str
    version: str
    digest: str
    status: BundleStatus
    manifest: dict[str, Any]
    #: logical key (e.g. ``prompts/system.md``) -> sha256 of the blob holding its bytes
    files: dict[str, str]
    registered_at: datetime
    status_changed_at: datetime

    @classmethod
    def from_row(cls, row: BundleRow) -> RegisteredBundle:
        """Copy a row out of its session."""
        return cls(
            id=row.id,
            app=row.app,
            version=row.version,
            digest=row.digest,
            status=BundleStatus(row.status),
            manifest=dict(row.manifest),
            files={str(k): str(v) for k, v in row.files.items()},
            registered_at=row.registered_at,
            status_changed_at=row.status_changed_at,
        )


@dataclass(frozen=True)
class RouterState:
    """An app's traffic split: bundle digest -> whole percent (only entries > 0), with its CAS revision."""

    app: str
    revision: int
    weights: dict[str, int] = field(default_factory=dict)
    lease_expires_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class EvaluationRecord:
    """One stored evaluation outcome for an exact bundle digest."""

    id: int
    bundle_digest: str
    dataset_digest: str
    baseline_digest: str | None
    passed: bool
    verdict: str
    report: dict[str, Any]
    actor: str
    migration_id: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: EvaluationRecordRow) -> EvaluationRecord:
        """Copy a row out of its session."""
        return cls(
            id=row.id,
            bundle_digest=row.bundle_digest,
            dataset_digest=row.dataset_digest,
            baseline_digest=row.baseline_digest,
            passed=row.passed,
            verdict=row.verdict,
            report=dict(row.report),
            actor=row.actor,
            migration_id=row.migration_id,
            created_at=row.created_at,
        )
