"""Prepare tasks: validate the golden data, re-run the fine-tune, re-chunk the grounding data, deploy the
target side by side, compose the candidate bundle. Each builds its adapters from settings, calls one
:mod:`modelshift.prepare` function and returns a small typed result; reports go to markdown artifacts (and,
inside the library, to the audit chain)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from pydantic import BaseModel

from modelshift.bundle import Bundle
from modelshift.clock import utcnow
from modelshift.errors import ConfigError
from modelshift.finetune import ResumableFineTuning, is_catalog_bundle
from modelshift.grounding.index import LocalIndexStore
from modelshift.lifecycle import MigrationPlan
from modelshift.platforms.azure import arm_client, openai_client
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.base import (
    AccountRef,
    Deployments,
    FineTuneEvent,
    FineTuneJob,
    FineTuneStatus,
    ModelRef,
)
from modelshift.prepare.baseline import load_baseline
from modelshift.prepare.candidate import CandidateInputs, Rechunked, compose_candidate
from modelshift.prepare.data import validate_golden_data
from modelshift.prepare.deploy import SideBySideRequest, deploy_side_by_side
from modelshift.prepare.finetune import catalog_adapters, poll_policy, rerun_fine_tune
from modelshift.prepare.rechunk import RechunkSettings, rechunk_corpus
from modelshift.settings import Settings, get_settings
from modelshift.store import Store
from modelshift.validation import ValidationReport
from tasks.report import artifact_key
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, retry_condition_fn

_HTTP_TIMEOUT_S = 60.0
#: how far a job's status has come, for the progress artifact (Azure reports no percentage)
_PROGRESS: dict[FineTuneStatus, float] = {
    FineTuneStatus.CREATED: 5.0,
    FineTuneStatus.PENDING: 10.0,
    FineTuneStatus.RUNNING: 50.0,
    FineTuneStatus.PAUSED: 50.0,
    FineTuneStatus.SUCCEEDED: 100.0,
    FineTuneStatus.FAILED: 100.0,
    FineTuneStatus.CANCELLED: 100.0,
}


class FineTuneSummary(BaseModel):
    """The re-run's job and the deployment of the fine-tuned model."""

    job_id: str | None
    job_status: str | None
    fine_tuned_model: str
    deployment: str
    events_streamed: int = 0


class RechunkSummary(BaseModel):
    """The new index generation the candidate names."""

    generation: str
    tokenizer: str
    chunk_tokens: int
    overlap_tokens: int
    documents: int
    chunks: int
    reused: bool


class DeploymentSummary(BaseModel):
    """The candidate's side-by-side deployment."""

    deployment: str
    account: str
    model: str
    created: bool


class CandidateSummary(BaseModel):
    """The registered candidate bundle."""

    app: str
    version: str
    digest: str
    baseline_digest: str
    path: str
    prompt_family: str | None
    created: bool


# ------------------------------------------------------------------------------------------- plumbing


def _target(plan: MigrationPlan) -> ModelRef:
    if plan.target is None:
        raise ConfigError(f"the plan for {plan.app} has no target model; plan the migration again")
    return plan.target


def _account(bundle: Bundle) -> AccountRef:
    m = bundle.manifest.model
    if m.platform != "azure-openai" or not (m.subscription and m.resource_group and m.account):
        raise ConfigError(
            f"{bundle.yaml_path}: model.platform: the prepare stage deploys on azure-openai accounts; "
            f"{bundle.app} is on {m.platform}"
        )
    return AccountRef(subscription_id=m.subscription, resource_group=m.resource_group, name=m.account)


@contextmanager
def _arm(settings: Settings) -> Iterator[tuple[httpx.Client, ArmClient]]:
    with httpx.Client(timeout=_HTTP_TIMEOUT_S) as client:
        yield client, arm_client(settings, client=client)


def _endpoint(arm: ArmClient, bundle: Bundle, account: AccountRef) -> str | None:
    if bundle.manifest.model.endpoint:
        return bundle.manifest.model.endpoint
    found = arm.accounts(account.subscription_id, account.resource_group)
    return next((a.endpoint for a in found if a.ref.name == account.name), None)


def _publish_report(report: ValidationReport, app: str) -> None:
    create_markdown_artifact(
        markdown=report.render_markdown(),
        key=artifact_key("gx", report.suite, app),
        description=report.headline()[:500],
    )


def _baseline(store: Store, settings: Settings, digest: str) -> Bundle:
    return load_baseline(store, digest, settings.bundles_dir)[1]


# ---------------------------------------------------------------------------------------------- tasks


@task(name="validate-golden-data", retries=3, retry_condition_fn=retry_condition_fn)
def validate_golden(migration_id: str, baseline_digest: str, actor: str) -> bool:
    """Check the baseline's golden dataset before the evaluation stage relies on it (GX report artifact)."""
    settings = get_settings()
    with Store.open(settings.resolved_database_url) as store:
        baseline = _baseline(store, settings, baseline_digest)
        report = validate_golden_data(
            baseline,
            store=store,
            migration_id=migration_id,
            actor=actor,
            sink=lambda r: _publish_report(r, baseline.app),
        )
    return report.success


@task(
    name="rerun-fine-tune",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def fine_tune(
    migration_id: str, baseline_digest: str, plan_detail: dict[str, Any], actor: str
) -> FineTuneSummary:
    """Re-run the baseline's fine-tune on the plan's target and deploy the result side by side; job events
    go to the run log, the job's status to a progress artifact."""
    logger = get_run_logger()
    settings = get_settings()
    target = _target(MigrationPlan.model_validate(plan_detail))
    created = create_progress_artifact(
        0.0, key=artifact_key("fine-tune", migration_id[:8]), description=f"fine-tune on {target}"
    )
    # sync tasks get the id itself; the union in Prefect's signature covers async callers
    assert isinstance(created, UUID)
    progress = created

    def on_poll(job: FineTuneJob) -> None:
        update_progress_artifact(progress, _PROGRESS.get(job.status, 0.0), f"job {job.id}: {job.status}")

    def on_event(event: FineTuneEvent) -> None:
        logger.info("fine-tune %s: %s", event.level, event.message)

    with Store.open(settings.resolved_database_url) as store, _arm(settings) as (client, arm):
        baseline = _baseline(store, settings, baseline_digest)
        fine_tuning: ResumableFineTuning
        deployments: Deployments
        if is_catalog_bundle(baseline):
            # a catalog model (MaaP): fine-tuned in the bundle's workspace, deployed under its endpoint
            fine_tuning, deployments = catalog_adapters(baseline, settings)
            model = baseline.manifest.model
            where = f"workspace {model.account}, endpoint {model.endpoint} (managed online deployment)"
        else:
            account = _account(baseline)
            fine_tuning = openai_client(_endpoint(arm, baseline, account), settings, client=client)
            deployments, where = arm, f"{account.name} (NoAutoUpgrade)"
        result = rerun_fine_tune(
            store,
            baseline,
            target,
            migration_id=migration_id,
            fine_tuning=fine_tuning,
            deployments=deployments,
            clock=utcnow,
            policy=poll_policy(settings.finetune_poll_seconds),
            actor=actor,
            on_event=on_event,
            on_poll=on_poll,
            sink=lambda r: _publish_report(r, baseline.app),
        )
    update_progress_artifact(progress, 100.0, f"job {result.record.job_id}: {result.record.job_status}")
    record = result.record
    assert record.fine_tuned_model is not None and result.deployment is not None  # run() returns deployed
    summary = FineTuneSummary(
        job_id=record.job_id,
        job_status=record.job_status,
        fine_tuned_model=record.fine_tuned_model,
        deployment=result.deployment.name,
        events_streamed=result.events_streamed,
    )
    create_markdown_artifact(
        markdown=(
            f"# Fine-tune re-run of {baseline.app} on {target}\n\n"
            f"- job: `{summary.job_id}` ({summary.job_status})\n"
            f"- fine-tuned model: `{summary.fine_tuned_model}`\n"
            f"- side-by-side deployment: `{summary.deployment}` in {where}\n"
            f"- job events streamed by this run: {summary.events_streamed}\n"
        ),
        key=artifact_key("fine-tune-report", baseline.app),
        description=f"fine-tune re-run of migration {migration_id}",
    )
    return summary


@task(name="rechunk-grounding", retries=3, retry_condition_fn=retry_condition_fn)
def rechunk(
    migration_id: str, baseline_digest: str, plan_detail: dict[str, Any], actor: str
) -> RechunkSummary:
    """Re-chunk the baseline's corpus for the target into a new local index generation (beside the old)."""
    settings = get_settings()
    plan = MigrationPlan.model_validate(plan_detail)
    if plan.rechunk is None:
        raise ConfigError(f"the plan for {plan.app} has no re-chunk decision; plan the migration again")
    chunking = RechunkSettings.from_plan(plan.rechunk, _target(plan))
    with Store.open(settings.resolved_database_url) as store:
        baseline = _baseline(store, settings, baseline_digest)
        result = rechunk_corpus(
            baseline,
            chunking,
            LocalIndexStore(settings.home, utcnow),
            store=store,
            migration_id=migration_id,
            actor=actor,
            sink=lambda r: _publish_report(r, baseline.app),
        )
    g = result.generation
    old = baseline.manifest.retrieval.index_generation if baseline.manifest.retrieval else None
    summary = RechunkSummary(
        generation=g.generation,
        tokenizer=g.tokenizer,
        chunk_tokens=g.chunk_tokens,
        overlap_tokens=g.overlap_tokens,
        documents=g.documents,
        chunks=g.chunks,
        reused=result.reused,
    )
    create_markdown_artifact(
        markdown=(
            f"# Re-chunked grounding data of {baseline.app}\n\n"
            f"- generation: `{g.generation}`{' (found from an earlier run)' if result.reused else ''}\n"
            f"- tokenizer {g.tokenizer}, {g.chunk_tokens} tokens per chunk, overlap {g.overlap_tokens}\n"
            f"- {g.chunks} chunks from {g.documents} documents\n"
            f"- baseline generation: `{old or 'none'}` (untouched)\n"
            f"\n## Chunk policy (as the plan explained it)\n\n```\n{plan.rechunk.how}\n```\n"
        ),
        key=artifact_key("rechunk", baseline.app),
        description=f"re-chunk of migration {migration_id}",
    )
    return summary


@task(
    name="deploy-side-by-side",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def deploy(
    migration_id: str, baseline_digest: str, plan_detail: dict[str, Any], actor: str
) -> DeploymentSummary:
    """PUT the plan's candidate deployment (target model, NoAutoUpgrade, the baseline's SKU and capacity)."""
    settings = get_settings()
    plan = MigrationPlan.model_validate(plan_detail)
    planned = plan.candidate_deployment
    if planned is None:
        raise ConfigError(f"the plan for {plan.app} names no candidate deployment; plan the migration again")
    with Store.open(settings.resolved_database_url) as store, _arm(settings) as (_, arm):
        baseline = _baseline(store, settings, baseline_digest)
        request = SideBySideRequest(
            account=_account(baseline),
            name=planned.name,
            model=planned.model,
            sku_name=planned.sku_name,
            capacity=planned.capacity,
            baseline_deployment=baseline.manifest.model.deployment,
        )
        result = deploy_side_by_side(arm, request, store=store, migration_id=migration_id, actor=actor)
    d = result.deployment
    return DeploymentSummary(
        deployment=d.name, account=d.account.name, model=str(d.model), created=result.created
    )


@task(name="compose-candidate", retries=3, retry_condition_fn=retry_condition_fn)
def compose(
    migration_id: str,
    baseline_digest: str,
    plan_detail: dict[str, Any],
    deployment: str,
    actor: str,
    fine_tuned_model: str | None = None,
    rechunked: RechunkSummary | None = None,
) -> CandidateSummary:
    """Write and register the candidate bundle (status candidate), audited with both digests."""
    settings = get_settings()
    plan = MigrationPlan.model_validate(plan_detail)
    generation = (
        None
        if rechunked is None
        else Rechunked(
            rechunked.tokenizer, rechunked.chunk_tokens, rechunked.overlap_tokens, rechunked.generation
        )
    )
    inputs = CandidateInputs(
        target=_target(plan), deployment=deployment, fine_tuned_model=fine_tuned_model, rechunked=generation
    )
    with Store.open(settings.resolved_database_url) as store:
        result = compose_candidate(
            store,
            baseline_digest=baseline_digest,
            inputs=inputs,
            bundles_dir=settings.bundles_dir,
            migration_id=migration_id,
            actor=actor,
        )
    family = result.prompt_family
    summary = CandidateSummary(
        app=result.app,
        version=result.version,
        digest=result.digest,
        baseline_digest=result.baseline_digest,
        path=str(result.path),
        prompt_family=result.prompt_family,
        created=result.created,
    )
    create_markdown_artifact(
        markdown=(
            f"# Candidate bundle {result.app}@{result.version}\n\n"
            f"- candidate: `{result.digest}`{'' if result.created else ' (already registered)'}\n"
            f"- baseline: `{result.baseline_digest}`\n"
            f"- model: {inputs.target}, deployment `{deployment}`\n"
            f"- fine-tuned model: {fine_tuned_model or 'n/a'}\n"
            f"- prompts: {('override for ' + family) if family else 'unchanged'}\n"
            f"- index generation: {generation.index_generation if generation else 'unchanged'}\n"
        ),
        key=artifact_key("candidate", result.app),
        description=f"candidate of migration {migration_id}",
    )
    return summary
