"""End to end on a real Prefect server: deploy prefect.yaml from a clone, post an Azure notice to the
webhook, and see the triggered retirement-scan complete and start a model-migration run.

Everything runs on 127.0.0.1 in temp dirs: `prefect server start` with its own PREFECT_HOME, a process work
pool and worker, the emulator, and G's webhook with the Prefect event dispatcher (the stack's helpers are
tests/integration/prefect_stack.py, shared with test_server_postgres.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshift.emulator.testing import running_emulator
from modelshift.migration import MigrationStore
from modelshift.store import Store
from tests.flows.conftest import register_examples
from tests.integration.prefect_stack import (
    FINAL_STATES,
    POOL,
    Processes,
    clone_repo,
    deploy_and_start_worker,
    flow_runs,
    free_port,
    post_notice,
    prefect_env,
    start_server,
    wait,
    wait_finished,
)

pytestmark = pytest.mark.slow

SECRET = "it-secret"


def test_a_notice_triggers_the_scan_deployment_which_starts_a_migration_run(
    tmp_path: Path, procs: Processes
) -> None:
    clone = clone_repo(tmp_path)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    db_url = f"sqlite:///{tmp_path / 'ms' / 'state.db'}"
    with running_emulator() as emu:
        env = prefect_env(
            tmp_path,
            api_url,
            PYTHONPATH=str(clone),
            MODELSHIFT_HOME=str(tmp_path / "ms"),
            MODELSHIFT_DATABASE_URL=db_url,
            MODELSHIFT_ARM_URL=emu.arm_url,
            MODELSHIFT_ARM_TOKEN=emu.bearer_token,
            MODELSHIFT_API_KEY=emu.api_key,
            # this test is about the triggers; the prepare stage has its own flow tests
            MODELSHIFT_STOP_AFTER="plan",
        )
        with Store.open(db_url) as store:
            register_examples(store, ("support-chat",))
        with httpx.Client(base_url=api_url, timeout=10) as api:
            try:
                start_server(procs, env, port, tmp_path, api)
                out = deploy_and_start_worker(procs, env, clone)
                assert "retirement-scan" in out and "model-migration" in out
                scan_dep = (
                    api.get("/deployments/name/retirement-scan/retirement-scan").raise_for_status().json()
                )
                assert scan_dep["work_pool_name"] == POOL
                assert scan_dep["pull_steps"][0]["prefect.deployments.steps.set_working_directory"][
                    "directory"
                ] == str(clone)
                mig_dep = (
                    api.get("/deployments/name/model-migration/model-migration").raise_for_status().json()
                )
                assert mig_dep["enforce_parameter_schema"] is True

                post_notice(db_url, api_url, SECRET)

                def scan_done() -> dict[str, Any] | None:
                    runs = flow_runs(api, "retirement-scan/retirement-scan")
                    done = [r for r in runs if r["state_type"] in FINAL_STATES]
                    return done[0] if done else None

                scan = wait("the triggered retirement-scan run", scan_done, 90)
                assert scan["state_type"] == "COMPLETED", json.dumps(scan.get("state"), indent=1)
                assert "gpt-4o@2024-05-13" in scan["parameters"]["models"]
                assert scan["parameters"]["notice_id"]
                migrations = wait(
                    "the model-migration run", lambda: flow_runs(api, "model-migration/model-migration"), 10
                )
                assert [r["parameters"]["params"]["app"] for r in migrations] == ["support-chat"]
                assert migrations[0]["parameters"]["params"]["trigger"] == "notice"

                finished = wait_finished(api, migrations[0]["id"], "the model-migration run to finish", 60)
                assert finished["state_type"] == "COMPLETED", json.dumps(finished.get("state"), indent=1)
                with Store.open(db_url) as store:
                    (record,) = MigrationStore(store).list("support-chat")
                    assert record.phase == "planned" and record.trigger == "notice"
                    assert record.flow_run_id == migrations[0]["id"]
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{procs.tail()}") from None
