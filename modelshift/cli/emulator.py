"""``modelshift emulator``: serve the local Azure emulator (an emulator, never Azure)."""

from __future__ import annotations

from pathlib import Path

import typer

from modelshift.cli._common import command, err_console


def register(app: typer.Typer) -> None:
    """Add the ``emulator`` command to the top-level app."""

    @app.command()
    @command
    def emulator(
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
        port: int = typer.Option(8765, "--port", help="TCP port."),
        scenario: Path | None = typer.Option(
            None, "--scenario", help="Scenario YAML (default: the packaged default scenario)."
        ),
        print_exports: bool = typer.Option(
            False,
            "--print-exports",
            help="Only print the shell exports that point modelshift here, then exit.",
        ),
    ) -> None:
        """Serve the local Azure emulator: ARM + Azure OpenAI data plane with lifecycle, quotas and faults."""
        from modelshift.emulator import serve, shell_exports
        from modelshift.emulator.scenario import load_scenario

        loaded = load_scenario(scenario)  # fail fast, with the file and field, before binding a port
        exports = shell_exports(
            f"http://{host}:{port}",
            api_key=loaded.auth.api_keys[0],
            bearer_token=loaded.auth.bearer_tokens[0],
        )
        if print_exports:
            typer.echo(exports, nl=False)
            return
        err_console.print(
            "[bold]modelshift local Azure emulator[/] (an emulator, not Azure). Point a shell at it:"
        )
        err_console.print(exports, markup=False, highlight=False)
        serve(host, port, scenario)
