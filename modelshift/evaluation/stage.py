"""The evaluate stage of a migration: library glue around :func:`modelshift.evaluation.pair.evaluate_pair`.

The Prefect task (``tasks/evaluate.py``) and the ``model-migration`` flow call these:

- :func:`summarize` / :func:`summary_from_record`: the small typed outcome of one evaluation, from a fresh
  :class:`~modelshift.evaluation.pair.PairResult` or from the evaluation record an earlier run wrote;
- :func:`latest_record`: that earlier record for exactly this (candidate, baseline) pair, so a re-run of a
  migration whose evaluation finished does not run the candidate again;
- :func:`accept_candidate` (bundle status ``evaluated``) and :func:`reject_candidate` (its side-by-side
  deployment deleted through ARM, status ``rejected``), both audited with the gate's evidence and both safe
  to repeat.

The stage runs unless ``MODELSHIFT_STOP_AFTER`` ends the migration earlier (plan or prepare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelshift.bundle import Bundle
from modelshift.evaluation.pair import PairResult
from modelshift.evaluation.report import GateReport
from modelshift.platforms.base import AccountRef, Deployments
from modelshift.store import Store
from modelshift.store.engine import run_read
from modelshift.store.models import EvaluationRecordRow
from modelshift.store.records import EvaluationRecord
from modelshift.store.status import BundleStatus


class EvaluationSummary(BaseModel):
    """What the evaluate stage decided, small enough for a task result and the audit evidence."""

    verdict: str
    passed: bool
    #: the gate's one-line summary (verdict, failing and inconclusive metrics, paired items)
    summary: str
    failing: list[str] = Field(default_factory=list)
    vetoes: list[str] = Field(default_factory=list)
    inconclusive: list[str] = Field(default_factory=list)
    record_id: int | None = None
    baseline_digest: str
    candidate_digest: str
    dataset_digest: str
    paired: int = 0
    failed_items: int = 0
    missing_items: int = 0
    #: model calls this run made (0 when both runs came from the cache or from an earlier record)
    requests: int = 0
    baseline_cached: bool = False
    candidate_cached: bool = False
    #: True when an earlier evaluation record was used and nothing ran
    reused: bool = False

    def evidence(self) -> dict[str, Any]:
        """The audit evidence of the bundle status change and the migration phase."""
        return {
            "verdict": self.verdict,
            "gate": self.summary,
            "failing": self.failing,
            "vetoes": self.vetoes,
            "inconclusive": self.inconclusive,
            "record_id": self.record_id,
            "dataset_digest": self.dataset_digest,
            "paired": self.paired,
        }


def _from_report(report: GateReport, **fields: Any) -> EvaluationSummary:
    return EvaluationSummary(
        verdict=report.verdict.value,
        passed=report.passed,
        summary=report.summary(),
        failing=[r.name for r in report.failing()],
        vetoes=[r.name for r in report.vetoes()],
        inconclusive=[r.name for r in report.inconclusive()],
        paired=report.counts.paired,
        failed_items=report.counts.failed,
        missing_items=report.counts.missing,
        **fields,
    )


def summarize(result: PairResult) -> EvaluationSummary:
    """The summary of a fresh evaluation."""
    return _from_report(
        result.report,
        record_id=result.record.id if result.record is not None else None,
        baseline_digest=result.baseline.bundle_digest,
        candidate_digest=result.candidate.bundle_digest,
        dataset_digest=result.candidate.dataset_digest,
        requests=sum(run.stats.requests for run in (result.baseline, result.candidate) if not run.cached),
        baseline_cached=result.baseline.cached,
        candidate_cached=result.candidate.cached,
    )


def record_report(record: EvaluationRecord) -> GateReport:
    """The GateReport an evaluation record stores."""
    return GateReport.model_validate(record.report)


def summary_from_record(record: EvaluationRecord) -> EvaluationSummary:
    """The summary of an evaluation an earlier run recorded (``reused``: nothing ran this time)."""
    return _from_report(
        record_report(record),
        record_id=record.id,
        baseline_digest=record.baseline_digest or "",
        candidate_digest=record.bundle_digest,
        dataset_digest=record.dataset_digest,
        baseline_cached=True,
        candidate_cached=True,
        reused=True,
    )


def latest_record(store: Store, candidate_digest: str, baseline_digest: str) -> EvaluationRecord | None:
    """The newest evaluation record of exactly this candidate against exactly this baseline, if any."""
    query = (
        select(EvaluationRecordRow)
        .where(
            EvaluationRecordRow.bundle_digest == candidate_digest,
            EvaluationRecordRow.baseline_digest == baseline_digest,
        )
        .order_by(EvaluationRecordRow.id.desc())
        .limit(1)
    )

    def work(session: Session) -> EvaluationRecord | None:
        row = session.scalars(query).first()
        return None if row is None else EvaluationRecord.from_row(row)

    return run_read(store.engine, work, url=store.engine.url)


def accept_candidate(
    store: Store, summary: EvaluationSummary, *, actor: str, migration_id: str | None
) -> BundleStatus:
    """Candidate -> ``evaluated`` with the gate's evidence; a candidate already evaluated is left as it is."""
    current = BundleStatus(store.get_bundle_by_digest(summary.candidate_digest).status)
    if current is not BundleStatus.CANDIDATE:
        return current
    store.set_status(
        summary.candidate_digest,
        BundleStatus.EVALUATED,
        actor=actor,
        reason=f"offline gate passed: {summary.summary}",
        migration_id=migration_id,
        evidence=summary.evidence(),
    )
    return BundleStatus.EVALUATED


@dataclass(frozen=True)
class Rejection:
    """What :func:`reject_candidate` did to the candidate's deployment and status."""

    status: BundleStatus
    #: the deployment deleted (or found already gone), None when none was deleted
    deleted_deployment: str | None
    #: why no deployment was deleted, None when one was
    kept_because: str | None = None


def _account(bundle: Bundle) -> AccountRef | None:
    m = bundle.manifest.model
    if m.platform != "azure-openai" or not (m.subscription and m.resource_group and m.account):
        return None
    return AccountRef(subscription_id=m.subscription, resource_group=m.resource_group, name=m.account)


def reject_candidate(
    store: Store,
    deployments: Deployments,
    candidate: Bundle,
    baseline: Bundle,
    summary: EvaluationSummary,
    *,
    actor: str,
    migration_id: str | None,
) -> Rejection:
    """Delete the candidate's side-by-side deployment, then candidate -> ``rejected`` with the evidence.

    The baseline's own deployment is never deleted (a candidate that reuses it keeps it). Repeating the call
    is safe: a deployment already gone is fine and a rejected candidate stays rejected."""
    account = _account(candidate)
    name = candidate.manifest.model.deployment
    kept: str | None = None
    if account is None or not name:
        where = candidate.manifest.model.platform
        kept = f"{candidate.app}@{candidate.version} names no azure-openai deployment (platform {where})"
    elif _account(baseline) == account and baseline.manifest.model.deployment == name:
        kept = f"deployment {name} is the baseline's own deployment"
    else:
        deployments.delete(account, name)
    current = BundleStatus(store.get_bundle_by_digest(candidate.digest).status)
    if current is not BundleStatus.REJECTED:
        store.set_status(
            candidate.digest,
            BundleStatus.REJECTED,
            actor=actor,
            reason=f"offline gate {summary.verdict}: {summary.summary}",
            migration_id=migration_id,
            evidence={**summary.evidence(), "deployment_deleted": None if kept else name, "kept": kept},
        )
    return Rejection(
        status=BundleStatus.REJECTED, deleted_deployment=None if kept else name, kept_because=kept
    )
