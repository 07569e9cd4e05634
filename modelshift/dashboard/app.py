"""The dashboard's HTTP surface (Starlette + Jinja2, server-rendered, no external URL anywhere).

Pages: ``GET /`` (the fleet), ``GET /apps/{app}`` (one app with its actions), ``GET /migrations/{id}`` (one
migration, refreshing itself while it runs), ``GET /migrations/{id}/report`` (its HTML report, when written),
``GET|POST /login``, ``POST /logout``. JSON: ``GET /api/fleet``, ``GET /api/migrations/{id}``. Actions
(``POST /apps/{app}/rollback|approval|dry-run|migrate``) need the operator (see :mod:`.auth`).

Errors a user can cause are 4xx with a message saying what to do: unknown app or migration 404, missing
token 401, bad CSRF 403, a refused state change 409, bad form input 400; the platform or Prefect being
unreachable is 502/503. JSON callers (``/api/...`` or the ``Authorization`` header) get
``{"error": {"code", "message"}}``; browsers get the same message on a page.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from modelshift.clock import Clock
from modelshift.dashboard import actions
from modelshift.dashboard.auth import OPERATOR_HEADER, SESSION_COOKIE, Authenticator, AuthProblem, Operator
from modelshift.dashboard.fleet import Fleet, build_fleet
from modelshift.dashboard.lifecycle import LifecycleCache
from modelshift.dashboard.migration import MigrationPage, load_page
from modelshift.errors import (
    ConfigError,
    MigrationConflictError,
    ModelshiftError,
    NotFoundError,
    PlatformError,
    StateError,
)
from modelshift.lifecycle import BundleRef
from modelshift.migration import MigrationStore
from modelshift.report.html import report_path
from modelshift.settings import Settings
from modelshift.store import BundleStatus, Store

Handler = Callable[[Request], Awaitable[Response]]


def to_jsonable(value: Any) -> Any:
    """An action's result (a dataclass or a pydantic model) as plain JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return value


@dataclass
class Dashboard:
    """What the app serves from: settings, the store, the clock, the lifecycle scan and the operator check."""

    settings: Settings
    store: Store
    clock: Clock
    lifecycle: LifecycleCache
    auth: Authenticator
    #: how a real migration starts: ``deployment`` (Prefect server) or ``in_process``
    start_mode: str = "in_process"
    #: seconds between refreshes of a page showing something in flight
    refresh_seconds: float = 5.0
    #: the Prefect UI base URL, for links to flow runs (none: the run id is shown)
    prefect_ui_url: str | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("modelshift.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


_ENV = _templates()


def _wants_json(request: Request) -> bool:
    return (
        request.url.path.startswith("/api/")
        or "authorization" in request.headers
        or "application/json" in request.headers.get("accept", "")
    )


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, AuthProblem):
        return exc.status, "unauthorized" if exc.status == 401 else "forbidden"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, MigrationConflictError | StateError):
        return 409, "conflict"
    if isinstance(exc, ConfigError):
        return 400, "bad_request"
    if isinstance(exc, actions.PrefectUnavailable):
        return 503, "prefect_unavailable"
    if isinstance(exc, PlatformError):
        return 502, "platform_error"
    return 500, "internal_error"


def _error(request: Request, exc: Exception) -> Response:
    status, code = _status_of(exc)
    message = getattr(exc, "message", None) or str(exc)
    if _wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status)
    return _render(request, "error.html", status, code=code, message=message, error_status=status)


def _dashboard(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dashboard
    return dash


def _session_operator(request: Request) -> Operator | None:
    return _dashboard(request).auth.from_cookie(request.cookies.get(SESSION_COOKIE))


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    dash = _dashboard(request)
    operator = _session_operator(request)
    csrf = "" if operator is None else dash.auth.csrf_token(operator)
    page = _ENV.get_template(template).render(
        operator=operator,
        csrf=csrf,
        actions_enabled=dash.auth.enabled,
        refresh_seconds=dash.refresh_seconds,
        prefect_ui_url=dash.prefect_ui_url,
        **context,
    )
    return HTMLResponse(page, status)


# -- reading --


async def load_fleet(dash: Dashboard) -> Fleet:
    """The fleet table from the store and the (cached) lifecycle scan."""

    def read() -> tuple[Any, ...]:
        bundles = dash.store.list_bundles()
        apps = sorted({b.app for b in bundles})
        routers = {app: dash.store.get_router(app) for app in apps}
        migrations = MigrationStore(dash.store).list()
        events = dash.store.audit_events()
        return bundles, routers, migrations, events

    bundles, routers, migrations, events = await run_in_threadpool(read)
    refs = [BundleRef.from_registered(b) for b in bundles if b.status is BundleStatus.PRODUCTION]
    scan = await dash.lifecycle.scan(refs)
    return build_fleet(
        bundles=bundles,
        routers=routers,
        migrations=migrations,
        events=events,
        report=scan.report,
        lifecycle_error=scan.error,
        now=dash.clock(),
    )


async def fleet_page(request: Request) -> Response:
    """``GET /``: the fleet table."""
    fleet = await load_fleet(_dashboard(request))
    live = any(r.next_action.kind in ("migration_running", "needs_approval") for r in fleet.rows)
    return _render(request, "fleet.html", fleet=fleet, live=live)


async def fleet_api(request: Request) -> Response:
    """``GET /api/fleet``: the fleet table as JSON."""
    fleet = await load_fleet(_dashboard(request))
    return JSONResponse(fleet.model_dump(mode="json"))


async def _migration(request: Request) -> MigrationPage:
    dash = _dashboard(request)
    migration_id = request.path_params["migration_id"]
    return await run_in_threadpool(
        lambda: load_page(dash.store, migration_id, home=dash.settings.home, clock=dash.clock)
    )


async def migration_page(request: Request) -> Response:
    """``GET /migrations/{id}``: stages, gate, canary plots, decision and audit trail."""
    page = await _migration(request)
    return _render(request, "migration.html", page=page, view=page.view, live=page.active)


async def migration_api(request: Request) -> Response:
    """``GET /api/migrations/{id}``: the migration page's data (the report's MigrationView) as JSON."""
    page = await _migration(request)
    data = page.view.model_dump(mode="json")
    data["active"] = page.active
    data["report_available"] = page.report_available
    return JSONResponse(data)


async def migration_report(request: Request) -> Response:
    """``GET /migrations/{id}/report``: the self-contained HTML report ``modelshift report`` wrote."""
    dash = _dashboard(request)
    migration_id = request.path_params["migration_id"]
    await run_in_threadpool(MigrationStore(dash.store).get, migration_id)
    path = report_path(dash.settings.home, migration_id)
    if not path.is_file():
        raise NotFoundError(
            f"no report for migration {migration_id} yet; write it with `modelshift report {migration_id}`",
            migration_id=migration_id,
        )
    return FileResponse(path, media_type="text/html")


async def app_page(request: Request) -> Response:
    """``GET /apps/{app}``: one app's row, its migrations and the actions on it."""
    dash = _dashboard(request)
    app = request.path_params["app"]
    await run_in_threadpool(actions.require_app, dash.store, app)
    fleet = await load_fleet(dash)
    row = next(r for r in fleet.rows if r.app == app)
    migrations = await run_in_threadpool(MigrationStore(dash.store).list, app)
    return _render(request, "app.html", row=row, migrations=migrations, live=row.next_action.kind != "none")


# -- login --


async def login_page(request: Request) -> Response:
    """``GET /login``: the operator name and token form."""
    return _render(request, "login.html", next_url=_safe_next(request.query_params.get("next")))


def _safe_next(value: str | None) -> str:
    # only a path on this site: an open redirect would make the login page a phishing tool
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


async def login(request: Request) -> Response:
    """``POST /login``: check the token, set the session cookie (HttpOnly, SameSite=Strict)."""
    dash = _dashboard(request)
    form = await request.form()
    name, token = str(form.get("operator") or ""), str(form.get("token") or "")
    _, cookie = dash.auth.login(name, token)
    target = _safe_next(str(form.get("next") or "/"))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    return response


async def logout(request: Request) -> Response:
    """``POST /logout``: forget the session (CSRF-checked like any other form)."""
    operator = await _operator(request)
    del operator
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def _operator(request: Request) -> Operator:
    """The operator of an action: header token, or session cookie plus the form's CSRF token."""
    dash = _dashboard(request)
    if not dash.auth.enabled:
        dash.auth.require_enabled()
    operator = dash.auth.from_headers(
        request.headers.get("authorization"), request.headers.get(OPERATOR_HEADER)
    )
    if operator is not None:
        return operator
    operator = _session_operator(request)
    if operator is None:
        raise AuthProblem(
            401, "log in first (GET /login) or send 'Authorization: Bearer <MODELSHIFT_DASHBOARD_TOKEN>'"
        )
    form = await request.form()
    given = form.get("csrf")
    dash.auth.check_csrf(operator, given if isinstance(given, str) else None)
    return operator


# -- actions --


async def _field(request: Request, name: str, default: str = "") -> str:
    form = await request.form()
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def _done(request: Request, result: Any, title: str, **context: Any) -> Response:
    if _wants_json(request):
        return JSONResponse(to_jsonable(result))
    return _render(request, "done.html", title=title, result=to_jsonable(result), **context)


async def rollback_action(request: Request) -> Response:
    """``POST /apps/{app}/rollback``: ``modelshift rollback APP`` as the operator."""
    dash = _dashboard(request)
    operator = await _operator(request)
    app = request.path_params["app"]
    reason = await _field(request, "reason")
    keep = await _field(request, "keep_deployment") in ("1", "on", "true")
    result = await run_in_threadpool(
        lambda: actions.roll_back(
            dash.settings,
            dash.store,
            app,
            actor=operator.name,
            reason=reason,
            keep_deployment=keep,
            clock=dash.clock,
        )
    )
    return _done(request, result, f"Rolled back {result.rolled_back}", app=app)


async def approval_action(request: Request) -> Response:
    """``POST /apps/{app}/approval``: resume the paused canary with approve/reject and the operator's name."""
    dash = _dashboard(request)
    operator = await _operator(request)
    app = request.path_params["app"]
    decision = await _field(request, "decision")
    reason = await _field(request, "reason")
    result = await run_in_threadpool(
        lambda: actions.answer_approval(
            dash.store, app, decision=decision, operator=operator.name, reason=reason
        )
    )
    return _done(request, result, f"Canary of {app}: {result.decision} sent", app=app)


async def dry_run_action(request: Request) -> Response:
    """``POST /apps/{app}/dry-run``: assess and plan (the model-migration flow, dry run); changes nothing."""
    dash = _dashboard(request)
    operator = await _operator(request)
    app = request.path_params["app"]
    target = await _field(request, "target")
    reason = await _field(request, "reason")
    outcome = await run_in_threadpool(
        lambda: actions.dry_run(dash.store, app, target=target or None, reason=reason, actor=operator.name)
    )
    if _wants_json(request):
        return JSONResponse(to_jsonable(outcome))
    ready = bool(outcome.plan and outcome.plan.get("status") == "ready")
    return _render(request, "dryrun.html", app=app, outcome=outcome, ready=ready)


async def migrate_action(request: Request) -> Response:
    """``POST /apps/{app}/migrate``: start the real migration a finished dry run (``dry_run_id``) planned."""
    dash = _dashboard(request)
    operator = await _operator(request)
    app = request.path_params["app"]
    dry_run_id = await _field(request, "dry_run_id")
    if not dry_run_id:
        raise ConfigError("dry_run_id: run a dry run first (POST /apps/{app}/dry-run) and pass its id")
    reason = await _field(request, "reason")
    result = await run_in_threadpool(
        lambda: actions.start_migration(
            dash.store,
            app,
            dry_run_id,
            reason=reason,
            actor=operator.name,
            clock=dash.clock,
            mode=dash.start_mode,
        )
    )
    return _done(request, result, f"Migration of {app} started", app=app)


async def healthz(request: Request) -> Response:
    """``GET /healthz``."""
    return JSONResponse({"status": "ok"})


def _guard(handler: Handler) -> Handler:
    """Turn every expected error into its 4xx/5xx answer instead of a traceback."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except (AuthProblem, ModelshiftError, actions.PrefectUnavailable) as exc:
            return _error(request, exc)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded


def create_app(dashboard: Dashboard) -> Starlette:
    """The ASGI app serving ``dashboard``."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for close in dashboard.closers:
            close()

    routes = [
        Route("/", _guard(fleet_page)),
        Route("/api/fleet", _guard(fleet_api)),
        Route("/api/migrations/{migration_id}", _guard(migration_api)),
        Route("/migrations/{migration_id}", _guard(migration_page)),
        Route("/migrations/{migration_id}/report", _guard(migration_report)),
        Route("/apps/{app}", _guard(app_page)),
        Route("/apps/{app}/rollback", _guard(rollback_action), methods=["POST"]),
        Route("/apps/{app}/approval", _guard(approval_action), methods=["POST"]),
        Route("/apps/{app}/dry-run", _guard(dry_run_action), methods=["POST"]),
        Route("/apps/{app}/migrate", _guard(migrate_action), methods=["POST"]),
        Route("/login", _guard(login_page)),
        Route("/login", _guard(login), methods=["POST"]),
        Route("/logout", _guard(logout), methods=["POST"]),
        Route("/healthz", healthz),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = dashboard
    return app
