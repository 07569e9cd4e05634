"""Serving the emulator from the CLI: ``serve()`` (blocking) and the shell exports that point at it."""

from __future__ import annotations

import shlex
from pathlib import Path

import uvicorn

from modelshift.emulator.app import create_app
from modelshift.emulator.scenario import load_scenario
from modelshift.emulator.testing import EmulatorHandle


def serve(host: str = "127.0.0.1", port: int = 8765, scenario_path: Path | str | None = None) -> None:
    """Serve the emulator until interrupted; ``scenario_path`` None means the packaged default scenario."""
    scenario = load_scenario(scenario_path)
    uvicorn.run(create_app(scenario), host=host, port=port, log_level="info", timeout_graceful_shutdown=2)


def shell_exports(
    handle_or_url: EmulatorHandle | str,
    *,
    api_key: str = "emulator-key",
    bearer_token: str = "emulator-token",
) -> str:
    """``export`` lines that point modelshift at a running emulator (a handle, or its base URL)."""
    if isinstance(handle_or_url, EmulatorHandle):
        url, api_key, bearer_token = handle_or_url.arm_url, handle_or_url.api_key, handle_or_url.bearer_token
    else:
        url = handle_or_url.rstrip("/")
    lines = [
        "# modelshift local Azure emulator (NOT Azure)",
        f"export MODELSHIFT_ARM_URL={shlex.quote(url)}",
        f"export MODELSHIFT_API_KEY={shlex.quote(api_key)}",
        f"export MODELSHIFT_ARM_TOKEN={shlex.quote(bearer_token)}",
    ]
    return "\n".join(lines) + "\n"
