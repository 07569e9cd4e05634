"""Gateway overhead: latency the gateway adds over calling the model backend directly, at a fixed rate.

Run: ``python benchmarks/gateway_overhead.py [--rate 200] [--seconds 10] [--backend trivial|emulator]``

Three processes, so no two share an interpreter lock: the backend (a trivial ASGI chat-completions server
that answers a fixed body at once, or the local Azure emulator with ``latency_scale`` 0), the gateway
(``modelshift.gateway`` over a SQLite store, one production bundle at 100 %), and this load generator.
The generator sends an open-loop stream at ``--rate`` requests per second for ``--seconds`` seconds, first
straight to the backend with exactly the request the bundle renders, then through the gateway's
``POST /apps/{app}/chat`` (after a warm-up of each), and prints p50 and p99 of both and their difference.
Target on a 2-core machine: <= 1 ms added at p50 and <= 3 ms at p99, at 200 rps.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

REPO = Path(__file__).resolve().parents[1]
SUPPORT = REPO / "bundles" / "support-chat"
APP = "bench"
ACCOUNT = "contoso-aoai-eus"
QUESTION = "How do I restore a single file from last night's backup?"

_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-2024-11-20",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Pick a snapshot and press Restore."},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128},
    }
).encode()


async def trivial_backend(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A chat-completions server that answers at once (raw ASGI: the backend's own cost stays tiny)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_COMPLETION)).encode()),
                (b"apim-request-id", b"bench"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _COMPLETION})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_backend(kind: str, port: int) -> None:
    if kind == "trivial":
        uvicorn.run(trivial_backend, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        return
    from modelshift.emulator.app import create_app
    from modelshift.emulator.scenario import default_scenario_data, parse_scenario

    data = default_scenario_data()
    data["latency_scale"] = 0.0
    for sub in data["subscriptions"]:
        for group in sub["resource_groups"]:
            for account in group["accounts"]:
                for dep in account.get("deployments", []):
                    dep["sku"]["capacity"] = 100_000  # room for the whole run: no 429s in a latency benchmark
    scenario = parse_scenario(data, "<benchmark scenario>")
    uvicorn.run(create_app(scenario), host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def _run_gateway(home: str, db_url: str, backend_url: str, port: int, httpx_transport: bool) -> None:
    from modelshift.clock import utcnow
    from modelshift.gateway.app import create_app
    from modelshift.gateway.runtimes import default_factory
    from modelshift.gateway.service import Gateway
    from modelshift.orchestration import EndpointDirectory
    from modelshift.settings import Settings
    from modelshift.store import Store

    settings = Settings(
        home=Path(home), arm_url=backend_url, api_key="emulator-key", arm_token="emulator-token"
    )
    store = Store.open(db_url)
    from modelshift.gateway.server import data_plane_client

    client = data_plane_client(httpx_transport=httpx_transport)
    # the bundle names its endpoint and capacity, so the gateway needs no ARM in this benchmark
    factory = default_factory(settings, client, EndpointDirectory(None))
    gateway = Gateway(store, factory, clock=utcnow, workdir=Path(home) / "gateway")
    gateway.closers.append(client.aclose)
    gc.freeze()  # as `modelshift gateway serve` does: startup objects leave the collector's generations
    uvicorn.run(create_app(gateway), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up within {timeout:.0f}s")


def _register_bundle(root: Path, db_url: str, endpoint: str) -> Any:
    from modelshift.bundle import load_bundle
    from modelshift.registry import register
    from modelshift.store import Store

    shutil.copytree(SUPPORT / "shared", root / "shared")
    shutil.copytree(SUPPORT / "1.0.0", root / "1.0.0")
    manifest = yaml.safe_load((root / "1.0.0" / "bundle.yaml").read_text())
    manifest["app"] = APP
    manifest["retrieval"] = None
    manifest["model"].update({"endpoint": endpoint, "name": "gpt-4o", "version": "2024-11-20"})
    (root / "1.0.0" / "bundle.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    bundle = load_bundle(root / "1.0.0")
    with Store.open(db_url) as store:
        register(store, bundle, actor="benchmark", adopt=True)
    return bundle


class RawClient:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams.

    httpx costs the generator far more CPU per request than the gateway spends, and on two shared cores
    the generator's own CPU shows up as latency on both paths; this client keeps that noise small."""

    def __init__(self, base_url: str) -> None:
        parsed = httpx.URL(base_url)
        self.host, self.port = parsed.host, parsed.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, target: str, body: bytes, headers: str = "") -> int:
        """POST ``body`` to ``target``; returns the status code (the body is read and dropped)."""
        reused = bool(self._idle)
        reader, writer = self._idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {target} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
            f"{headers}content-length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        if not status_line:  # the server closed an idle keep-alive connection: one retry on a new one
            writer.close()
            if reused:
                return await self.post(target, body, headers)
            raise SystemExit(f"{self.host}:{self.port} closed the connection without answering {target}")
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self._idle.append((reader, writer))
        return int(status_line.split()[1])

    def close(self) -> None:
        """Close every idle connection."""
        for _, writer in self._idle:
            writer.close()


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Target = tuple[RawClient, str, bytes, str]


async def _load(targets: list[Target], rate: float, n: int) -> list[list[float]]:
    """Send ``n`` requests at ``rate`` per second to each target, interleaved; latencies per target."""
    latencies: list[list[float]] = [[] for _ in targets]
    failures: list[str] = []

    async def one(k: int) -> None:
        client, path, body, headers = targets[k]
        started = time.perf_counter()
        status = await client.post(path, body, headers)
        if status != 200:
            failures.append(f"{path}: HTTP {status}")
        latencies[k].append((time.perf_counter() - started) * 1000.0)

    tasks = []
    t0 = time.perf_counter()
    step = 1.0 / (rate * len(targets))
    for i in range(n * len(targets)):
        delay = t0 + i * step - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i % len(targets))))
    await asyncio.gather(*tasks)
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    return latencies


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


async def _measure(
    direct: Target, through: Target, rate: float, seconds: float, pids: dict[str, int | None]
) -> dict[str, Any]:
    n = int(rate * seconds)
    await _load([direct, through], rate, max(50, n // 10))  # warm-up: connections, runtimes, caches
    cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    direct_ms, gateway_ms = await _load([direct, through], rate, n)
    cpu_after = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    result: dict[str, Any] = {"rate_rps_each": rate, "requests_each": n}
    for name, values in (("direct", direct_ms), ("gateway", gateway_ms)):
        result[name] = {"p50_ms": round(_pct(values, 50), 3), "p99_ms": round(_pct(values, 99), 3)}
    result["added"] = {
        "p50_ms": round(result["gateway"]["p50_ms"] - result["direct"]["p50_ms"], 3),
        "p99_ms": round(result["gateway"]["p99_ms"] - result["direct"]["p99_ms"], 3),
    }
    result["target_met"] = result["added"]["p50_ms"] <= 1.0 and result["added"]["p99_ms"] <= 3.0
    # CPU per request does not depend on what else the machine runs: the cost the gateway adds
    result["cpu_ms_per_request"] = {
        name: None
        if cpu_before[name] is None or cpu_after[name] is None
        else round((cpu_after[name] - cpu_before[name]) * 1000.0 / n, 3)  # type: ignore[operator]
        for name in pids
    }
    load = Path("/proc/loadavg")
    result["load_average_1m"] = float(load.read_text().split()[0]) if load.exists() else None
    return result


def main() -> None:
    """Parse arguments, start backend and gateway processes, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measured phase")
    parser.add_argument("--backend", choices=["trivial", "emulator"], default="trivial")
    parser.add_argument(
        "--httpx-transport",
        action="store_true",
        help="gateway uses httpx's pooled transport (for comparison)",
    )
    args = parser.parse_args()

    from modelshift.orchestration import BundleRuntime, generation_params

    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        root = Path(tmp)
        db_url = f"sqlite:///{root / 'state.db'}"
        backend_port, gateway_port = _free_port(), _free_port()
        backend_url = f"http://127.0.0.1:{backend_port}"
        endpoint = f"{backend_url}/accounts/{ACCOUNT}/" if args.backend == "emulator" else f"{backend_url}/"
        bundle = _register_bundle(root, db_url, endpoint)
        backend = ctx.Process(target=_run_backend, args=(args.backend, backend_port), daemon=True)
        gateway = ctx.Process(
            target=_run_gateway,
            args=(str(root / "home"), db_url, backend_url, gateway_port, args.httpx_transport),
            daemon=True,
        )
        backend.start()
        gateway.start()
        try:
            gateway_base = f"http://127.0.0.1:{gateway_port}"
            _wait_up(backend_url)
            _wait_up(f"{gateway_base}/healthz")
            runtime = BundleRuntime(bundle, inference=None, retriever=None)  # type: ignore[arg-type]
            prepared = runtime.prepare(QUESTION)
            direct_body = {"messages": list(prepared.messages), **generation_params(bundle)}
            deployment = bundle.manifest.model.deployment
            api = "2024-10-21"
            direct_url = f"{endpoint}openai/deployments/{deployment}/chat/completions?api-version={api}"
            direct_path = httpx.URL(direct_url).raw_path.decode()
            key = "api-key: emulator-key\r\n"  # what the gateway sends too (the emulator checks it)
            direct = (RawClient(backend_url), direct_path, json.dumps(direct_body).encode(), key)
            chat = json.dumps({"question": QUESTION, "user": "bench-user"}).encode()
            through = (RawClient(gateway_base), f"/apps/{APP}/chat", chat, "")
            pids = {"gateway": gateway.pid, "backend": backend.pid}
            result = asyncio.run(_measure(direct, through, args.rate, args.seconds, pids))
            result["backend"] = args.backend
            result["gateway_transport"] = "httpx" if args.httpx_transport else "stream"
            print(json.dumps(result, indent=2))
        finally:
            for process in (gateway, backend):
                process.terminate()
                process.join(10)


if __name__ == "__main__":
    main()
