"""End to end on a real Prefect server: deploy prefect.yaml from a clone, post an Azure notice to the
webhook, and see the triggered retirement-scan complete and start a model-migration run.

Everything runs on 127.0.0.1 in temp dirs: `prefect server start` with its own PREFECT_HOME, a process work
pool and worker, the emulator, and G's webhook with the Prefect event dispatcher."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from modelshift.clock import utcnow
from modelshift.emulator.testing import running_emulator
from modelshift.migration import MigrationStore
from modelshift.notices import PrefectEventDispatcher
from modelshift.notices.store import StoreNoticeLog
from modelshift.notices.webhook import create_app
from modelshift.settings import Settings
from modelshift.store import Store
from tests.flows.conftest import register_examples

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NOTICE = REPO / "tests" / "notices" / "payloads" / "aoai-retirement.common-schema.json"
PREFECT = str(Path(sys.executable).with_name("prefect"))
SECRET = "it-secret"
POOL = "modelshift-process"  # the default of prefect.toml: the test relies on it, no override


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout:.0f} s (last: {last!r})")


class Processes:
    """Child processes in their own sessions, each stopped (group-wide) at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in self.logs.glob("*.log")
        )


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Start-and-always-stop for the test's servers and workers."""
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Processes(logs)
    yield running
    running.stop()


def _serve_webhook(app: Any) -> tuple[str, Callable[[], None]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait("webhook start", lambda: server.started, 10, 0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


def _flow_runs(api: httpx.Client, deployment: str) -> list[dict[str, Any]]:
    dep = api.get(f"/deployments/name/{deployment}").raise_for_status().json()
    body = {"flow_runs": {"deployment_id": {"any_": [dep["id"]]}}, "limit": 50}
    runs: list[dict[str, Any]] = api.post("/flow_runs/filter", json=body).raise_for_status().json()
    return runs


def test_a_notice_triggers_the_scan_deployment_which_starts_a_migration_run(
    tmp_path: Path, procs: Processes
) -> None:
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(REPO), str(clone)], dict(os.environ), tmp_path)
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    db_url = f"sqlite:///{tmp_path / 'ms' / 'state.db'}"
    with running_emulator() as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MODELSHIFT_"))}
        env.update(
            PREFECT_HOME=str(tmp_path / "prefect-home"),
            PREFECT_API_URL=api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="1",
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
        server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        procs.start(
            "server",
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
            tmp_path,
        )
        with httpx.Client(base_url=api_url, timeout=10) as api:
            try:
                _wait("prefect server health", lambda: api.get("/health").status_code == 200, 60)
                _run([PREFECT, "work-pool", "create", POOL, "--type", "process"], env, clone)
                out = _run([PREFECT, "--no-prompt", "deploy", "--all"], env, clone, timeout=180)
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
                procs.start("worker", [PREFECT, "worker", "start", "--pool", POOL], env, clone)

                settings = Settings(webhook_secret=SecretStr(SECRET), database_url=db_url)
                with Store.open(db_url) as store, httpx.Client(timeout=10) as http:
                    app = create_app(
                        settings,
                        StoreNoticeLog(store),
                        PrefectEventDispatcher(api_url, http),
                        utcnow,
                    )
                    hook_url, stop_hook = _serve_webhook(app)
                    try:
                        posted = httpx.post(
                            f"{hook_url}/notices/azure?token={SECRET}",
                            content=NOTICE.read_bytes(),
                            timeout=10,
                        )
                        assert posted.status_code == 202, posted.text
                    finally:
                        stop_hook()

                def scan_done() -> dict[str, Any] | None:
                    runs = _flow_runs(api, "retirement-scan/retirement-scan")
                    done = [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")]
                    return done[0] if done else None

                scan = _wait("the triggered retirement-scan run", scan_done, 90)
                assert scan["state_type"] == "COMPLETED", json.dumps(scan.get("state"), indent=1)
                assert "gpt-4o@2024-05-13" in scan["parameters"]["models"]
                assert scan["parameters"]["notice_id"]
                migrations = _wait(
                    "the model-migration run", lambda: _flow_runs(api, "model-migration/model-migration"), 10
                )
                assert [r["parameters"]["params"]["app"] for r in migrations] == ["support-chat"]
                assert migrations[0]["parameters"]["params"]["trigger"] == "notice"

                def migration_done() -> dict[str, Any] | None:
                    run = api.get(f"/flow_runs/{migrations[0]['id']}").raise_for_status().json()
                    return run if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED") else None

                finished = _wait("the model-migration run to finish", migration_done, 60)
                assert finished["state_type"] == "COMPLETED", json.dumps(finished.get("state"), indent=1)
                with Store.open(db_url) as store:
                    (record,) = MigrationStore(store).list("support-chat")
                    assert record.phase == "planned" and record.trigger == "notice"
                    assert record.flow_run_id == migrations[0]["id"]
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{procs.tail()}") from None
