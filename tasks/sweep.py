"""The retirement sweep as a task of the ``retirement-scan`` flow (see ``modelshift.rollout.sweep``)."""

from __future__ import annotations

from prefect import task

from modelshift.rollout.sweep import sweep_with_settings
from modelshift.settings import get_settings
from tasks.retry import retry_condition_fn


@task(name="sweep-retired-deployments", retries=3, retry_condition_fn=retry_condition_fn)
def sweep_deployments(actor: str = "retirement-scan") -> list[dict[str, str]]:
    """Delete retired bundles' deployments whose grace period is over; one row per retired deployment."""
    result = sweep_with_settings(get_settings(), actor=actor)
    return [item.row() for item in result.items if item.action != "gone"]
