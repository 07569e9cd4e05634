"""Evaluation throughput on a rate-limited deployment: the modelshift runner vs a naive client.

Run: ``python benchmarks/eval_throughput.py [--capacity 12] [--items 60] [--concurrency 8] [--json]``

Both clients evaluate the same bundle (support-chat with small chunks and ``max_tokens`` 64) on the same
golden items, at the same time, each on its own emulator deployment of ``--capacity`` units
(capacity x 1000 TPM, 6 RPM per 1000 TPM, enforced by the emulator as Azure does: a request's
prompt tokens + max_tokens over a sliding 60-second window, requests over 10-second windows):

- runner: :class:`modelshift.evaluation.runner.Runner` with the deployment's limits (token buckets,
  reservations corrected by usage and headers, 429 pauses, one attempt per adapter call);
- naive: a fixed pool of ``--concurrency`` workers calling the same orchestrator with SDK-style retries
  (the Azure adapter's RetryPolicy with 3 attempts, as the openai SDK's ``max_retries=2``: wait what
  ``retry-after-ms`` says, else exponential backoff); an item that is still throttled then fails.

Reported per client: items answered and failed, wall time, tokens charged (what the emulator counted:
prompt + max_tokens of every admitted request), HTTP requests and 429s, and how much of the quota it used.
The "simple" ideal is tokens / TPM minutes (the issue's definition). It is not the bound on a sliding
window that starts empty: the first TPM tokens (and RPM / 6 requests) go at once, after that room only
comes back as earlier requests leave their windows. The real bound ("ideal s") replays the answered items'
costs, in order, through the emulator's own limiter and takes the time the last one is admitted; no client
can finish earlier (less one latency). "quota used" is that ideal over the wall time; "quota(simple)" is
tokens / (TPM x wall minutes), above 100 % because of the initial full window.
Targets: runner >= 95 % of the quota, 0 failed items, >= 1.5x the naive client's items/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelshift.bundle import Bundle, load_bundle
from modelshift.emulator.ratelimit import SlidingWindowLimiter
from modelshift.emulator.scenario import default_scenario_data
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import ModelshiftError
from modelshift.evaluation.dataset import Dataset, DatasetItem, parse_dataset
from modelshift.evaluation.ratelimit import RateLimiter, RateLimits
from modelshift.evaluation.runner import Runner
from modelshift.orchestration import SINGLE_ATTEMPT, BundleRuntime, open_index
from modelshift.platforms import azure
from modelshift.platforms.azure.retry import RetryPolicy
from modelshift.settings import Settings

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "contoso-aoai-eus"
MAX_TOKENS = 64
#: the openai SDK's defaults: max_retries=2, exponential 0.5 s .. 8 s, retry-after honoured
SDK_STYLE = RetryPolicy(max_attempts=3, total_budget=3600.0, base_delay=0.5, max_delay=8.0, jitter=0.25)


@dataclass
class Outcome:
    """One client's run."""

    client: str
    items: int
    answered: int
    failed: int
    wall_seconds: float
    tokens_charged: int
    requests: int
    throttled: int
    quota_simple: float
    quota_used: float
    ideal_simple_seconds: float
    ideal_window_seconds: float
    items_per_second: float
    passes: int


def scenario(capacity: int) -> dict[str, Any]:
    """The default estate plus two gpt-4o deployments of ``capacity`` units in contoso-aoai-eus."""
    data = default_scenario_data()
    account = data["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    for name in ("bench-runner", "bench-naive"):
        account["deployments"].append(
            {
                "name": name,
                "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-05-13"},
                "sku": {"name": "Standard", "capacity": capacity},
            }
        )
    return data


def bench_bundle(root: Path, deployment: str) -> Bundle:
    """support-chat 1.0.0 with small chunks and answers, on ``deployment``."""
    src = REPO / "bundles" / "support-chat"
    if not (root / "shared").exists():
        shutil.copytree(src / "shared", root / "shared")
    target = root / deployment
    shutil.copytree(src / "1.0.0", target)
    manifest = yaml.safe_load((target / "bundle.yaml").read_text())
    manifest["version"] = f"bench-{deployment}"
    manifest["model"]["deployment"] = deployment
    manifest["parameters"]["max_tokens"] = MAX_TOKENS
    manifest["retrieval"].update({"chunk_tokens": 128, "overlap_tokens": 16, "top_k": 2})
    (target / "bundle.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return load_bundle(target)


def dataset(n: int) -> Dataset:
    """``n`` golden items (the support-chat set, repeated with new ids when ``n`` is larger)."""
    path = REPO / "bundles" / "support-chat" / "shared" / "golden.jsonl"
    base = parse_dataset(path.read_bytes(), path).items
    items = [
        DatasetItem(f"{item.id}-{i // len(base)}", item.question, item.answer, item.sources)
        for i, item in ((i, base[i % len(base)]) for i in range(n))
    ]
    lines = [json.dumps({"id": i.id, "question": i.question, "answer": i.answer}) for i in items]
    return parse_dataset("\n".join(lines).encode(), path)


def runtime(
    bundle: Bundle, emu: EmulatorHandle, client: httpx.AsyncClient, home: Path, policy: RetryPolicy
) -> BundleRuntime:
    """A runtime for ``bundle`` on the emulator's contoso account."""
    settings = Settings(home=home, arm_url=emu.arm_url, api_key=emu.api_key)
    inference = azure.async_openai_client(emu.endpoint_for(ACCOUNT), settings, client=client, policy=policy)
    return BundleRuntime(bundle, inference, open_index(bundle, home))


class Counter:
    """Counts a client's HTTP responses, and its 429s, through an httpx event hook."""

    def __init__(self) -> None:
        self.requests = 0
        self.throttled = 0

    async def __call__(self, response: httpx.Response) -> None:
        self.requests += 1
        self.throttled += response.status_code == 429


def ideal_seconds(costs: list[int], capacity: int) -> float:
    """When the last request could be admitted at the earliest: the emulator's own limiter, replayed.

    Requests are admitted in order, each as soon as both windows have room (greedy in order is the best
    any client can do for a fixed order); this is the wall time no client can beat, less one latency.
    """
    now = [0.0]
    limiter = SlidingWindowLimiter(capacity, monotonic=lambda: now[0])
    for cost in costs:
        while not (decision := limiter.acquire(cost)).allowed:
            now[0] += decision.retry_after_s
    return now[0]


def summarise(
    client: str,
    items: int,
    costs: list[int],
    wall: float,
    counter: Counter,
    capacity: int,
    passes: int = 1,
) -> Outcome:
    """Quota fractions and ideal times of one run (``costs``: what each answered item was charged)."""
    tpm = capacity * 1000
    tokens = sum(costs)
    minutes = wall / 60.0
    ideal = ideal_seconds(costs, capacity)
    answered = len(costs)
    return Outcome(
        client=client,
        items=items,
        answered=answered,
        failed=items - answered,
        wall_seconds=round(wall, 2),
        tokens_charged=tokens,
        requests=counter.requests,
        throttled=counter.throttled,
        quota_simple=round(tokens / (tpm * minutes), 4),
        quota_used=round(ideal / wall, 4),
        ideal_simple_seconds=round(tokens / tpm * 60.0, 1),
        ideal_window_seconds=round(ideal, 1),
        items_per_second=round(answered / wall, 4),
        passes=passes,
    )


async def run_runner(rt: BundleRuntime, data: Dataset, capacity: int, counter: Counter) -> Outcome:
    """The modelshift runner, paced by the deployment's limits."""
    limits = RateLimits.from_capacity(capacity)
    runner = Runner(RateLimiter(limits))
    result = await runner.run(rt, data)
    costs = [o.prompt_tokens + rt.max_tokens for o in result.outcomes if o.ok]
    return summarise("runner", len(data), costs, result.stats.wall_seconds, counter, capacity)


async def run_naive(
    rt: BundleRuntime, data: Dataset, concurrency: int, capacity: int, counter: Counter, max_passes: int
) -> Outcome:
    """A fixed pool of workers with SDK-style retries inside the adapter; failed items are run again in
    another pass (what a user of such a client does), up to ``max_passes``."""
    costs: list[int] = []
    pending = list(data.items)
    passes = 0
    started = time.monotonic()
    while pending and passes < max_passes:
        passes += 1
        queue: asyncio.Queue[DatasetItem] = asyncio.Queue()
        for item in pending:
            queue.put_nowait(item)
        failed: list[DatasetItem] = []

        async def worker(queue: asyncio.Queue[DatasetItem], failed: list[DatasetItem]) -> None:
            while not queue.empty():
                item = queue.get_nowait()
                try:
                    answer = await rt.answer(item.question)
                except ModelshiftError:
                    failed.append(item)
                    continue
                # the emulator charges prompt tokens + max_tokens for the admitted request
                costs.append(answer.usage.prompt_tokens + rt.max_tokens)

        await asyncio.gather(*(worker(queue, failed) for _ in range(concurrency)))
        pending = failed
    wall = time.monotonic() - started
    return summarise("naive", len(data), costs, wall, counter, capacity, passes)


async def main_async(args: argparse.Namespace, emu: EmulatorHandle, work: Path) -> list[Outcome]:
    data = dataset(args.items)
    home = work / "home"
    fast_count, naive_count = Counter(), Counter()
    async with (
        httpx.AsyncClient(timeout=120, event_hooks={"response": [fast_count]}) as fast_client,
        httpx.AsyncClient(timeout=120, event_hooks={"response": [naive_count]}) as naive_client,
    ):
        fast = runtime(bench_bundle(work / "bundles", "bench-runner"), emu, fast_client, home, SINGLE_ATTEMPT)
        naive = runtime(bench_bundle(work / "bundles", "bench-naive"), emu, naive_client, home, SDK_STYLE)
        results = await asyncio.gather(
            run_runner(fast, data, args.capacity, fast_count),
            run_naive(naive, data, args.concurrency, args.capacity, naive_count, args.max_passes),
        )
    return list(results)


def main() -> None:
    """Parse arguments, run both clients against one emulator, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=12, help="deployment capacity (units of 1000 TPM)")
    parser.add_argument("--items", type=int, default=60, help="golden items per client")
    parser.add_argument("--concurrency", type=int, default=8, help="the naive client's fixed workers")
    parser.add_argument("--max-passes", type=int, default=5, help="naive client: runs over failed items")
    parser.add_argument("--latency-scale", type=float, default=0.02, help="emulator latency scale")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelshift-bench-"))
    try:
        with running_emulator(scenario(args.capacity), latency_scale=args.latency_scale) as emu:
            results = asyncio.run(main_async(args, emu, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runner, naive = results
    speedup = runner.items_per_second / naive.items_per_second if naive.items_per_second else float("inf")
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "speedup": round(speedup, 2)}, indent=2))
        return
    print(
        f"deployment: {args.capacity} units = {args.capacity * 1000} TPM, {args.capacity * 6} RPM; "
        f"{args.items} items"
    )
    header = (
        "client", "answered", "failed", "passes", "wall s", "tokens", "requests", "429s",
        "quota used", "quota(simple)", "ideal s", "items/s",
    )  # fmt: skip
    print("  ".join(f"{h:>10}" for h in header))
    for r in results:
        row = (
            r.client, r.answered, r.failed, r.passes, r.wall_seconds, r.tokens_charged, r.requests,
            r.throttled, f"{r.quota_used:.1%}", f"{r.quota_simple:.1%}", r.ideal_window_seconds,
            r.items_per_second,
        )  # fmt: skip
        print("  ".join(f"{v!s:>10}" for v in row))
    print(f"runner / naive items per second: {speedup:.2f}x")


if __name__ == "__main__":
    main()
