"""The runner's adaptive concurrency: Little's law on the limits and observed latency, no fixed number.

Unit level: the target from a limiter's admission and the latency estimate, the unknown-limits window
(grow per answer, halve per 429), the configuration checks. On the emulator: a latency-bound deployment
drives the concurrency up to the ceiling and every item is answered once, in dataset order.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from runner_helpers import SUPPORT, runtime_for, small_dataset, write_bundle
from test_runner import scenario_with
from test_runner_ratelimit import FakeTime

from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import ConfigError
from modelshift.evaluation.dataset import Dataset, parse_dataset
from modelshift.evaluation.ratelimit import RateLimiter, RateLimits, tokenizer_for_model
from modelshift.evaluation.runner import BundleRun, Concurrency, Runner, RunnerConfig


def limiter(capacity: int | None, clock: FakeTime) -> RateLimiter:
    limits = RateLimits.from_capacity(capacity) if capacity is not None else None
    return RateLimiter(limits, monotonic=clock.monotonic, sleep=clock.sleep)


def timed(concurrency: Concurrency, latencies: list[float], cost: int) -> None:
    """Record answers of ``latencies`` seconds for requests estimated at ``cost`` tokens."""
    for latency in latencies:
        concurrency.estimated(cost)
        concurrency.sent()
        concurrency.returned(latency)


def test_steady_state_is_littles_law_on_the_limits() -> None:
    clock = FakeTime()
    lim = limiter(600, clock)  # 600k TPM, 3600 RPM
    concurrency = Concurrency(RunnerConfig())
    timed(concurrency, [2.0] * 9 + [4.0], cost=2000)
    assert concurrency.latency() == 4.0  # the 90th percentile of the timed answers
    asyncio.run(lim.acquire(600_000))  # the window is spent: nothing more goes at once
    # 600k TPM / 2000 tokens = 5 requests/s, x 4 s latency x 1.25 headroom
    assert concurrency.target(lim) == math.ceil(5 * 4.0 * 1.25)


def test_room_in_the_buckets_is_used_at_once() -> None:
    clock = FakeTime()
    lim = limiter(60, clock)  # 60k TPM: 30 requests of 2000 tokens at once, 60 requests per 10 s
    concurrency = Concurrency(RunnerConfig())
    timed(concurrency, [1.0], cost=2000)
    assert concurrency.target(lim) == 30
    concurrency.sent()
    concurrency.sent()
    asyncio.run(lim.acquire(4000))  # two on the wire hold 4000 tokens: 28 more fit
    assert concurrency.target(lim) == 2 + 28
    lim.throttled(5.0)  # a 429 pause: nothing goes at once until it is over
    assert concurrency.target(lim) == RunnerConfig().min_concurrency


def test_target_stays_within_the_bounds() -> None:
    clock = FakeTime()
    config = RunnerConfig(max_concurrency=40, min_concurrency=3)
    wide = Concurrency(config)
    timed(wide, [30.0], cost=100)
    assert wide.target(limiter(10_000, clock)) == 40  # 10M TPM would take thousands
    tight = Concurrency(config)
    timed(tight, [0.1], cost=5000)
    small = limiter(6, clock)
    asyncio.run(small.acquire(5000))
    assert tight.target(small) == 3  # 6k TPM, a 5000-token request a minute: the floor


def test_before_any_answer_the_request_window_and_the_initial_latency_count() -> None:
    clock = FakeTime()
    concurrency = Concurrency(RunnerConfig())
    assert concurrency.latency() == RunnerConfig().initial_latency
    assert concurrency.cost() == 1.0
    # 12 units: 12 requests per 10-second window is all that may go at once
    assert concurrency.target(limiter(12, clock)) == 12


def test_unknown_limits_grow_per_answer_and_halve_per_429() -> None:
    clock = FakeTime()
    lim = limiter(None, clock)
    concurrency = Concurrency(RunnerConfig(initial_concurrency=8, max_concurrency=100))
    assert concurrency.target(lim) == 8
    timed(concurrency, [0.5] * 8, cost=1000)  # one round trip of answers: doubled
    assert concurrency.target(lim) == 16
    concurrency.sent()
    concurrency.throttled()
    assert concurrency.target(lim) == 8 and concurrency.on_the_wire == 0
    timed(concurrency, [0.5] * 9, cost=1000)  # after a 429: about one more per round trip
    assert concurrency.target(lim) == 9
    for _ in range(10):
        concurrency.sent()
        concurrency.throttled()
    assert concurrency.target(lim) == RunnerConfig().min_concurrency


def test_peak_counts_requests_on_the_wire() -> None:
    concurrency = Concurrency(RunnerConfig())
    for _ in range(5):
        concurrency.sent()
    concurrency.returned(None)
    concurrency.sent()
    assert concurrency.peak == 5 and concurrency.on_the_wire == 5


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min_concurrency": 0}, "min_concurrency=0"),
        ({"min_concurrency": 10, "max_concurrency": 5}, "max_concurrency=5"),
        ({"initial_latency": 0.0}, "initial_latency=0.0"),
        ({"headroom": 0.5}, "headroom=0.5"),
    ],
)
def test_bad_concurrency_settings_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        RunnerConfig(**changes)


def repeated(n: int) -> Dataset:
    """``n`` items: the golden questions again and again, with their own ids."""
    base = small_dataset(62).items
    rows = [base[i % len(base)] for i in range(n)]
    lines = [
        json.dumps({"id": f"{item.id}-{i}", "question": item.question, "answer": item.answer})
        for i, item in enumerate(rows)
    ]
    return parse_dataset("\n".join(lines).encode(), SUPPORT / "shared" / "golden.jsonl")


@pytest.mark.slow
def test_concurrency_rises_to_the_quota_on_a_latency_bound_deployment(tmp_path: Path) -> None:
    """1000 units admit these 150 requests at once and answers take ~1 s: the runner is latency-bound,
    so it has to keep far more than a fixed 8 or 32 in flight to use the quota."""
    data = scenario_with("wide-4o", 1000)
    data["profiles"]["gpt-4o@2024-05-13"]["latency"] = {"median_ms": 1000, "p95_ms": 1500}
    bundle = write_bundle(tmp_path, "1.0.0", model={"deployment": "wide-4o"})
    dataset = repeated(150)
    tokenizer_for_model(bundle.manifest.model.name)  # loaded once per process: not part of the timing

    async def go(emu: EmulatorHandle) -> BundleRun:
        async with httpx.AsyncClient(timeout=60) as client:
            runner = Runner(RateLimiter(RateLimits.from_capacity(1000)))
            return await runner.run(runtime_for(bundle, emu, client), dataset)

    with running_emulator(data, latency_scale=1.0) as emu:
        run = asyncio.run(go(emu))
    assert run.failed == ()
    assert [o.item_id for o in run.outcomes] == [i.id for i in dataset.items]
    assert run.stats.requests == 150 and run.stats.throttled == 0
    assert run.stats.peak_concurrency >= 60, run.stats
    # any fixed pool of 8 needs about 150 / 8 x 1 s = 18.75 s; the runner a few latencies (plus CPU)
    assert run.stats.wall_seconds < 150 / 8 * 1.0 / 1.5, run.stats
