"""``modelshift audit show|verify``: read and check the hash-chained audit log."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from modelshift.cli._common import (
    EXIT_FAILED,
    JsonOption,
    command,
    console,
    err_console,
    open_store,
    print_json,
)

app = typer.Typer(help="Show and verify the append-only, hash-chained audit log.", no_args_is_help=True)


@app.command()
@command
def show(
    migration: str | None = typer.Option(None, "--migration", help="Only the events of this migration id."),
    as_json: bool = JsonOption,
) -> None:
    """List audit events, oldest first."""
    store = open_store()
    events = store.audit_events(migration_id=migration)
    rows: list[dict[str, Any]] = [
        {
            "seq": e.seq,
            "occurred_at": e.occurred_at,
            "migration_id": e.migration_id,
            "actor": e.actor,
            "reason": str(e.reason),
            "subject": e.subject,
            "data": e.data,
            "hash": e.hash,
        }
        for e in events
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("seq", "time", "migration", "actor", "reason", "subject", "data")
    for row in rows:
        table.add_row(
            str(row["seq"]),
            str(row["occurred_at"])[:19],
            row["migration_id"] or "",
            row["actor"],
            row["reason"],
            row["subject"],
            json.dumps(row["data"], sort_keys=True)[:80],
        )
    console.print(table)


@app.command()
@command
def verify(as_json: bool = JsonOption) -> None:
    """Recompute the hash chain; exit 1 naming the first bad seq if a row was altered, removed, reordered."""
    from modelshift.audit import verify as verify_chain

    store = open_store()
    result = verify_chain(store)
    if as_json:
        print_json(result)
    elif result.ok:
        console.print(f"[green]audit chain verifies[/]: {result.count} event(s)")
    else:
        err_console.print(
            f"[bold red]audit chain is broken[/] at seq {result.first_bad_seq}: {result.problem}",
            highlight=False,
        )
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)
