"""Evaluate tasks: run the candidate against its baseline on the golden data, then settle the candidate.

``evaluate_candidate`` builds settings, store and clients, calls
:func:`modelshift.evaluation.pair.evaluate_pair` (both bundles through the orchestrator, the gate, the
evaluation record) and returns an :class:`~modelshift.evaluation.stage.EvaluationSummary`; when an earlier
run already recorded this exact (candidate, baseline) pair it uses that record and runs nothing. Progress goes
to a Prefect progress artifact, the GateReport to a table and a markdown artifact, all keyed with the
migration id. ``settle_candidate`` marks a passing candidate ``evaluated``, or deletes a failing one's
side-by-side deployment and marks it ``rejected``.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from uuid import UUID

import httpx
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from pydantic import BaseModel

from modelshift.audit import Reason
from modelshift.bundle import Bundle
from modelshift.evaluation.pair import PairResult, evaluate_pair
from modelshift.evaluation.pricing import price_table_from_settings
from modelshift.evaluation.report import GateReport
from modelshift.evaluation.runner import Progress
from modelshift.evaluation.stage import (
    EvaluationSummary,
    accept_candidate,
    latest_record,
    record_report,
    reject_candidate,
    summarize,
    summary_from_record,
)
from modelshift.orchestration.connect import EndpointDirectory
from modelshift.platforms.azure import arm_client
from modelshift.prepare.baseline import load_baseline
from modelshift.settings import Settings, get_settings
from modelshift.store import Store
from tasks.report import artifact_key
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, retry_condition_fn

#: seconds a model or ARM call may take before it counts as a transient failure
_HTTP_TIMEOUT_S = 120.0
#: the progress artifact is written at most this often (each write is one Prefect API call)
_PROGRESS_EVERY_S = 1.0


class Settlement(BaseModel):
    """What became of the candidate bundle after the gate."""

    status: str
    deleted_deployment: str | None = None
    kept_because: str | None = None


class _Latest:
    """The newest progress of each side, written by the evaluation thread, read by the task thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sides: dict[str, Progress] = {}

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._sides[progress.bundle] = progress

    def snapshot(self) -> tuple[float, str]:
        """Percent done over both sides, and a one-line description."""
        with self._lock:
            sides = list(self._sides.values())
        total = sum(p.total for p in sides)
        done = sum(p.done for p in sides)
        percent = 100.0 * done / total if total else 0.0
        text = "; ".join(
            f"{p.bundle}: {p.done}/{p.total} ({p.failed} failed, {p.throttled} throttled)" for p in sides
        )
        return percent, text or "starting"


def _evaluate(
    settings: Settings,
    baseline_digest: str,
    candidate_digest: str,
    *,
    migration_id: str,
    actor: str,
    progress: _Latest,
) -> PairResult:
    # runs on its own thread with its own event loop and store connection (the task thread keeps Prefect's
    # context for the progress artifact)
    async def run(store: Store, baseline: Bundle, candidate: Bundle) -> PairResult:
        with httpx.Client(timeout=_HTTP_TIMEOUT_S) as sync_client:
            directory = EndpointDirectory(arm_client(settings, client=sync_client))
            async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_S) as client:
                return await evaluate_pair(
                    baseline,
                    candidate,
                    settings=settings,
                    directory=directory,
                    client=client,
                    store=store,
                    progress=progress,
                    prices=price_table_from_settings(settings),
                    actor=actor,
                    migration_id=migration_id,
                )

    with Store.open(settings.resolved_database_url) as store:
        baseline = load_baseline(store, baseline_digest, settings.bundles_dir)[1]
        candidate = load_baseline(store, candidate_digest, settings.bundles_dir)[1]
        return asyncio.run(run(store, baseline, candidate))


def _publish_report(report: GateReport, summary: EvaluationSummary, migration_id: str, title: str) -> None:
    reused = " (from the evaluation record of an earlier run)" if summary.reused else ""
    header = [
        f"# Offline evaluation: {title}",
        "",
        f"- migration: `{migration_id}`",
        f"- verdict: **{summary.verdict.upper()}**{reused}",
        f"- baseline `{summary.baseline_digest}`, candidate `{summary.candidate_digest}`",
        f"- dataset `{summary.dataset_digest}`, evaluation record {summary.record_id or 'not written'}",
        f"- model calls this run: {summary.requests}",
        "",
    ]
    create_markdown_artifact(
        markdown="\n".join(header) + report.render_markdown(),
        key=artifact_key("evaluation", migration_id),
        description=summary.summary[:500],
    )
    create_table_artifact(
        table=report.table(),
        key=artifact_key("evaluation-metrics", migration_id),
        description=f"gate rows of migration {migration_id}: {summary.verdict}",
    )


@task(
    name="evaluate-candidate",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def evaluate_candidate(
    migration_id: str, baseline_digest: str, candidate_digest: str, actor: str
) -> EvaluationSummary:
    """Candidate vs baseline on the golden data through the gate; an existing record is used instead."""
    logger = get_run_logger()
    settings = get_settings()
    with Store.open(settings.resolved_database_url) as store:
        record = latest_record(store, candidate_digest, baseline_digest)
        title = store.get_bundle_by_digest(candidate_digest)
    name = f"{title.app}@{title.version}"
    if record is not None:
        summary = summary_from_record(record)
        logger.info("%s was evaluated before (record %s): %s", name, record.id, summary.summary)
        _publish_report(record_report(record), summary, migration_id, name)
        return summary
    progress = _Latest()
    artifact = create_progress_artifact(
        0.0, key=artifact_key("evaluation-progress", migration_id), description=f"evaluating {name}"
    )
    # sync tasks get the id itself; the union in Prefect's signature covers async callers
    assert isinstance(artifact, UUID)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate") as pool:
        future = pool.submit(
            _evaluate,
            settings,
            baseline_digest,
            candidate_digest,
            migration_id=migration_id,
            actor=actor,
            progress=progress,
        )
        shown: tuple[float, str] | None = None
        while True:
            try:
                result = future.result(timeout=_PROGRESS_EVERY_S)
                break
            except FutureTimeout:
                now = progress.snapshot()
                if now != shown:  # throttled: at most one write per interval, none when nothing moved
                    update_progress_artifact(artifact, now[0], now[1][:500])
                    shown = now
    summary = summarize(result)
    update_progress_artifact(artifact, 100.0, f"{name}: {summary.summary}"[:500])
    if result.record is None:
        logger.warning("evaluation of %s not recorded: %s", name, result.not_recorded)
    logger.info("evaluation of %s: %s", name, summary.summary)
    _publish_report(result.report, summary, migration_id, name)
    return summary


@task(
    name="settle-candidate",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def settle_candidate(migration_id: str, summary: EvaluationSummary, actor: str) -> Settlement:
    """Passed: candidate -> evaluated. Else its side-by-side deployment is deleted, candidate -> rejected."""
    settings = get_settings()
    with Store.open(settings.resolved_database_url) as store:
        if summary.passed:
            status = accept_candidate(store, summary, actor=actor, migration_id=migration_id)
            return Settlement(status=status.value)
        baseline = load_baseline(store, summary.baseline_digest, settings.bundles_dir)[1]
        candidate = load_baseline(store, summary.candidate_digest, settings.bundles_dir)[1]
        with httpx.Client(timeout=_HTTP_TIMEOUT_S) as client:
            rejection = reject_candidate(
                store,
                arm_client(settings, client=client),
                candidate,
                baseline,
                summary,
                actor=actor,
                migration_id=migration_id,
            )
    return Settlement(
        status=rejection.status.value,
        deleted_deployment=rejection.deleted_deployment,
        kept_because=rejection.kept_because,
    )


@task(name="find-candidate", retries=3, retry_condition_fn=retry_condition_fn)
def candidate_of(migration_id: str) -> str | None:
    """The candidate digest the migration's prepare stage recorded (its ``migration.prepared`` event)."""
    with Store.open(get_settings().resolved_database_url) as store:
        events = store.audit_events(migration_id=migration_id)
    for event in reversed(events):
        if event.reason == Reason.MIGRATION_PREPARED and event.data.get("candidate_digest"):
            return str(event.data["candidate_digest"])
    return None
