"""``modelshift notices parse FILE`` and ``modelshift notices serve``: Azure Service Health notices.

Register with ``app.add_typer(notices.app, name="notices")`` in ``modelshift/cli/__init__.py``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
import typer
from rich.table import Table

from modelshift.cli._common import (
    JsonOption,
    command,
    console,
    err_console,
    fail,
    open_store,
    print_json,
    settings,
)
from modelshift.clock import utcnow
from modelshift.notices import (
    Dispatcher,
    InProcessDispatcher,
    PrefectEventDispatcher,
    classify,
    parse_notice,
)

app = typer.Typer(
    help="Parse Azure Service Health notices and serve the notice webhook.", no_args_is_help=True
)


@app.command()
@command
def parse(
    file: Path = typer.Argument(
        ..., help="A webhook body as Azure posts it (common or legacy alert schema)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Print the parsed notice and its classification (exit 2 when the file is not a notice we can read)."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}; pass the path of a saved webhook body")
    notice = parse_notice(raw)
    verdict = classify(notice)
    if as_json:
        print_json(
            {"notice": notice, "key": notice.key, "notice_id": notice.notice_id, "classification": verdict}
        )
        return
    table = Table(show_header=False, title=f"{file.name}: {verdict.kind}")
    rows = [
        ("classification", f"{verdict.kind}: {verdict.reason}"),
        ("schema", str(notice.schema_id)),
        ("tracking id", notice.tracking_id or "-"),
        ("incident type / stage", f"{notice.incident_type or '-'} / {notice.stage or '-'}"),
        ("title", notice.title or "-"),
        ("services", ", ".join(notice.services) or "-"),
        ("regions", ", ".join(notice.regions) or "-"),
        ("impact start", notice.impact_start.isoformat() if notice.impact_start else "-"),
        ("subscriptions", ", ".join(notice.subscription_ids) or "-"),
        ("retirement dates", ", ".join(d.isoformat() for d in notice.retirement_dates) or "-"),
        ("key", notice.key),
    ]
    for label, value in rows:
        table.add_row(label, value)
    for model in notice.models:
        role = "replacement" if model.replacement else "retires " + (str(model.retirement_date or "?"))
        table.add_row("model", f"{model.ref}  ({role})")
    console.print(table)


def _prefect_dispatcher(api_url: str) -> Dispatcher:
    # PREFECT_API_AUTH_STRING is OSS basic auth ("user:pass"); PREFECT_API_KEY is a Cloud bearer key
    auth_string = os.environ.get("PREFECT_API_AUTH_STRING", "")
    auth: httpx.Auth | None = None
    headers: dict[str, str] = {}
    if ":" in auth_string:
        user, _, password = auth_string.partition(":")
        auth = httpx.BasicAuth(user, password)
    elif os.environ.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['PREFECT_API_KEY']}"
    client = httpx.Client(timeout=httpx.Timeout(10.0), headers=headers)
    return PrefectEventDispatcher(api_url, client, auth, clock=utcnow)


@app.command()
@command
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 behind a proxy)."),
    port: int = typer.Option(8090, "--port", help="TCP port."),
) -> None:
    """Serve POST /notices/azure?token=SECRET (needs MODELSHIFT_WEBHOOK_SECRET) and GET /healthz."""
    import uvicorn

    from modelshift.notices.store import StoreNoticeLog
    from modelshift.notices.webhook import create_app, require_secret

    cfg = settings()
    require_secret(cfg)  # before opening anything: no secret, no server
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_url = os.environ.get("PREFECT_API_URL", "").strip()
    if api_url:
        dispatcher = _prefect_dispatcher(api_url)
        where = f"Prefect events API at {api_url}/events"
    else:
        from modelshift.launcher import scan_for_notice

        dispatcher = InProcessDispatcher(scan_for_notice(cfg))
        where = "in-process scan (no PREFECT_API_URL)"
    store = open_store(cfg)
    notice_log = StoreNoticeLog(store, clock=utcnow)
    err_console.print(f"notice webhook on http://{host}:{port}/notices/azure?token=… dispatching to {where}")
    try:
        uvicorn.run(create_app(cfg, notice_log, dispatcher, utcnow), host=host, port=port, log_level="info")
    finally:
        if isinstance(dispatcher, InProcessDispatcher):
            dispatcher.close()
        store.close()
