"""``modelshift emulator`` as a user runs it: a real server process, its exports, and bad scenarios."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from modelshift.cli import app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_print_exports(runner: CliRunner) -> None:
    result = runner.invoke(app, ["emulator", "--port", "9999", "--print-exports"])
    assert result.exit_code == 0
    assert "export MODELSHIFT_ARM_URL=http://127.0.0.1:9999" in result.stdout
    assert "export MODELSHIFT_API_KEY=emulator-key" in result.stdout


def test_bad_scenario_names_file_and_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("clock:\n  start: not-a-date\n")
    result = runner.invoke(app, ["emulator", "--scenario", str(scenario)])
    assert result.exit_code == 2
    assert str(scenario) in result.stderr


@pytest.mark.slow
def test_serves_arm_and_data_plane(tmp_path: Path) -> None:
    port = _free_port()
    exe = Path(sys.executable).with_name("modelshift")
    proc = subprocess.Popen(
        [str(exe), "emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                root = httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.2)
        assert root.headers["x-modelshift-emulator"] == "1"
        unauth = httpx.get(base + "/subscriptions?api-version=2022-12-01", timeout=5)
        assert unauth.status_code == 401
        subs = httpx.get(
            base + "/subscriptions?api-version=2022-12-01",
            headers={"Authorization": "Bearer emulator-token"},
            timeout=5,
        )
        assert subs.status_code == 200
        assert subs.json()["value"][0]["subscriptionId"] == "00000000-0000-0000-0000-000000000001"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
