"""Starting ``model-migration`` runs: the ONE module of ``modelshift`` that imports Prefect.

Two ways (notes/prefect-3.md §1, §3):

* under a deployment (a worker runs the retirement scan): ``run_deployment(..., timeout=0,
  idempotency_key=...)`` through the Prefect API, so the migration gets its own flow run, its own worker
  slot and its own retries; the same idempotency key returns the same flow run, never a second one;
* in-process (the CLI, tests, a scan started by hand): the flow is called like a function. With no
  ``PREFECT_API_URL`` that uses Prefect's ephemeral API, whose database lives in ``PREFECT_HOME``; the CLI
  points that at ``<MODELSHIFT_HOME>/prefect`` so a user's own ``~/.prefect`` is never touched.

Prefect is imported inside the functions: importing it costs 1-3 s and reads ``PREFECT_HOME`` once, so
``use_local_prefect_home`` must run before the first import.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from modelshift.errors import ConfigError, TransientPlatformError
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.settings import Settings

#: ``flow-name/deployment-name`` of the migration deployment in prefect.yaml
MIGRATION_DEPLOYMENT = "model-migration/model-migration"
#: ``flow-name/deployment-name`` of the scan deployment in prefect.yaml
SCAN_DEPLOYMENT = "retirement-scan/retirement-scan"


@dataclass(frozen=True)
class LaunchedRun:
    """A flow run created through the Prefect API (it may have existed already: same idempotency key)."""

    flow_run_id: str
    name: str
    state: str | None


def local_prefect_home(settings: Settings) -> Path:
    """Where the CLI's in-process runs keep Prefect's database: ``<MODELSHIFT_HOME>/prefect``."""
    return (settings.home / "prefect").resolve()


def use_local_prefect_home(settings: Settings) -> Path:
    """Point Prefect at ``<MODELSHIFT_HOME>/prefect`` (ephemeral API) unless a Prefect server is configured.

    Must run before Prefect is first imported in this process; afterwards it raises ConfigError, because
    Prefect would silently keep the home it read at import."""
    home = local_prefect_home(settings)
    if "prefect" in sys.modules:
        current = os.environ.get("PREFECT_HOME")
        if current and Path(current).resolve() == home:
            return home
        raise ConfigError(
            "Prefect was imported before modelshift chose its PREFECT_HOME; call "
            "modelshift.launcher.use_local_prefect_home first (or set PREFECT_HOME yourself)"
        )
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)
    if not os.environ.get("PREFECT_API_URL"):
        # The bundled default profile is ephemeral too; say so explicitly, and keep the UI off.
        os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "true"
        os.environ.setdefault("PREFECT_UI_ENABLED", "false")
        # Prefect's 20 s default start-up budget for the ephemeral server times out on a busy 2-core
        # machine (first start runs its migrations); notes/prefect-3.md §1 and §11.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    return home


def in_deployment() -> bool:
    """True inside a flow run that a worker started from a deployment."""
    from prefect.runtime import deployment

    return deployment.id is not None


def start_deployment_run(
    params: MigrationParams,
    *,
    idempotency_key: str,
    deployment: str = MIGRATION_DEPLOYMENT,
    tags: list[str] | None = None,
) -> LaunchedRun:
    """Create (or find, by idempotency key) a flow run of the migration deployment; return at once."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    try:
        run: Any = run_deployment(
            deployment,
            parameters={"params": params.model_dump(mode="json")},
            timeout=0,
            idempotency_key=idempotency_key,
            tags=[*(tags or []), f"app:{params.app}", f"trigger:{params.trigger}"],
        )
    except ObjectNotFound:
        raise ConfigError(
            f"Prefect has no deployment {deployment!r}; run `prefect --no-prompt deploy --all` in the "
            "modelshift checkout (prefect.yaml)",
            deployment=deployment,
        ) from None
    except PrefectHTTPStatusError as exc:
        raise TransientPlatformError(
            f"the Prefect API refused to start {deployment} for {params.app}: {exc}; retry",
            deployment=deployment,
        ) from None
    state = getattr(run, "state", None)
    return LaunchedRun(
        flow_run_id=str(run.id), name=str(run.name), state=None if state is None else str(state.type.value)
    )


def run_migration(params: MigrationParams) -> MigrationOutcome:
    """Run the ``model-migration`` flow in this process and return its outcome (raises what it raised)."""
    # flows/ is a sibling package of the checkout (and of the wheel); imported by name, it stays untyped.
    flow = importlib.import_module("flows.migrate").model_migration
    outcome = flow(params)
    if not isinstance(outcome, MigrationOutcome):  # pragma: no cover - the flow's return type says so
        raise TypeError(f"model-migration returned {type(outcome).__name__}, not MigrationOutcome")
    return outcome


def run_scan(
    *, models: list[str] | None = None, notice_id: str | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """Run the ``retirement-scan`` flow in this process (scoped to ``models`` when given; assessed as of
    ``as_of``, default today)."""
    flow = importlib.import_module("flows.scan").retirement_scan
    result = flow(models=models, notice_id=notice_id, as_of=as_of)
    if not isinstance(result, dict):  # pragma: no cover - the flow's return type says so
        raise TypeError(f"retirement-scan returned {type(result).__name__}, not dict")
    return result


def scan_for_notice(settings: Settings) -> Any:
    """A notice callback for the webhook's in-process dispatcher: runs the scan the notice calls for.

    Used when no Prefect server is configured; the scan's own idempotency keys keep a resent notice from
    starting a second migration."""
    use_local_prefect_home(settings)

    def callback(notice: Any) -> None:
        refs = [m.ref for m in notice.models if not m.replacement]
        run_scan(models=refs or None, notice_id=notice.notice_id)

    return callback
