"""``modelshift demo``: the whole migration DAG end to end on the embedded default (see modelshift.demo)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the top-level app."""
    from modelshift.demo import run_demo

    @app.command()
    def demo(
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
        scenario: Path | None = typer.Option(
            None,
            "--scenario",
            help="Emulator scenario YAML instead of the packaged default (e.g. to make an outcome fail).",
            exists=True,
            dir_okay=False,
        ),
        only: list[str] = typer.Option(
            [],
            "--only",
            help="Run only this example app's migration (repeatable): support-chat, hr-handbook, "
            "claims-assistant, backup-faq.",
        ),
    ) -> None:
        """Run the whole migration DAG on the local Azure emulator with a fresh store in .modelshift/demo:
        retirement scan, four migrations (three promoted, one rolled back by the canary), audit, reports.
        Exits 0 only if every promised outcome happened."""
        from modelshift.cli._common import handle_errors

        with handle_errors():
            code = run_demo(as_json=as_json, scenario=scenario, only=only)
        raise typer.Exit(code)
