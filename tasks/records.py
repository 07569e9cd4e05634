"""Migration-record tasks: open a migration (idempotent), move it along its phases, decide scan launches.

Each call is one audited transaction in the state store (``modelshift.migration.MigrationStore``)."""

from __future__ import annotations

from typing import Any

from prefect import task

from modelshift.migration import MigrationPhase, MigrationStore, StartResult, idempotency_key
from modelshift.migration.params import MigrationParams
from modelshift.settings import get_settings
from modelshift.store import BundleStatus, Store
from tasks.results import AppAssessment, LaunchDecision
from tasks.retry import retry_condition_fn

_STORE_RETRIES = 3


def _migrations(store: Store) -> MigrationStore:
    return MigrationStore(store)


@task(name="open-migration", retries=_STORE_RETRIES, retry_condition_fn=retry_condition_fn)
def open_migration(
    params: MigrationParams, assessment: AppAssessment, flow_run_id: str | None = None
) -> StartResult:
    """Create the pending record of this migration, or find the one holding the same idempotency key."""
    with Store.open(get_settings().resolved_database_url) as store:
        return _migrations(store).start(
            app=params.app,
            baseline_digest=assessment.baseline_digest or "",
            target=assessment.target,
            trigger=params.trigger,
            reason=params.reason,
            actor=params.actor,
            parameters=params.model_dump(mode="json"),
            dry_run=params.dry_run,
            flow_run_id=flow_run_id,
            evidence={"notice_id": params.notice_id, "bundle_version": assessment.bundle_version},
        )


@task(name="advance-migration", retries=_STORE_RETRIES, retry_condition_fn=retry_condition_fn)
def advance_migration(
    migration_id: str,
    phase: MigrationPhase,
    actor: str,
    evidence: dict[str, Any] | None = None,
    plan: dict[str, Any] | None = None,
) -> MigrationPhase:
    """Move the migration to ``phase`` (audited); an illegal move raises and changes nothing."""
    with Store.open(get_settings().resolved_database_url) as store:
        return (
            _migrations(store).advance(migration_id, phase, actor=actor, evidence=evidence, plan=plan).phase
        )


def decide(migrations: MigrationStore, assessment: AppAssessment) -> LaunchDecision:
    """Start a migration for this app? Not while one is active, nor for a key already held."""
    key = idempotency_key(assessment.app, assessment.baseline_digest or "", assessment.target)
    # A retried key (after failed/cancelled) needs a fresh Prefect key, or run_deployment returns the old run.
    prefect_key = f"model-migration-{key}-{migrations.attempts(key) + 1}"
    held = migrations.holding_key(key)
    if held is not None:
        why = f"migration {held.id} already covers this (phase {held.phase})"
        return LaunchDecision(
            app=assessment.app,
            start=False,
            idempotency_key=key,
            prefect_key=prefect_key,
            why=why,
            existing_migration_id=held.id,
        )
    active = migrations.active_for(assessment.app)
    if active is not None:
        why = f"migration {active.id} to {active.target or 'auto'} is active (phase {active.phase})"
        return LaunchDecision(
            app=assessment.app,
            start=False,
            idempotency_key=key,
            prefect_key=prefect_key,
            why=why,
            existing_migration_id=active.id,
        )
    return LaunchDecision(
        app=assessment.app, start=True, idempotency_key=key, prefect_key=prefect_key, why=assessment.status
    )


@task(name="decide-launch", retries=_STORE_RETRIES, retry_condition_fn=retry_condition_fn)
def decide_launch(assessment: AppAssessment) -> LaunchDecision:
    """Whether the scan should start a migration for this assessed app, and with which keys."""
    with Store.open(get_settings().resolved_database_url) as store:
        return decide(_migrations(store), assessment)


@task(name="bundle-status", retries=_STORE_RETRIES, retry_condition_fn=retry_condition_fn)
def bundle_status(digest: str) -> BundleStatus:
    """The registered bundle's status now (how a canary that ended, or died, left the candidate)."""
    with Store.open(get_settings().resolved_database_url) as store:
        return store.get_bundle_by_digest(digest).status
