"""The model-migration DAG the way a team runs it: one PostgreSQL server, a Prefect server on it, a worker.

One real PostgreSQL server (tests/conftest.py: Debian's package, loopback port) holds BOTH Prefect's database
(``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...``) and modelshift's store
(``MODELSHIFT_DATABASE_URL=postgresql+psycopg://...``). ``prefect server start`` runs on it, a process work
pool and worker run the deployments of ``prefect --no-prompt deploy --all`` from a clone, and the emulator
stands in for Azure. Two migrations of support-chat, with ``MODELSHIFT_STOP_AFTER=evaluate`` (no live
traffic needed):

1. started through the Prefect API as the UI's "Run" form does (``create_flow_run_from_deployment`` with the
   ``params`` form), to the worse successor gpt-4o 2024-08-06: the offline gate fails, the candidate is
   rejected and its side-by-side deployment deleted, the migration ends ``failed``;
2. started by an Azure retirement notice posted to the webhook (scan deployment -> model-migration run), to
   the platform's replacement gpt-4o 2024-11-20: the gate passes, the migration ends ``evaluated``.

Both are checked in the store, and ``modelshift audit verify`` must pass on the PostgreSQL store. The worker
gets the api-key and the store URL from Prefect ``Secret`` blocks through the work pool's base job template
(it has neither in its own environment), as the README's "Running it for real" recommends.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from modelshift.audit import Reason
from modelshift.bundle import load_bundle
from modelshift.emulator.testing import running_emulator
from modelshift.migration import MigrationPhase, MigrationStore, Trigger
from modelshift.migration.records import Migration
from modelshift.registry import register
from modelshift.store import Store
from tests.conftest import PostgresServer
from tests.flows.test_evaluate_flow import _quality_only, _scenario
from tests.integration.prefect_stack import (
    MODELSHIFT,
    Processes,
    clone_repo,
    deploy_and_start_worker,
    flow_runs,
    free_port,
    pool_template_with_env,
    post_notice,
    prefect_env,
    start_server,
    wait,
    wait_finished,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

APP = "support-chat"
WORSE = "gpt-4o@2024-08-06"
REPLACEMENT = "gpt-4o@2024-11-20"
SECRET = "pg-secret"
SECRET_KEY_BLOCK = "modelshift-api-key"
SECRET_DB_BLOCK = "modelshift-db"


def _databases(server: PostgresServer) -> tuple[str, str]:
    """Prefect's database (asyncpg, as Prefect's server wants it) and modelshift's, on one server."""
    suffix = uuid.uuid4().hex[:8]
    prefect = server.create_database(f"prefect_{suffix}")
    store = server.create_database(f"modelshift_{suffix}")
    return prefect.replace("postgresql+psycopg://", "postgresql+asyncpg://", 1), store


def _start_from_the_ui(api_url: str, params: dict[str, Any]) -> str:
    """What the UI's Run form does: a flow run of the model-migration deployment with these parameters."""
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("model-migration/model-migration")
        flow_run = client.create_flow_run_from_deployment(deployment.id, parameters={"params": params})
    return str(flow_run.id)


def _save_secrets(api_url: str, secrets: dict[str, str]) -> None:
    with temporary_settings({PREFECT_API_URL: api_url}):
        for name, value in secrets.items():
            Secret(value=value).save(name)


def _candidate(store: Store, migration: Migration) -> str:
    """The candidate digest the migration's prepare stage recorded."""
    for event in store.audit_events(migration_id=migration.id):
        if event.reason == Reason.MIGRATION_PREPARED:
            return str(event.data["candidate_digest"])
    raise AssertionError(f"migration {migration.id} recorded no candidate")


def _completed(run_: dict[str, Any]) -> None:
    assert run_["state_type"] == "COMPLETED", json.dumps(run_.get("state"), indent=1)


def _prefect_flow_runs(prefect_url: str) -> dict[str, int]:
    """Flow runs that ran, by flow name, read straight from Prefect's tables in PostgreSQL."""
    dsn = prefect_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT f.name, count(*) FROM flow_run r JOIN flow f ON f.id = r.flow_id "
            "WHERE r.state_type <> 'SCHEDULED' GROUP BY f.name"  # not the cron's future runs
        ).fetchall()
    return {str(name): int(count) for name, count in rows}


def test_the_dag_on_a_prefect_server_and_store_sharing_one_postgresql(
    tmp_path: Path, procs: Processes, postgres_server: PostgresServer
) -> None:
    prefect_db, store_db = _databases(postgres_server)
    clone = clone_repo(tmp_path)
    _quality_only(clone / "bundles")  # loopback latency is noise: gate on quality, as the flow tests do
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    with running_emulator(_scenario(), latency_scale=0.01) as emu:
        env = prefect_env(
            tmp_path,
            api_url,
            PYTHONPATH=str(clone),
            MODELSHIFT_HOME=str(tmp_path / "ms"),
            MODELSHIFT_DATABASE_URL=store_db,
            MODELSHIFT_ARM_URL=emu.arm_url,
            MODELSHIFT_ARM_TOKEN=emu.bearer_token,
            MODELSHIFT_API_KEY=emu.api_key,
            MODELSHIFT_STOP_AFTER="evaluate",
        )
        baseline = load_bundle(clone / "bundles" / APP / "1.0.0")
        with Store.open(store_db) as store:
            register(store, baseline, actor="test", adopt=True)
        with httpx.Client(base_url=api_url, timeout=10) as api:
            try:
                start_server(procs, env, port, tmp_path, api, PREFECT_API_DATABASE_CONNECTION_URL=prefect_db)
                # the api-key and the store URL (it would hold a password) live in Secret blocks; the worker
                # has neither in its environment and resolves them into each flow run's
                _save_secrets(api_url, {SECRET_KEY_BLOCK: emu.api_key, SECRET_DB_BLOCK: store_db})
                template = pool_template_with_env(
                    env,
                    tmp_path,
                    {
                        "MODELSHIFT_API_KEY": f"{{{{ prefect.blocks.secret.{SECRET_KEY_BLOCK} }}}}",
                        "MODELSHIFT_DATABASE_URL": f"{{{{ prefect.blocks.secret.{SECRET_DB_BLOCK} }}}}",
                    },
                    tmp_path / "pool.json",
                )
                worker_env = {
                    k: v for k, v in env.items() if k not in ("MODELSHIFT_API_KEY", "MODELSHIFT_DATABASE_URL")
                }
                out = deploy_and_start_worker(
                    procs, env, clone, base_job_template=template, worker_env=worker_env
                )
                assert "model-migration" in out and "retirement-scan" in out

                # 1. from the UI's form, to the worse successor: rejected by the offline gate
                ui_run = _start_from_the_ui(
                    api_url,
                    {
                        "app": APP,
                        "target": WORSE,
                        "reason": "try the August model",
                        "trigger": "ui",
                        "actor": "alice@contoso",
                        "as_of": "2026-01-15",
                    },
                )
                _completed(wait_finished(api, ui_run, "the UI's model-migration run", 240))

                # 2. from an Azure notice: scan -> migration to the replacement, which passes
                post_notice(store_db, api_url, SECRET)

                def scan_done() -> dict[str, Any] | None:
                    runs = flow_runs(api, "retirement-scan/retirement-scan")
                    return runs[0] if runs and runs[0]["state_type"] != "SCHEDULED" else None

                scan = wait("the notice's retirement-scan run", scan_done, 90)
                _completed(wait_finished(api, scan["id"], "the retirement-scan run", 90))

                def notice_run() -> list[dict[str, Any]]:
                    runs = flow_runs(api, "model-migration/model-migration")
                    return [r for r in runs if r["parameters"]["params"]["trigger"] == "notice"]

                (triggered,) = wait("the notice's model-migration run", notice_run, 30)
                _completed(wait_finished(api, triggered["id"], "the notice's model-migration run", 240))
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{procs.tail()}") from None

    with Store.open(store_db) as store:
        by_trigger = {m.trigger: m for m in MigrationStore(store).list(APP)}
        assert set(by_trigger) == {Trigger.UI, Trigger.NOTICE}
        rejected_mig, evaluated_mig = by_trigger[Trigger.UI], by_trigger[Trigger.NOTICE]
        assert (rejected_mig.flow_run_id, rejected_mig.target) == (ui_run, WORSE)
        assert rejected_mig.actor == "alice@contoso" and rejected_mig.phase is MigrationPhase.FAILED
        assert (evaluated_mig.flow_run_id, evaluated_mig.target) == (triggered["id"], REPLACEMENT)
        assert evaluated_mig.phase is MigrationPhase.EVALUATED

        rejected = store.get_bundle_by_digest(_candidate(store, rejected_mig))
        assert rejected.status == "rejected" and store.passing_evaluation(rejected.digest) is None
        finished = store.audit_events(migration_id=rejected_mig.id)[-1]
        assert finished.data["to"] == "failed" and finished.data["verdict"] == "fail"
        assert finished.data["deleted_deployment"]

        evaluated = store.get_bundle_by_digest(_candidate(store, evaluated_mig))
        assert evaluated.status == "evaluated"
        record = store.passing_evaluation(evaluated.digest)
        assert record is not None and record.migration_id == evaluated_mig.id
        for migration in (rejected_mig, evaluated_mig):
            reasons = [e.reason for e in store.audit_events(migration_id=migration.id)]
            assert Reason.EVALUATION_RECORDED in reasons, reasons
        # nothing went live: the baseline still serves all traffic
        assert store.get_bundle(APP, "1.0.0").status == "production"
        assert store.get_router(APP).weights == {baseline.digest: 100}

    # Prefect's own state is in the same PostgreSQL server: the flow runs are in its tables
    runs = _prefect_flow_runs(prefect_db)
    assert runs.get("model-migration") == 2 and runs.get("retirement-scan") == 1, runs
    assert runs.get("evaluation-fanout") == 2, runs
    verify = subprocess.run(
        [MODELSHIFT, "audit", "verify", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
