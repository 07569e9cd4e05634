"""The launch task: start one ``model-migration`` deployment run through the Prefect API (idempotent)."""

from __future__ import annotations

from prefect import task

from modelshift.launcher import LaunchedRun, start_deployment_run
from modelshift.migration.params import MigrationParams
from tasks.retry import retry_condition_fn


@task(name="start-migration-run", retries=3, retry_delay_seconds=5, retry_condition_fn=retry_condition_fn)
def start_migration_run(params: MigrationParams, prefect_key: str) -> LaunchedRun:
    """Create the migration's flow run (the same key returns the same run); do not wait for it."""
    return start_deployment_run(params, idempotency_key=prefect_key)
