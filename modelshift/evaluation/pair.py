"""Evaluate a candidate bundle against its baseline on the same golden data, end to end.

Both bundles go through the same orchestration code (their own index, prompt and deployment), each
deployment paced by its own :class:`~modelshift.evaluation.ratelimit.RateLimiter` (two bundles on one
deployment share one, since they share its quota). The baseline (and the candidate) come from the store's
cache when that exact run exists. Then the per-item metrics, N's gate with the CANDIDATE's evaluation policy
(the policy the new combination is tested under), and, when both bundles are registered, the evaluation
record and its per-item table. The CLI (``modelshift eval``) calls :func:`evaluate_pair`; the Prefect
evaluate task calls its two halves, :func:`run_bundles` once per shard of :func:`plan_shards` (one shard per
deployment, on the configured task runner) and :func:`judge_pair`, so both paths give the same result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelshift.bundle import Bundle
from modelshift.bundle.manifest import AzureOpenAIModel, OpenAICompatibleModel
from modelshift.errors import ConfigError, NotFoundError
from modelshift.evaluation.cache import RunCache, run_cached
from modelshift.evaluation.dataset import Dataset, parse_dataset
from modelshift.evaluation.gate import compare
from modelshift.evaluation.judge import JudgeRunner, open_judge
from modelshift.evaluation.pricing import PriceTable
from modelshift.evaluation.ratelimit import RateLimiter
from modelshift.evaluation.records import EvaluationStore
from modelshift.evaluation.report import GateReport
from modelshift.evaluation.results import ItemResult
from modelshift.evaluation.runner import BundleRun, ProgressCallback, Runner, RunnerConfig, score_run
from modelshift.orchestration.connect import EndpointDirectory, ModelTarget, open_runtime
from modelshift.orchestration.runtime import BundleRuntime
from modelshift.settings import Settings
from modelshift.store import Store
from modelshift.store.records import EvaluationRecord


@dataclass(frozen=True)
class PairResult:
    """Both runs, their scored items, the gate's report and (if written) the evaluation record."""

    dataset: Dataset
    baseline: BundleRun
    candidate: BundleRun
    baseline_items: tuple[ItemResult, ...]
    candidate_items: tuple[ItemResult, ...]
    report: GateReport
    record: EvaluationRecord | None
    #: why no record was written (None when one was)
    not_recorded: str | None = None


def bundle_dataset(bundle: Bundle) -> Dataset:
    """The golden dataset the bundle's evaluation policy names (its bytes as the digest covers them)."""
    path = bundle.root / bundle.manifest.evaluation.dataset
    return parse_dataset(bundle.read_bytes("evaluation.dataset"), path)


def _registered(store: Store, bundles: Sequence[Bundle]) -> str | None:
    for bundle in bundles:
        try:
            store.get_bundle_by_digest(bundle.digest)
        except NotFoundError:
            return (
                f"{bundle.app}@{bundle.version} ({bundle.digest}) is not registered; "
                f"run `modelshift bundle register {bundle.root}` to keep evaluation records"
            )
    return None


def check_pair(baseline: Bundle, candidate: Bundle) -> None:
    """Refuse to compare two different apps (ConfigError naming both)."""
    if baseline.app != candidate.app:
        raise ConfigError(
            f"baseline is app {baseline.app!r} and candidate is app {candidate.app!r}; "
            "compare two versions of the same app"
        )


def deployment_key(bundle: Bundle) -> tuple[str, ...]:
    """Which deployment ``bundle`` calls, from its manifest: bundles with one key share one quota."""
    model = bundle.manifest.model
    if isinstance(model, AzureOpenAIModel):
        return (model.platform, model.subscription, model.resource_group, model.account, model.deployment)
    if isinstance(model, OpenAICompatibleModel):
        return (model.platform, model.endpoint, model.deployment or model.name)
    return (model.platform, bundle.digest)


def plan_shards(bundles: Sequence[Bundle]) -> list[tuple[Bundle, ...]]:
    """The bundles grouped by deployment, in first-seen order: one shard of an evaluation per deployment.

    Bundles on one deployment stay together because they share its rate limiter (its TPM/RPM); bundles on
    different deployments are independent and can run on different workers."""
    groups: dict[tuple[str, ...], list[Bundle]] = {}
    for bundle in bundles:
        groups.setdefault(deployment_key(bundle), []).append(bundle)
    return [tuple(group) for group in groups.values()]


async def run_bundles(
    bundles: Sequence[Bundle],
    dataset: Dataset,
    *,
    settings: Settings,
    directory: EndpointDirectory,
    client: httpx.AsyncClient,
    cache: RunCache | None = None,
    progress: ProgressCallback | None = None,
    config: RunnerConfig | None = None,
    judge: JudgeRunner | None = None,
) -> list[BundleRun]:
    """Every bundle over ``dataset`` at once (from ``cache`` when it holds the run), in the given order.

    One rate limiter per deployment: two bundles on the same deployment share its quota. ``judge``: the
    candidate's pinned judge (:func:`~modelshift.evaluation.judge.open_judge`), which scores every run."""
    limiters: dict[tuple[str, str], RateLimiter] = {}

    def runner_for(target: ModelTarget) -> Runner:
        key = (target.endpoint, target.deployment)
        if key not in limiters:
            limiters[key] = RateLimiter(target.limits)
        return Runner(limiters[key], config=config, progress=progress)

    opened: list[tuple[BundleRuntime, ModelTarget]] = []
    try:
        for bundle in bundles:
            opened.append(open_runtime(bundle, settings, directory, client=client))
        runs = await asyncio.gather(
            *(run_cached(runner_for(target), runtime, dataset, cache, judge) for runtime, target in opened)
        )
    finally:
        for runtime, _ in opened:
            runtime.close()
    return list(runs)


def judge_pair(
    baseline: Bundle,
    candidate: Bundle,
    runs: tuple[BundleRun, BundleRun],
    dataset: Dataset,
    *,
    settings: Settings,
    store: Store | None = None,
    prices: PriceTable | None = None,
    actor: str | None = None,
    migration_id: str | None = None,
) -> PairResult:
    """Score both runs, gate the candidate against the baseline, and record the outcome when registered."""
    base_run, cand_run = runs
    base_items = score_run(base_run, baseline, prices)
    cand_items = score_run(cand_run, candidate, prices)
    report = compare(cand_items, base_items, candidate.manifest.evaluation)
    record: EvaluationRecord | None = None
    why: str | None = "no state store was given"
    if store is not None:
        why = _registered(store, (baseline, candidate))
        if why is None:
            record = EvaluationStore(store).record(
                baseline=base_run,
                candidate=cand_run,
                baseline_items=base_items,
                candidate_items=cand_items,
                report=report,
                actor=actor or settings.actor,
                migration_id=migration_id,
            )
    return PairResult(
        dataset=dataset,
        baseline=base_run,
        candidate=cand_run,
        baseline_items=tuple(base_items),
        candidate_items=tuple(cand_items),
        report=report,
        record=record,
        not_recorded=why,
    )


async def evaluate_pair(
    baseline: Bundle,
    candidate: Bundle,
    *,
    settings: Settings,
    directory: EndpointDirectory,
    client: httpx.AsyncClient,
    dataset: Dataset | None = None,
    store: Store | None = None,
    progress: ProgressCallback | None = None,
    prices: PriceTable | None = None,
    config: RunnerConfig | None = None,
    actor: str | None = None,
    migration_id: str | None = None,
) -> PairResult:
    """Run both bundles on the dataset (default: the candidate's), gate, and record the outcome.

    In one event loop; the Prefect evaluate task runs the same two steps, :func:`run_bundles` per shard of
    :func:`plan_shards` on its task runner and then :func:`judge_pair`, so both give the same result."""
    check_pair(baseline, candidate)
    data = dataset if dataset is not None else bundle_dataset(candidate)
    cache: RunCache | None = EvaluationStore(store) if store is not None else None
    # the candidate's judge scores both runs: one judge, so the paired judge scores are comparable
    judge = open_judge(candidate, settings, directory, progress=progress)
    base_run, cand_run = await run_bundles(
        (baseline, candidate),
        data,
        settings=settings,
        directory=directory,
        client=client,
        cache=cache,
        progress=progress,
        config=config,
        judge=judge,
    )
    return judge_pair(
        baseline,
        candidate,
        (base_run, cand_run),
        data,
        settings=settings,
        store=store,
        prices=prices,
        actor=actor,
        migration_id=migration_id,
    )


def default_workdir(settings: Settings) -> Path:
    """Where bundles fetched from the store are written out for an evaluation."""
    return settings.home / "eval-bundles"
