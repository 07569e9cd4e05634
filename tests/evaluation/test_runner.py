"""The runner on the real emulator: deterministic per-item results, faults lose nothing, errors per item."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from runner_helpers import SUPPORT, runtime_for, small_dataset, write_bundle

from modelshift.bundle import Bundle, load_bundle
from modelshift.bundle.manifest import Evaluation
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import ConfigError
from modelshift.evaluation import compare
from modelshift.evaluation.dataset import Dataset
from modelshift.evaluation.pricing import DEFAULT_PRICES, PriceTable
from modelshift.evaluation.ratelimit import RateLimiter, RateLimits
from modelshift.evaluation.runner import BundleRun, ItemOutcome, Progress, Runner, score_run

ACCOUNT = "contoso-aoai-eus"
BIG = "big-4o"
DEFAULT_SCENARIO = (
    Path(__file__).resolve().parents[2] / "modelshift" / "emulator" / "scenarios" / "default.yaml"
)


def scenario_with(deployment: str, capacity: int) -> dict[str, Any]:
    """The default scenario plus one gpt-4o 2024-05-13 deployment of ``capacity`` in contoso-aoai-eus."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    account = data["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    assert account["name"] == ACCOUNT
    account["deployments"].append(
        {
            "name": deployment,
            "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-05-13"},
            "sku": {"name": "Standard", "capacity": capacity},
        }
    )
    return data


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    # one big deployment, so the runs of this module never meet the TPM window of an earlier one
    with running_emulator(scenario_with(BIG, 450), latency_scale=0.0) as handle:
        yield handle


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """support-chat 1.0.0 on the 450-unit deployment."""
    return write_bundle(tmp_path_factory.mktemp("big"), "1.0.0", model={"deployment": BIG})


def quality_policy(bundle: Bundle, min_items: int | None = None) -> Evaluation:
    """The bundle's gate without latency rows: loopback latency in a test is noise, not the model."""
    policy = bundle.manifest.evaluation
    metrics = {k: v for k, v in policy.metrics.items() if "latency" not in k}
    return policy.model_copy(update={"metrics": metrics, "min_items": min_items or policy.min_items})


def run_once(
    emu: EmulatorHandle, bundle: Bundle, dataset: Dataset, limiter: RateLimiter | None = None
) -> tuple[BundleRun, list[Progress]]:
    progress: list[Progress] = []

    async def go() -> BundleRun:
        async with httpx.AsyncClient(timeout=30) as client:
            runner = Runner(limiter, progress=progress.append)
            return await runner.run(runtime_for(bundle, emu, client), dataset)

    return asyncio.run(go()), progress


def comparable(outcome: ItemOutcome) -> tuple[Any, ...]:
    """Everything about an outcome except how it got there (latency, attempts, 429s)."""
    return (
        outcome.item_id,
        outcome.answer,
        outcome.contexts,
        outcome.prompt_tokens,
        outcome.completion_tokens,
        outcome.error,
    )


def test_identical_bundles_give_identical_items(emu: EmulatorHandle, big: Bundle) -> None:
    bundle = big
    dataset = small_dataset(12)
    first, progress = run_once(emu, bundle, dataset, RateLimiter(RateLimits.from_capacity(450)))
    second, _ = run_once(emu, load_bundle(bundle.root), dataset)
    assert [comparable(o) for o in first.outcomes] == [comparable(o) for o in second.outcomes]
    assert [o.item_id for o in first.outcomes] == [i.id for i in dataset.items]
    assert all(o.ok and o.answer and o.attempts == 1 for o in first.outcomes)
    assert first.stats.requests == 12 and first.stats.throttled == 0
    assert [p.done for p in progress] == list(range(1, 13)) and progress[-1].failed == 0
    assert (first.bundle_digest, first.dataset_digest) == (bundle.digest, dataset.digest)
    # the reservation matched what the emulator charged: prompt tokens + max_tokens
    assert first.stats.tokens_charged == sum(o.prompt_tokens + 400 for o in first.outcomes)

    items = score_run(first, bundle, PriceTable(models=dict(DEFAULT_PRICES)))
    report = compare(items, score_run(second, bundle), quality_policy(bundle, min_items=5))
    assert report.passed, report.render_text()
    assert all(i.cost is not None and i.cost > 0 for i in items)


def test_ten_percent_5xx_loses_no_item_and_changes_no_verdict(emu: EmulatorHandle, big: Bundle) -> None:
    bundle = big
    dataset = small_dataset(30)
    policy = quality_policy(bundle)
    clean, _ = run_once(emu, bundle, dataset)
    emu.inject_faults(ACCOUNT, BIG, rate_503=0.05, rate_500=0.05)
    try:
        faulted, progress = run_once(emu, bundle, dataset)
    finally:
        emu.clear_faults(ACCOUNT, BIG)
    assert faulted.stats.retries > 0, "the faults were not injected"
    assert faulted.failed == ()
    assert [comparable(o) for o in faulted.outcomes] == [comparable(o) for o in clean.outcomes]
    assert faulted.stats.requests == len(dataset) + faulted.stats.retries
    assert progress[-1].done == 30
    baseline = score_run(clean, bundle)
    assert (
        compare(score_run(faulted, bundle), baseline, policy).verdict
        == compare(baseline, baseline, policy).verdict
    )


@pytest.mark.parametrize(
    ("deployment", "kind"),
    [
        ("support-embed", "BadRequestError 400"),  # an embeddings model cannot chat
        ("no-such-deployment", "DeploymentNotFoundError 404"),
    ],
)
def test_permanent_failure_is_recorded_per_item(
    emu: EmulatorHandle, tmp_path: Path, deployment: str, kind: str
) -> None:
    bundle = write_bundle(tmp_path, "1.0.1", model={"deployment": deployment})
    run, progress = run_once(emu, bundle, small_dataset(3))
    assert [o.error_kind for o in run.outcomes] == [kind] * 3
    assert all(o.answer is None and o.attempts == 1 and o.error for o in run.outcomes)
    assert progress[-1].failed == 3 and run.stats.requests == 3
    items = score_run(run, bundle)
    assert all(i.failed for i in items)


def test_score_run_refuses_another_bundle(emu: EmulatorHandle, big: Bundle, tmp_path: Path) -> None:
    run, _ = run_once(emu, big, small_dataset(1))
    other = write_bundle(tmp_path, "1.0.2", parameters={"seed": 8})
    with pytest.raises(ConfigError, match="score a run with the bundle it was made with"):
        score_run(run, other)
    assert len(score_run(run, big)) == 1


@pytest.mark.slow
def test_real_429s_and_5xx_lose_nothing(tmp_path: Path) -> None:
    """A 6-unit deployment (6 requests per 10 s) driven with unknown limits: the runner meets real 429s."""
    with running_emulator(scenario_with("tiny-4o", 6), latency_scale=0.0) as emu:
        bundle = load_bundle(SUPPORT / "1.0.0")
        dataset = small_dataset(8)  # 8 x ~650 tokens fit the 6000 TPM window: only the RPM window binds
        clean, _ = run_once(emu, bundle, dataset)  # support-chat-4o: 50 units, no 429s
        small = write_bundle(
            tmp_path, "1.0.3", model={"deployment": "tiny-4o"}, parameters={"max_tokens": 60}
        )
        emu.inject_faults(ACCOUNT, "tiny-4o", rate_503=0.1)
        limiter = RateLimiter()  # limits unknown: learnt from the headers, 429s honoured
        faulted, progress = run_once(emu, small, dataset, limiter)
    assert faulted.stats.throttled > 0 and limiter.limits is not None
    assert faulted.failed == ()
    assert [o.item_id for o in faulted.outcomes] == [o.item_id for o in clean.outcomes]
    assert progress[-1].done == 8 and len(progress) == 8
    assert faulted.stats.requests == 8 + faulted.stats.retries + faulted.stats.throttled
