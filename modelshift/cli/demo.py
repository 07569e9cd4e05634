"""``modelshift demo``: run what exists of the migration DAG end to end on the embedded default."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the top-level app."""
    from modelshift.demo import run_demo

    @app.command()
    def demo(
        as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    ) -> None:
        """Run the migration demo on the local Azure emulator with a fresh store in .modelshift/demo."""
        from modelshift.cli._common import handle_errors

        with handle_errors():
            code = run_demo(as_json=as_json)
        raise typer.Exit(code)
