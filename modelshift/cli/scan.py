"""``modelshift scan`` and ``modelshift plan APP``: the fleet's lifecycle, and one app's migration plan.

Both read production bundles from the state store and the fleet from live ARM, or, given ``--catalog`` /
``--deployments`` / ``--usages`` recordings of ``az rest`` output, from those files with no network at all.
Neither changes anything. Wired into the app with :func:`register`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time

import httpx
import typer
from rich.table import Table

from modelshift.cli._common import JsonOption, command, console, open_store, print_json, settings
from modelshift.clock import utcnow
from modelshift.errors import ConfigError, NotFoundError
from modelshift.lifecycle import (
    DEFAULT_HORIZON_DAYS,
    AsyncArmReader,
    BundleRef,
    FleetSnapshot,
    ScanReport,
    fetch_live,
    load_families,
    load_recordings,
    parse_target,
    plan_migration,
    scan_fleet,
)
from modelshift.store import BundleStatus

AsOfOption = typer.Option(None, "--as-of", help="Assess as of this date (YYYY-MM-DD, UTC); default today.")
CatalogOption = typer.Option(
    None,
    "--catalog",
    help="Recorded `az rest` output of locations/{loc}/models ([LOCATION=]FILE); repeatable.",
)
DeploymentsOption = typer.Option(
    None, "--deployments", help="Recorded `az rest` output of accounts/{acct}/deployments (FILE); repeatable."
)
UsagesOption = typer.Option(
    None, "--usages", help="Recorded `az rest` output of locations/{loc}/usages (LOCATION=FILE); repeatable."
)
_STATUS_STYLE = {
    "retired": "bold red",
    "deployment_missing": "red",
    "retiring": "yellow",
    "unknown_model": "magenta",
    "deprecating": "yellow",
    "upgrade_available": "cyan",
    "ok": "green",
}


def _as_of(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"--as-of {value!r}: expected a date YYYY-MM-DD, e.g. 2026-03-01") from None


def _production_bundles() -> list[BundleRef]:
    with open_store() as store:
        return [BundleRef.from_registered(b) for b in store.list_bundles(status=BundleStatus.PRODUCTION)]


def _snapshot(
    bundles: list[BundleRef],
    catalog: list[str] | None,
    deployments: list[str] | None,
    usages: list[str] | None,
) -> FleetSnapshot:
    if catalog or deployments or usages:
        return load_recordings(catalog or [], deployments or [], usages or [])

    async def live() -> FleetSnapshot:
        async with httpx.AsyncClient(timeout=60) as client:
            return await fetch_live(AsyncArmReader.from_settings(client, settings()), bundles)

    return asyncio.run(live())


def _render_scan(report: ScanReport) -> None:
    table = Table(
        title=f"Lifecycle scan as of {report.as_of.date().isoformat()} (horizon {report.horizon_days} days, "
        f"{report.origin})"
    )
    for column in ("app", "bundle", "model", "deployment", "status", "retires", "days", "risk", "target"):
        table.add_column(column, overflow="fold")
    for row in report.rows:
        risk = "; ".join(
            f"auto-upgrade {r.date.date().isoformat() if r.date else '(any time)'}" for r in row.risks
        )
        if any(f.code == "drift" for f in row.findings):
            risk = "; ".join(x for x in (risk, "drift") if x)
        style = _STATUS_STYLE.get(row.status.value, "")
        table.add_row(
            row.app or "(unmanaged)",
            row.bundle_version or "-",
            str(row.deployed_model or row.pinned_model),
            f"{row.account or '?'}/{row.deployment or '?'}",
            f"[{style}]{row.status.value}[/]" if style else row.status.value,
            row.retirement.date().isoformat() if row.retirement else "-",
            str(row.days_left) if row.days_left is not None else "-",
            risk or "-",
            str(row.target.model) if row.target else "-",
        )
    console.print(table)
    if not report.rows:
        console.print("no production bundles registered and no deployments found")


def register(app: typer.Typer) -> None:
    """Add the top-level ``scan`` and ``plan`` commands to ``app``."""

    @app.command("scan")
    @command
    def scan(
        as_of: str | None = AsOfOption,
        horizon_days: int = typer.Option(
            DEFAULT_HORIZON_DAYS, "--horizon-days", min=0, help="Retiring = retires within this many days."
        ),
        catalog: list[str] | None = CatalogOption,
        deployments: list[str] | None = DeploymentsOption,
        usages: list[str] | None = UsagesOption,
        json_out: bool = JsonOption,
    ) -> None:
        """Assess every production bundle (and unmanaged deployments) against the model catalog."""
        when = _as_of(as_of)
        bundles = _production_bundles()
        snapshot = _snapshot(bundles, catalog, deployments, usages)
        report = scan_fleet(bundles, snapshot, as_of=when, horizon_days=horizon_days)
        if json_out:
            print_json(report)
        else:
            _render_scan(report)

    @app.command("plan")
    @command
    def plan(
        app_name: str = typer.Argument(..., metavar="APP", help="The app whose migration to plan."),
        target: str | None = typer.Option(None, "--target", help="Target model NAME@VERSION."),
        as_of: str | None = AsOfOption,
        catalog: list[str] | None = CatalogOption,
        deployments: list[str] | None = DeploymentsOption,
        usages: list[str] | None = UsagesOption,
        json_out: bool = JsonOption,
    ) -> None:
        """Print the migration plan for APP's production bundle, changing nothing."""
        when = _as_of(as_of)
        explicit = parse_target(target) if target else None
        families = load_families(settings().families_file)
        bundle = next((b for b in _production_bundles() if b.app == app_name), None)
        if bundle is None:
            raise NotFoundError(
                f"app {app_name!r} has no production bundle; register and adopt one "
                "(`modelshift bundle register`), or see `modelshift bundle list`"
            )
        snapshot = _snapshot([bundle], catalog, deployments, usages)
        result = plan_migration(bundle, snapshot, families, as_of=when, target=explicit)
        if json_out:
            print_json(result)
        else:
            console.print(result.render_text(), markup=False, highlight=False)


__all__ = ["register"]
