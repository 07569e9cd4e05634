"""Helpers for the tests that run modelshift on a real Prefect server (plain functions and classes; the
``procs`` fixture lives in conftest.py).

The stack a team runs: ``prefect server start`` (its own PREFECT_HOME, on SQLite or on PostgreSQL through
``PREFECT_API_DATABASE_CONNECTION_URL``), the process work pool of prefect.toml, ``prefect --no-prompt deploy
--all`` from a clone of this repository, a worker, and the notice webhook served in the test's process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from modelshift.clock import utcnow
from modelshift.notices import PrefectEventDispatcher
from modelshift.notices.store import StoreNoticeLog
from modelshift.notices.webhook import create_app
from modelshift.settings import Settings
from modelshift.store import Store

REPO = Path(__file__).resolve().parents[2]
NOTICE = REPO / "tests" / "notices" / "payloads" / "aoai-retirement.common-schema.json"
PREFECT = str(Path(sys.executable).with_name("prefect"))
MODELSHIFT = str(Path(sys.executable).with_name("modelshift"))
POOL = "modelshift-process"  # the default of prefect.toml: the tests rely on it, no override
#: states after which a flow run does not move on by itself
FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy (HTTP and OS errors count as not yet)."""
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
        """Start ``args`` with its output in ``logs/<name>.log``."""
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        """SIGTERM every process group (newest first), SIGKILL what is left after 5 s."""
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
        """The end of every log, for an assertion message."""
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in self.logs.glob("*.log")
        )


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run a command to completion; it must exit 0. Returns its stdout."""
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def clone_repo(into: Path) -> Path:
    """A fresh clone of this repository's committed HEAD (what a team deploys from)."""
    clone = into / "clone"
    run(["git", "clone", "-q", str(REPO), str(clone)], dict(os.environ), into)
    return clone


def prefect_env(tmp_path: Path, api_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without any PREFECT_/MODELSHIFT_ variable, plus the stack's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MODELSHIFT_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="1",
    )
    env.update(extra)
    return env


def start_server(
    procs: Processes, env: dict[str, str], port: int, cwd: Path, api: httpx.Client, **server_env: str
) -> None:
    """``prefect server start`` on 127.0.0.1:``port`` (``server_env``: e.g. its database); waits healthy."""
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"} | server_env
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    procs.start("server", args, env, cwd)
    wait("prefect server health", lambda: api.get("/health").status_code == 200, 90)


def deploy_and_start_worker(
    procs: Processes,
    env: dict[str, str],
    clone: Path,
    *,
    base_job_template: Path | None = None,
    worker_env: dict[str, str] | None = None,
) -> str:
    """Create the process pool (with ``base_job_template`` when given), ``prefect --no-prompt deploy --all``
    from ``clone``, and start a worker (with ``worker_env``, default ``env``)."""
    template = ["--base-job-template", str(base_job_template)] if base_job_template else []
    run([PREFECT, "work-pool", "create", POOL, "--type", "process", *template], env, clone)
    out = run([PREFECT, "--no-prompt", "deploy", "--all"], env, clone, timeout=180)
    procs.start("worker", [PREFECT, "worker", "start", "--pool", POOL], worker_env or env, clone)
    return out


def pool_template_with_env(env: dict[str, str], cwd: Path, job_env: dict[str, str], to: Path) -> Path:
    """The process pool's default base job template with ``job_env`` as the default of its ``env`` variable,
    saved at ``to``. Values may be block references such as ``{{ prefect.blocks.secret.NAME }}``: the worker
    resolves them when it starts a run (the server refuses them in ``job_configuration`` itself)."""
    args = [PREFECT, "work-pool", "get-default-base-job-template", "--type", "process"]
    template = json.loads(run(args, env, cwd))
    template["variables"]["properties"]["env"]["default"] = job_env
    to.write_text(json.dumps(template))
    return to


def serve_webhook(app: Any) -> tuple[str, Callable[[], None]]:
    """Serve an ASGI app on a free loopback port in a thread; returns its base URL and a stop function."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait("webhook start", lambda: server.started, 10, 0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


def post_notice(database_url: str, api_url: str, secret: str) -> None:
    """Serve the notice webhook (store at ``database_url``, events to the Prefect API) and post the
    retirement notice to it; it must be accepted (202)."""
    settings = Settings(webhook_secret=SecretStr(secret), database_url=database_url)
    with Store.open(database_url) as store, httpx.Client(timeout=10) as http:
        app = create_app(settings, StoreNoticeLog(store), PrefectEventDispatcher(api_url, http), utcnow)
        hook_url, stop_hook = serve_webhook(app)
        try:
            posted = httpx.post(
                f"{hook_url}/notices/azure?token={secret}", content=NOTICE.read_bytes(), timeout=10
            )
            assert posted.status_code == 202, posted.text
        finally:
            stop_hook()


def flow_runs(api: httpx.Client, deployment: str) -> list[dict[str, Any]]:
    """The flow runs of one deployment (``flow-name/deployment-name``)."""
    dep = api.get(f"/deployments/name/{deployment}").raise_for_status().json()
    body = {"flow_runs": {"deployment_id": {"any_": [dep["id"]]}}, "limit": 50}
    runs: list[dict[str, Any]] = api.post("/flow_runs/filter", json=body).raise_for_status().json()
    return runs


def wait_finished(api: httpx.Client, run_id: str, what: str, timeout: float) -> dict[str, Any]:
    """The flow run once it is in a final state."""

    def finished() -> dict[str, Any] | None:
        found: dict[str, Any] = api.get(f"/flow_runs/{run_id}").raise_for_status().json()
        return found if found["state_type"] in FINAL_STATES else None

    result: dict[str, Any] = wait(what, finished, timeout)
    return result
