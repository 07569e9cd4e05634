"""``notices parse`` (in-process) and ``notices serve`` (a real subprocess, probed over HTTP)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from notice_payloads import PAYLOADS, common, dumps
from typer.testing import CliRunner

from modelshift.cli.notices import app

runner = CliRunner()
LAUNCH = "from modelshift.cli.notices import app; app()"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("aoai-retirement.common-schema.json", "azure_openai_retirement"),
        ("aoai-retirement-reminder.activitylog-legacy-schema.json", "azure_openai_retirement"),
        ("servicehealth-alert-webhook.activitylog-legacy-schema.json", "unrelated"),
        ("common-alert-schema.metric-sample.json", "unrelated"),
    ],
)
def test_parse_json(name: str, kind: str) -> None:
    result = runner.invoke(app, ["parse", str(PAYLOADS / name), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["classification"]["kind"] == kind
    assert out["notice"]["schema_id"] in ("azureMonitorCommonAlertSchema", "Microsoft.Insights/activityLogs")


def test_parse_table_names_models_and_dates() -> None:
    result = runner.invoke(
        app, ["parse", str(PAYLOADS / "aoai-retirement-reminder.activitylog-legacy-schema.json")]
    )
    assert result.exit_code == 0, result.output
    for text in ("azure_openai_retirement", "ZT2K-5PQ", "gpt-35-turbo@0613", "2026-03-31", "replacement"):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"schemaId": "other"}', "unknown schemaId"),
        (dumps(common(None) | {"data": {"essentials": {}}}), "data.essentials.monitoringService"),
        (None, "cannot read"),
    ],
)
def test_parse_bad_input_exits_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "body.json"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["parse", str(path)])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def _env(tmp_path: Path, secret: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSHIFT_", "PREFECT_API_"))}
    env["MODELSHIFT_HOME"] = str(tmp_path / "home")
    if secret is not None:
        env["MODELSHIFT_WEBHOOK_SECRET"] = secret
    return env


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, "serve", "--port", "9"],
        env=_env(tmp_path, None),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "MODELSHIFT_WEBHOOK_SECRET" in result.stderr
    assert not (tmp_path / "home" / "state.db").exists()  # refused before opening the store


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--port", str(port)],
        env=_env(tmp_path, "cli-secret"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not come up: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_serve_accepts_then_dedupes(served: str, tmp_path: Path) -> None:
    url = f"{served}/notices/azure?token=cli-secret"
    first = httpx.post(url, content=dumps(common()), timeout=30)
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    assert httpx.post(url, content=dumps(common()), timeout=30).json()["status"] == "duplicate"
    assert httpx.post(f"{served}/notices/azure?token=nope", content=b"{}", timeout=30).status_code == 401
    assert (tmp_path / "home" / "state.db").exists()
