"""Fleet-scan benchmark: 10,000 deployments over 200 accounts, served by the local Azure emulator.

Run: ``python benchmarks/scan.py [--accounts 200] [--per-account 50] [--arm-latency-ms MS]``

The same live scan (``modelshift.lifecycle.fetch_live`` + ``scan_fleet``) runs twice in one process against
one emulator: with bounded concurrency, and sequentially (concurrency 1). It prints wall times and the ratio;
the target is >= 10x and <= 10 s for the concurrent scan.

The emulator answers ARM instantly, which no real ARM does; a concurrency benchmark against a zero-latency
server only measures the CPU of two processes sharing two cores. So this script wraps the emulator app in an
ASGI middleware that delays every ARM response by ``--arm-latency-ms`` (default 150 ms; real ARM list calls
typically take 100-300 ms). Everything else is the real emulator over real
HTTP on a loopback port, in its own process (as ARM is not in the scanner's process, and so the two do not
share one interpreter lock).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn

from modelshift.bundle import load_bundle
from modelshift.emulator.app import create_app
from modelshift.emulator.scenario import default_scenario_data, parse_scenario
from modelshift.lifecycle import AsyncArmReader, BundleRef, fetch_live, scan_fleet
from modelshift.settings import Settings

SUB = "00000000-0000-0000-0000-000000000001"
LOCATIONS = ("eastus", "westeurope", "swedencentral", "eastus2")
MODELS = (
    ("gpt-4o", "2024-05-13"),
    ("gpt-4o", "2024-11-20"),
    ("gpt-4o-mini", "2024-07-18"),
    ("gpt-35-turbo", "0125"),
)


def build_scenario(accounts: int, per_account: int) -> dict[str, Any]:
    """Default catalog and a synthetic estate of ``accounts`` x ``per_account`` deployments."""
    data = default_scenario_data()
    accts = []
    for a in range(accounts):
        deps = []
        for d in range(per_account):
            name, version = MODELS[(a + d) % len(MODELS)]
            deps.append(
                {
                    "name": f"dep-{d:03d}",
                    "model": {"format": "OpenAI", "name": name, "version": version},
                    "sku": {"name": "Standard", "capacity": 1},
                }
            )
        accts.append(
            {"name": f"bench-{a:04d}", "location": LOCATIONS[a % len(LOCATIONS)], "deployments": deps}
        )
    data["subscriptions"] = [{"id": SUB, "resource_groups": [{"name": "rg-bench", "accounts": accts}]}]
    data["page_size"] = 100  # ARM's own page size for deployment lists
    data["default_usage_limit"] = 100_000
    return data


def bundles_for(accounts: int) -> list[BundleRef]:
    """One production bundle per account (owning ``dep-000``); the other deployments are unmanaged."""
    template = BundleRef.from_bundle(load_bundle("bundles/support-chat/1.0.0"))
    out = []
    for a in range(accounts):
        name, version = MODELS[a % len(MODELS)]
        model = template.manifest.model.model_copy(
            update={
                "resource_group": "rg-bench",
                "account": f"bench-{a:04d}",
                "location": LOCATIONS[a % len(LOCATIONS)],
                "deployment": "dep-000",
                "name": name,
                "version": version,
            }
        )
        manifest = template.manifest.model_copy(update={"app": f"app-{a:04d}", "model": model})
        out.append(template.model_copy(update={"app": f"app-{a:04d}", "manifest": manifest}))
    return out


class ArmLatency:
    """ASGI middleware: delay ARM responses (paths under /subscriptions) by a fixed time."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/subscriptions"):
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


def _run_server(data: dict[str, Any], latency_s: float, port: int) -> None:
    """Child process: the emulator (with ARM latency) on ``port``, until terminated."""
    app = ArmLatency(create_app(parse_scenario(data, "<benchmark>")), latency_s)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", backlog=2048)


def serve(data: dict[str, Any], latency_s: float) -> tuple[str, multiprocessing.Process]:
    """Start the emulator in its own process (like ARM, it is not the scanner's process) and wait for it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = multiprocessing.get_context("spawn").Process(
        target=_run_server, args=(data, latency_s, port), daemon=True
    )
    proc.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_emulator/clock", timeout=1)
            return url, proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"the emulator did not start on {url} within 60 s")


async def one_scan(settings: Settings, bundles: list[BundleRef], concurrency: int) -> tuple[float, int, int]:
    """Wall time of fetch + assess, and the numbers of deployments and rows seen."""
    limits = httpx.Limits(max_connections=max(concurrency, 1), max_keepalive_connections=max(concurrency, 1))
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        snapshot = await fetch_live(
            AsyncArmReader.from_settings(client, settings), bundles, concurrency=concurrency
        )
    report = scan_fleet(bundles, snapshot, as_of=datetime(2026, 1, 15, tzinfo=UTC))
    return time.perf_counter() - start, len(snapshot.deployments or []), len(report.rows)


def main() -> None:
    """Build the fleet, serve it, scan it both ways, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--per-account", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--arm-latency-ms", type=float, default=150.0)
    args = parser.parse_args()
    data = build_scenario(args.accounts, args.per_account)
    scenario = parse_scenario(data, "<benchmark>")
    bundles = bundles_for(args.accounts)
    url, proc = serve(data, args.arm_latency_ms / 1000)
    settings = Settings(arm_url=url, arm_token=scenario.auth.bearer_tokens[0])
    try:
        asyncio.run(one_scan(settings, bundles[:4], 4))  # warm-up: imports, first connections
        conc, n_deps, n_rows = asyncio.run(one_scan(settings, bundles, args.concurrency))
        seq, n_deps_seq, _ = asyncio.run(one_scan(settings, bundles, 1))
    finally:
        proc.terminate()
        proc.join(timeout=10)
    assert n_deps == n_deps_seq == args.accounts * args.per_account, (n_deps, n_deps_seq)
    ratio = seq / conc
    print(f"fleet: {args.accounts} accounts, {n_deps} deployments, {len(bundles)} bundles, {n_rows} rows")
    print(f"ARM latency added per request: {args.arm_latency_ms:.0f} ms; concurrency {args.concurrency}")
    print(f"concurrent scan: {conc:7.2f} s")
    print(f"sequential scan: {seq:7.2f} s")
    print(
        f"ratio: {ratio:.1f}x  (target >= 10x and concurrent <= 10 s: "
        f"{'met' if ratio >= 10 and conc <= 10 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
