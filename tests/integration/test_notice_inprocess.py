"""The notice trigger without a Prefect server: ``modelshift notices serve`` runs the scan in its own process,
and the scan starts a migration for the app whose model the notice names (issue 4, third trigger)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from modelshift.emulator.testing import running_emulator
from modelshift.migration import MigrationStore
from modelshift.store import Store

REPO = Path(__file__).resolve().parents[2]
PAYLOADS = REPO / "tests" / "notices" / "payloads"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_notice_starts_scan_and_migration_in_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_emulator() as emu:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MODELSHIFT_"))},
            "MODELSHIFT_HOME": str(home),
            "MODELSHIFT_DATABASE_URL": f"sqlite:///{home / 'state.db'}",
            "MODELSHIFT_ARM_URL": emu.arm_url,
            "MODELSHIFT_API_KEY": emu.api_key,
            "MODELSHIFT_ARM_TOKEN": emu.bearer_token,
            "MODELSHIFT_WEBHOOK_SECRET": "s3cret",
            "NO_COLOR": "1",
        }
        exe = str(Path(sys.executable).with_name("modelshift"))
        registered = subprocess.run(
            [exe, "bundle", "register", str(REPO / "bundles"), "--adopt"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert registered.returncode == 0, registered.stderr
        port = _free_port()
        proc = subprocess.Popen(
            [exe, "notices", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "notices serve did not start"
                time.sleep(0.2)
            body = (PAYLOADS / "aoai-retirement.common-schema.json").read_bytes()
            assert "gpt-4o" in json.loads(body)["data"]["alertContext"]["properties"]["communication"]
            answer = httpx.post(f"{base}/notices/azure?token=s3cret", content=body, timeout=30)
            assert answer.status_code == 202, answer.text
            assert answer.json()["status"] == "accepted"

            deadline = time.monotonic() + 180
            migrations: list = []
            while not migrations:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "no migration was started by the notice"
                time.sleep(1)
                with Store.open(env["MODELSHIFT_DATABASE_URL"]) as store:
                    migrations = MigrationStore(store).list(app="support-chat")
            assert migrations[0].trigger == "notice"
            # a resent notice is a duplicate and starts nothing new
            again = httpx.post(f"{base}/notices/azure?token=s3cret", content=body, timeout=30)
            assert again.json()["status"] == "duplicate"
            time.sleep(2)
            with Store.open(env["MODELSHIFT_DATABASE_URL"]) as store:
                assert len(MigrationStore(store).list(app="support-chat")) == 1
                reasons = [e.reason for e in store.audit_events()]
            assert "notice.received" in reasons
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
