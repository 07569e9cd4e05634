"""Run the emulator in-process for tests: ``with running_emulator() as emu: ...``.

The real uvicorn server runs in a background thread on a free loopback port, so adapters talk to it over
real HTTP exactly as they would to Azure. Helpers call the ``/_emulator/`` control endpoints over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from modelshift.emulator.app import create_app
from modelshift.emulator.scenario import Scenario, load_scenario, parse_scenario
from modelshift.errors import ScenarioError
from modelshift.serving import serve_in_thread


def resolve_scenario(scenario: Path | str | dict[str, Any] | Scenario | None) -> Scenario:
    """A Scenario from a path, a mapping, a Scenario, or None (the packaged default)."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return parse_scenario(scenario, "<scenario dict>")
    return load_scenario(scenario)


@dataclass(frozen=True)
class EmulatorHandle:
    """How to reach a running emulator, plus helpers that drive its control endpoints."""

    base_url: str
    api_key: str
    bearer_token: str
    subscription_id: str

    @property
    def arm_url(self) -> str:
        """What MODELSHIFT_ARM_URL should be (no trailing slash)."""
        return self.base_url

    def endpoint_for(self, account: str) -> str:
        """The data-plane endpoint of ``account`` (as its ARM ``properties.endpoint`` says), ending in '/'."""
        return f"{self.base_url}/accounts/{account}/"

    def _control(self, method: str, path: str, json: Any = None) -> Any:
        with httpx.Client(base_url=self.base_url, headers={"api-key": self.api_key}, timeout=10) as client:
            response = client.request(method, f"/_emulator/{path}", json=json)
            response.raise_for_status()
            return response.json()

    def now(self) -> datetime:
        """The scenario clock's current time."""
        return datetime.fromisoformat(self._control("GET", "clock")["now"])

    def advance_clock(self, seconds: float) -> datetime:
        """Move the scenario clock forward by ``seconds``; returns the new scenario time."""
        return datetime.fromisoformat(self._control("POST", "clock", {"advance_seconds": seconds})["now"])

    def set_clock(self, when: datetime, speed: float | None = None) -> datetime:
        """Set the scenario clock to ``when`` (and optionally its speed)."""
        body: dict[str, Any] = {"set": when.isoformat()}
        if speed is not None:
            body["speed"] = speed
        return datetime.fromisoformat(self._control("POST", "clock", body)["now"])

    def inject_faults(self, account: str, deployment: str, **faults: Any) -> None:
        """Set faults for a deployment, e.g. ``rate_503=1.0``, ``reset_rate=0.5``, ``timeout_rate=1.0``."""
        self._control("POST", "faults", {"account": account, "deployment": deployment, "faults": faults})

    def clear_faults(self, account: str, deployment: str) -> None:
        """Remove every fault of a deployment."""
        self.inject_faults(account, deployment)

    def configure(self, *, latency_scale: float | None = None, page_size: int | None = None) -> None:
        """Change the latency scale or ARM page size while running."""
        body = {
            k: v for k, v in {"latency_scale": latency_scale, "page_size": page_size}.items() if v is not None
        }
        self._control("POST", "settings", body)

    def reset(self) -> None:
        """Back to the scenario as loaded."""
        self._control("POST", "reset")


@contextmanager
def running_emulator(
    scenario: Path | str | dict[str, Any] | Scenario | None = None,
    *,
    latency_scale: float | None = None,
    host: str = "127.0.0.1",
) -> Iterator[EmulatorHandle]:
    """Start the emulator on a free port in a background thread; stop it on exit."""
    resolved = resolve_scenario(scenario)
    if latency_scale is not None:
        resolved = resolved.model_copy(update={"latency_scale": latency_scale})
    with serve_in_thread(
        create_app(resolved),
        name="emulator",
        host=host,
        lifespan="off",
        graceful_shutdown_s=1,
        not_started=ScenarioError,
    ) as base_url:
        yield EmulatorHandle(
            base_url=base_url,
            api_key=resolved.auth.api_keys[0],
            bearer_token=resolved.auth.bearer_tokens[0],
            subscription_id=resolved.subscriptions[0].id,
        )
