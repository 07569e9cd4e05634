"""Evaluation runs and per-item results in the state store.

Two tables (created by the Alembic migration ``0007_evaluation_runs``; the row classes register on the
store's declarative ``Base`` so both describe the same columns):

- ``evaluation_runs``: the raw outcomes of one bundle on one dataset, unique per (bundle digest, dataset
  digest, evaluator version). This is the baseline cache: a second migration, or a second candidate against
  the same baseline, reads the baseline's outcomes instead of paying for the calls again. Metrics are
  computed from the outcomes each time, so a metric fix does not need a new run.
- ``evaluation_items``: the scored per-item table of one evaluation record (both sides), next to the
  ``evaluation_records`` row that :meth:`Store.record_evaluation` writes and audits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

# The store package must initialise before anything that imports modelshift.audit (import cycle otherwise).
from modelshift.store.store import Store

# isort: split
from modelshift.clock import Clock, utcnow
from modelshift.errors import ConfigError
from modelshift.evaluation.report import GateReport
from modelshift.evaluation.results import ItemResult
from modelshift.evaluation.runner import BundleRun, ItemOutcome, RunStats
from modelshift.store.engine import run_read, run_write
from modelshift.store.models import DIGEST_LEN, Base
from modelshift.store.records import EvaluationRecord

SIDES = ("baseline", "candidate")
T = TypeVar("T")


class EvaluationRunRow(Base):
    """The outcomes of one bundle on one dataset, measured by one evaluator version."""

    __tablename__ = "evaluation_runs"
    # named by hand: the convention's name would pass PostgreSQL's 63-character limit
    __table_args__ = (
        UniqueConstraint(
            "bundle_digest", "dataset_digest", "evaluator_version", name="uq_evaluation_runs_key"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bundle_digest: Mapped[str] = mapped_column(String(DIGEST_LEN))
    dataset_digest: Mapped[str] = mapped_column(String(DIGEST_LEN))
    evaluator_version: Mapped[str] = mapped_column(String(64))
    outcomes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    stats: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class EvaluationItemRow(Base):
    """One golden item's scored result on one side of one evaluation record."""

    __tablename__ = "evaluation_items"

    record_id: Mapped[int] = mapped_column(Integer, ForeignKey("evaluation_records.id"), primary_key=True)
    side: Mapped[str] = mapped_column(String(16), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(200))
    result: Mapped[dict[str, Any]]


def _run_from_row(row: EvaluationRunRow) -> BundleRun:
    stats = RunStats(**{k: v for k, v in row.stats.items() if k in RunStats.__dataclass_fields__})
    return BundleRun(
        bundle_digest=row.bundle_digest,
        dataset_digest=row.dataset_digest,
        evaluator_version=row.evaluator_version,
        outcomes=tuple(ItemOutcome.from_json(o) for o in row.outcomes),
        stats=stats,
        cached=True,
    )


class EvaluationStore:
    """Cached runs and per-item tables of one state store."""

    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self._store = store
        self._clock = clock

    def _read(self, fn: Callable[[Session], T]) -> T:
        return run_read(self._store.engine, fn, url=self._store.engine.url)

    def cached_run(self, bundle_digest: str, dataset_digest: str, evaluator_version: str) -> BundleRun | None:
        """The stored run for exactly this key (``cached=True``), or None."""

        def work(session: Session) -> BundleRun | None:
            query = select(EvaluationRunRow).where(
                EvaluationRunRow.bundle_digest == bundle_digest,
                EvaluationRunRow.dataset_digest == dataset_digest,
                EvaluationRunRow.evaluator_version == evaluator_version,
            )
            row = session.scalars(query).first()
            return None if row is None else _run_from_row(row)

        return self._read(work)

    def save_run(self, run: BundleRun) -> bool:
        """Store ``run`` under its key; False when it is already stored (the first one is kept)."""
        if run.failed:
            raise ConfigError(
                f"run of {run.bundle_digest} has {len(run.failed)} failed item(s) and is not cached; "
                "only complete runs may stand in for a baseline"
            )
        stats = {k: getattr(run.stats, k) for k in RunStats.__dataclass_fields__}

        def work(session: Session) -> bool:
            existing = session.scalars(
                select(EvaluationRunRow.id).where(
                    EvaluationRunRow.bundle_digest == run.bundle_digest,
                    EvaluationRunRow.dataset_digest == run.dataset_digest,
                    EvaluationRunRow.evaluator_version == run.evaluator_version,
                )
            ).first()
            if existing is not None:
                return False
            session.add(
                EvaluationRunRow(
                    bundle_digest=run.bundle_digest,
                    dataset_digest=run.dataset_digest,
                    evaluator_version=run.evaluator_version,
                    outcomes=[o.to_json() for o in run.outcomes],
                    stats=stats,
                    created_at=self._clock(),
                )
            )
            return True

        try:
            return run_write(self._store.engine, work, url=self._store.engine.url)
        except IntegrityError:  # another writer stored the same key between our check and insert
            return False

    def record(
        self,
        *,
        baseline: BundleRun,
        candidate: BundleRun,
        baseline_items: Sequence[ItemResult],
        candidate_items: Sequence[ItemResult],
        report: GateReport,
        actor: str,
        migration_id: str | None = None,
    ) -> EvaluationRecord:
        """Record the gate's outcome for the candidate (audited by the store) and its per-item table."""
        if baseline.dataset_digest != candidate.dataset_digest:
            raise ConfigError(
                f"baseline was run on dataset {baseline.dataset_digest} and the candidate on "
                f"{candidate.dataset_digest}; evaluate both on the same golden data"
            )
        record = self._store.record_evaluation(
            candidate.bundle_digest,
            candidate.dataset_digest,
            report.passed,
            report.verdict.value,
            report.model_dump(mode="json"),
            baseline_digest=baseline.bundle_digest,
            actor=actor,
            migration_id=migration_id,
        )
        rows = [
            EvaluationItemRow(
                record_id=record.id,
                side=side,
                position=position,
                item_id=item.item_id,
                result=item.model_dump(mode="json"),
            )
            for side, items in (("baseline", baseline_items), ("candidate", candidate_items))
            for position, item in enumerate(items)
        ]

        def work(session: Session) -> None:
            session.add_all(rows)

        run_write(self._store.engine, work, url=self._store.engine.url)
        return record

    def items(self, record_id: int) -> dict[str, list[ItemResult]]:
        """The per-item table of an evaluation record: ``{"baseline": [...], "candidate": [...]}``."""

        def work(session: Session) -> dict[str, list[ItemResult]]:
            query = (
                select(EvaluationItemRow)
                .where(EvaluationItemRow.record_id == record_id)
                .order_by(EvaluationItemRow.side, EvaluationItemRow.position)
            )
            out: dict[str, list[ItemResult]] = {side: [] for side in SIDES}
            for row in session.scalars(query):
                out[row.side].append(ItemResult.model_validate(row.result))
            return out

        return self._read(work)
