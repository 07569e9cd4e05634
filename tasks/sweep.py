"""The retirement sweep as a task of the ``retirement-scan`` flow (see ``modelshift.rollout.sweep``)."""

from __future__ import annotations

import httpx
from prefect import task

from modelshift.clock import utcnow
from modelshift.platforms import azure
from modelshift.rollout.sweep import sweep_retired
from modelshift.settings import get_settings
from modelshift.store import Store
from tasks.retry import retry_condition_fn


@task(name="sweep-retired-deployments", retries=3, retry_condition_fn=retry_condition_fn)
def sweep_deployments(actor: str = "retirement-scan") -> list[dict[str, str]]:
    """Delete retired bundles' deployments whose grace period is over; one row per retired deployment."""
    settings = get_settings()
    with (
        Store.open(settings.resolved_database_url) as store,
        httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client,
    ):
        result = sweep_retired(
            store,
            azure.arm_client(settings, client=client),
            now=utcnow(),
            grace_seconds=settings.retire_grace_seconds,
            actor=actor,
        )
    return [item.row() for item in result.items if item.action != "gone"]
