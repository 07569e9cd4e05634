"""Evaluate tasks: run the candidate against its baseline on the golden data, then settle the candidate.

``evaluate_candidate`` runs both bundles through the orchestrator in the ``evaluation-fanout`` subflow
(``tasks/fanout.py``: one shard per deployment, on Prefect's thread pool or, with
``MODELSHIFT_TASK_RUNNER=dask``, on a Dask cluster), then the gate and the evaluation record
(:func:`modelshift.evaluation.pair.judge_pair`), and returns an
:class:`~modelshift.evaluation.stage.EvaluationSummary`; when an earlier run already recorded this exact
(candidate, baseline) pair it uses that record and runs nothing. Progress goes to Prefect progress artifacts
(the evaluation's and one per shard), the GateReport to a table and a markdown artifact, all keyed with the
migration id. ``settle_candidate`` marks a passing candidate ``evaluated``, or deletes a failing one's
side-by-side deployment and marks it ``rejected``.
"""

from __future__ import annotations

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
from modelshift.evaluation.pair import PairResult, bundle_dataset, check_pair, judge_pair, plan_shards
from modelshift.evaluation.pricing import price_table_from_settings
from modelshift.evaluation.report import GateReport
from modelshift.evaluation.runner import BundleRun
from modelshift.evaluation.stage import (
    EvaluationSummary,
    accept_candidate,
    latest_record,
    record_report,
    reject_candidate,
    summarize,
    summary_from_record,
)
from modelshift.platforms.azure import arm_client
from modelshift.prepare.baseline import load_baseline
from modelshift.settings import Settings, get_settings
from modelshift.store import Store
from tasks.fanout import HTTP_TIMEOUT_S, run_fanout
from tasks.report import artifact_key
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, retry_condition_fn


class Settlement(BaseModel):
    """What became of the candidate bundle after the gate."""

    status: str
    deleted_deployment: str | None = None
    kept_because: str | None = None


def _judge(
    settings: Settings,
    baseline_digest: str,
    candidate_digest: str,
    runs: dict[str, BundleRun],
    *,
    migration_id: str,
    actor: str,
) -> PairResult:
    with Store.open(settings.resolved_database_url) as store:
        baseline = load_baseline(store, baseline_digest, settings.bundles_dir)[1]
        candidate = load_baseline(store, candidate_digest, settings.bundles_dir)[1]
        return judge_pair(
            baseline,
            candidate,
            (runs[baseline_digest], runs[candidate_digest]),
            bundle_dataset(candidate),
            settings=settings,
            store=store,
            prices=price_table_from_settings(settings),
            actor=actor,
            migration_id=migration_id,
        )


def _shards(settings: Settings, baseline_digest: str, candidate_digest: str) -> list[list[str]]:
    # loading both here also materializes their checkouts once, before any shard needs them
    with Store.open(settings.resolved_database_url) as store:
        baseline = load_baseline(store, baseline_digest, settings.bundles_dir)[1]
        candidate = load_baseline(store, candidate_digest, settings.bundles_dir)[1]
    check_pair(baseline, candidate)
    return [[bundle.digest for bundle in shard] for shard in plan_shards((baseline, candidate))]


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
    artifact = create_progress_artifact(
        0.0, key=artifact_key("evaluation-progress", migration_id), description=f"evaluating {name}"
    )
    # sync tasks get the id itself; the union in Prefect's signature covers async callers
    assert isinstance(artifact, UUID)
    shards = _shards(settings, baseline_digest, candidate_digest)
    logger.info("evaluating %s in %d shard(s) (one per deployment)", name, len(shards))
    runs = run_fanout(shards, candidate_digest, migration_id)
    result = _judge(settings, baseline_digest, candidate_digest, runs, migration_id=migration_id, actor=actor)
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
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
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
