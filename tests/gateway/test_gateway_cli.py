"""``modelshift gateway serve`` as a real process: it serves, records, and flushes its metrics on shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from modelshift.cli.gateway import register
from modelshift.emulator.testing import EmulatorHandle
from modelshift.gateway import observe
from modelshift.store import Store
from tests.gateway.gateway_helpers import QUESTION, START, adopt, write_bundle

RUN_CLI = (
    "import sys, typer\n"
    "from modelshift.cli.gateway import register\n"
    "app = typer.Typer()\n"
    "register(app)\n"
    "app(sys.argv[1:])\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_register_adds_gateway_serve_with_its_options() -> None:
    root = typer.Typer()
    register(root)

    @root.command()
    def other() -> None:  # a second command, so typer keeps "gateway" as a sub-command name
        """Placeholder."""

    result = CliRunner().invoke(root, ["gateway", "serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--flush-ms", "--cache-seconds", "--httpx-transport"):
        assert option in result.output


@pytest.mark.slow
@pytest.mark.parametrize("transport", [[], ["--httpx-transport"]], ids=["stream", "httpx"])
def test_serve_answers_and_flushes_metrics_on_shutdown(
    tmp_path: Path, emulator: EmulatorHandle, transport: list[str]
) -> None:
    db = tmp_path / "state.db"
    url = f"sqlite:///{db}"
    with Store.open(url) as store:
        bundle = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
        adopt(store, bundle)
    port = _free_port()
    env = {
        **os.environ,
        "MODELSHIFT_HOME": str(tmp_path / "home"),
        "MODELSHIFT_DATABASE_URL": url,
        "MODELSHIFT_ARM_URL": emulator.arm_url,
        "MODELSHIFT_API_KEY": emulator.api_key,
        "MODELSHIFT_ARM_TOKEN": emulator.bearer_token,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_CLI,
            "gateway",
            "serve",
            "--port",
            str(port),
            "--flush-ms",
            "60000",
            *transport,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)
        response = httpx.post(f"{base}/apps/shop/chat", json={"question": QUESTION}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.headers["x-modelshift-bundle"] == "shop@1.0.0"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    # the flush interval is a minute: the record can only be there because shutdown wrote the queue
    with Store.open(url) as store:
        windows = observe(store, "shop", START - timedelta(days=3650), START + timedelta(days=3650))
    assert windows[bundle.digest].requests == 1
