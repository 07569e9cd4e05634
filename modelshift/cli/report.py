"""``modelshift report MIGRATION_ID``: (re)generate the self-contained HTML report of one migration.

Writes ``<home>/reports/<migration id>.html`` (or ``--out FILE``) and prints its path; ``--json`` prints the
report's data (the ``MigrationView``) instead of writing HTML. An unknown migration id exits 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from modelshift.cli._common import (
    EXIT_FAILED,
    JsonOption,
    command,
    console,
    fail,
    open_store,
    print_json,
    settings,
)

#: Prefect's own variable for the UI's address; when set, the report links to the migration's flow run
PREFECT_UI_ENV = "PREFECT_UI_URL"


def report(
    migration_id: str = typer.Argument(..., metavar="MIGRATION_ID", help="The migration (see `audit show`)."),
    out: Path | None = typer.Option(
        None, "--out", help="Write the HTML here instead of <home>/reports/<id>.html.", dir_okay=False
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write the migration's report (assessment, plan, prepare, evaluation plots, canary timeline, audit)."""
    from modelshift.errors import NotFoundError
    from modelshift.report import load_migration_view, write_report
    from modelshift.report.html import report_path

    cfg = settings()
    with open_store(cfg) as store:
        try:
            view = load_migration_view(store, migration_id)
        except NotFoundError as exc:
            fail(str(exc), EXIT_FAILED)
    if as_json:
        print_json(view)
        return
    path = out if out is not None else report_path(cfg.home, view.id)
    written = write_report(view, path, prefect_ui_url=os.environ.get(PREFECT_UI_ENV))
    console.print(str(written.resolve()), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the top-level CLI."""
    app.command(name="report")(command(report))
