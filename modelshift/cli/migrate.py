"""``modelshift migrate APP``: run the model-migration flow in this process and print what it did.

Prefect runs ephemerally with ``PREFECT_HOME=<MODELSHIFT_HOME>/prefect`` (never the user's ``~/.prefect``),
unless ``PREFECT_API_URL`` points at a server, where the run then shows up like any other."""

from __future__ import annotations

import typer
from rich.table import Table

from modelshift.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    JsonOption,
    command,
    console,
    err_console,
    open_store,
    print_json,
    settings,
)
from modelshift.errors import NotFoundError
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.migration.phases import MigrationPhase, Trigger


def _print(outcome: MigrationOutcome) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("migration", outcome.migration_id or "-")
    table.add_row("app", outcome.app)
    table.add_row("phase", str(outcome.phase or "-"))
    table.add_row("new", "yes" if outcome.created else "no (same app, baseline and target: nothing started)")
    table.add_row("target", outcome.target or "-")
    table.add_row("note", outcome.message)
    console.print(table)
    if outcome.plan_text:
        console.print(outcome.plan_text, markup=False, highlight=False)


def migrate(
    app: str = typer.Argument(..., help="The app whose production bundle moves to a new model."),
    target: str | None = typer.Option(None, "--target", help="Target model as NAME@VERSION."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Assess and plan only; change nothing."),
    reason: str = typer.Option("requested from the command line", "--reason", help="Why (for the audit)."),
    as_json: bool = JsonOption,
) -> None:
    """Run the model-migration flow for APP (assess, plan, prepare, evaluate) and print its outcome."""
    from pydantic import ValidationError

    from modelshift import launcher

    cfg = settings()
    try:
        params = MigrationParams(
            app=app, target=target, dry_run=dry_run, reason=reason, trigger=Trigger.CLI, actor=cfg.actor
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        err_console.print(f"[bold red]error:[/] {problems}", highlight=False)
        raise typer.Exit(2) from None
    # Fail fast (before Prefect's 5-15 s start-up) on the commonest mistake: an app with no production bundle.
    with open_store(cfg) as store:
        if not store.list_bundles(app=app, status="production"):
            raise NotFoundError(
                f"app {app!r} has no production bundle in {store.url}; register it with "
                "`modelshift bundle register --adopt bundles/<app>/<version>` first",
                app=app,
            )
    launcher.use_local_prefect_home(cfg)
    outcome = launcher.run_migration(params)
    if as_json:
        print_json(outcome)
    else:
        _print(outcome)
    raise typer.Exit(EXIT_FAILED if outcome.phase is MigrationPhase.FAILED else EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add ``migrate`` to the top-level CLI."""
    app.command(name="migrate")(command(migrate))
