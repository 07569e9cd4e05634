"""The migration report task: write the HTML report and publish its short form as Prefect artifacts.

``write_migration_report(migration_id)`` is what the ``model-migration`` flow calls at its end (any end:
promoted, rolled back, rejected, failed). It writes ``<home>/reports/<migration id>.html``, publishes the
markdown summary, the evaluation and canary tables and a link to the file, and returns the file's path.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.settings import PREFECT_UI_URL

from modelshift.report import load_migration_view, report_markdown, report_tables, write_report
from modelshift.report.html import report_path
from modelshift.settings import get_settings
from modelshift.store import Store
from tasks.report import artifact_key
from tasks.retry import retry_condition_fn


@task(name="write-migration-report", retries=2, retry_condition_fn=retry_condition_fn)
def write_migration_report(migration_id: str) -> str:
    """Write the migration's HTML report, publish markdown/table/link artifacts; the report's path."""
    settings = get_settings()
    with Store.open(settings.resolved_database_url) as store:
        view = load_migration_view(store, migration_id)
    ui_url = PREFECT_UI_URL.value()
    path = write_report(view, report_path(settings.home, view.id), prefect_ui_url=ui_url).resolve()
    key = artifact_key("migration-report", view.app)
    create_markdown_artifact(
        markdown=report_markdown(view, report_path=str(path)),
        key=key,
        description=f"migration {view.id} of {view.app}: {view.decision.outcome}",
    )
    for name, rows in report_tables(view).items():
        if rows:
            create_table_artifact(
                table=rows,
                key=artifact_key("migration-report", name, view.app),
                description=f"{name} of migration {view.id}",
            )
    create_link_artifact(
        link=path.as_uri(),
        link_text=f"HTML report of migration {view.id}",
        key=artifact_key("migration-report-file", view.app),
        description=f"the self-contained HTML report of migration {view.id} of {view.app}",
    )
    get_run_logger().info("migration report of %s (%s) written to %s", view.app, view.id, path)
    return str(path)
