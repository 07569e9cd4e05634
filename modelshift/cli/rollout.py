"""``modelshift promote APP`` and ``modelshift rollback APP``: a person's overrides of a running canary;
``modelshift sweep``: delete retired bundles' deployments once their grace period is over.

Both act on the app's bundle in canary, are idempotent through the store (a second call finds nothing in
canary and says so, exit 1, changing nothing), and are audited with the actor from MODELSHIFT_ACTOR.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from modelshift.cli._common import JsonOption, command, console, open_store, print_json, settings

_REASON = typer.Option("manual override", "--reason", help="Why; recorded in the audit chain.")
_KEEP = typer.Option(
    False, "--keep-deployment", help="Do not delete the rolled-back or retired bundle's deployment."
)


@contextmanager
def _applier(keep_deployment: bool) -> Iterator[Any]:
    """An Applier on the settings' store, with an ARM client for deployment deletion unless kept."""
    import httpx

    from modelshift.platforms import azure
    from modelshift.rollout.apply import Applier, DeploymentRemover, StoreRouterBackend

    cfg = settings()
    store = open_store(cfg)
    try:
        with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
            arm = None if keep_deployment else azure.arm_client(cfg, client=client)
            yield Applier(
                store=store,
                backend=StoreRouterBackend(store, actor=cfg.actor),
                remover=DeploymentRemover(arm),
                actor=cfg.actor,
                grace_seconds=cfg.retire_grace_seconds,
            )
    finally:
        store.close()


def rollback(
    app_name: str = typer.Argument(..., metavar="APP", help="The app whose canary goes back to production."),
    reason: str = _REASON,
    keep_deployment: bool = _KEEP,
    as_json: bool = JsonOption,
) -> None:
    """Route 100 % back to production, mark the canary rolled_back and delete its deployment; audited."""
    from modelshift.clock import utcnow
    from modelshift.rollout.apply import manual_roll_back

    with _applier(keep_deployment) as applier:
        candidate, removed = manual_roll_back(applier, app_name, reason=reason, now=utcnow())
        router = applier.store.get_router(app_name)
    result = {
        "app": app_name,
        "rolled_back": f"{candidate.app}@{candidate.version}",
        "digest": candidate.digest,
        "router": router.weights,
        "revision": router.revision,
        "deleted_deployments": removed,
        "actor": applier.actor,
    }
    if as_json:
        print_json(result)
        return
    console.print(
        f"[yellow]rolled back[/] {result['rolled_back']}: all traffic on production "
        f"(router revision {router.revision}); deleted deployments: {', '.join(removed) or 'none'}",
        highlight=False,
    )


def promote(
    app_name: str = typer.Argument(..., metavar="APP", help="The app whose canary becomes production."),
    reason: str = _REASON,
    keep_deployment: bool = _KEEP,
    as_json: bool = JsonOption,
) -> None:
    """Make the canary production at 100 % now and retire the old production bundle; audited."""
    from modelshift.clock import utcnow
    from modelshift.rollout.apply import manual_promote

    with _applier(keep_deployment) as applier:
        if keep_deployment:
            applier.grace_seconds = 0.0  # nothing will be deleted: no grace period to report
        candidate, outcome = manual_promote(applier, app_name, reason=reason, now=utcnow())
        router = applier.store.get_router(app_name)
    result = {
        "app": app_name,
        "promoted": f"{candidate.app}@{candidate.version}",
        "digest": candidate.digest,
        "router": router.weights,
        "revision": router.revision,
        "deleted_deployments": list(outcome.removed_deployments),
        "baseline_deployment_due_for_deletion": None
        if outcome.delete_after is None
        else {"digest": outcome.retire_digest, "after": outcome.delete_after.isoformat()},
        "actor": applier.actor,
    }
    if as_json:
        print_json(result)
        return
    due = result["baseline_deployment_due_for_deletion"]
    tail = (
        "" if due is None else f"; the retired bundle's deployment is due for deletion after {due['after']}"
    )
    console.print(
        f"[green]promoted[/] {result['promoted']}: 100 % of traffic (router revision {router.revision})"
        f"{tail}",
        highlight=False,
    )


def sweep(
    app_name: str | None = typer.Option(None, "--app", help="Only this app's retired bundles."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report what is due; delete nothing."),
    as_json: bool = JsonOption,
) -> None:
    """Delete retired bundles' deployments whose grace period (MODELSHIFT_RETIRE_GRACE_SECONDS) is over."""
    from modelshift.rollout.sweep import sweep_with_settings

    cfg = settings()
    result = sweep_with_settings(cfg, actor=cfg.actor, dry_run=dry_run, app=app_name)
    rows = [item.row() for item in result.items]
    if as_json:
        print_json({"dry_run": dry_run, "grace_seconds": cfg.retire_grace_seconds, "items": rows})
        return
    if not rows:
        console.print("no retired bundle has a deployment to sweep")
        return
    for row in rows:
        why = f" - {row['reason']}" if row["reason"] else ""
        console.print(
            f"{row['action']:8} {row['app']}@{row['version']} deployment {row['account']}/"
            f"{row['deployment']} (retired {row['retired_at']}, due {row['due_at']}){why}",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add the top-level ``promote``, ``rollback`` and ``sweep`` commands to the ``modelshift`` CLI."""
    app.command("promote")(command(promote))
    app.command("rollback")(command(rollback))
    app.command("sweep")(command(sweep))
