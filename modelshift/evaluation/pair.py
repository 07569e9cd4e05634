"""Evaluate a candidate bundle against its baseline on the same golden data, end to end.

Both bundles go through the same orchestration code (their own index, prompt and deployment), each
deployment paced by its own :class:`~modelshift.evaluation.ratelimit.RateLimiter` (two bundles on one
deployment share one, since they share its quota). The baseline (and the candidate) come from the store's
cache when that exact run exists. Then the per-item metrics, N's gate with the CANDIDATE's evaluation policy
(the policy the new combination is tested under), and, when both bundles are registered, the evaluation
record and its per-item table. The CLI (``modelshift eval``) and the Prefect evaluate task call this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelshift.bundle import Bundle
from modelshift.errors import ConfigError, NotFoundError
from modelshift.evaluation.cache import RunCache, run_cached
from modelshift.evaluation.dataset import Dataset, parse_dataset
from modelshift.evaluation.gate import compare
from modelshift.evaluation.pricing import PriceTable
from modelshift.evaluation.ratelimit import RateLimiter
from modelshift.evaluation.records import EvaluationStore
from modelshift.evaluation.report import GateReport
from modelshift.evaluation.results import ItemResult
from modelshift.evaluation.runner import BundleRun, ProgressCallback, Runner, RunnerConfig, score_run
from modelshift.orchestration.connect import EndpointDirectory, ModelTarget, open_runtime
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
    """Run both bundles on the dataset (default: the candidate's), gate, and record the outcome."""
    if baseline.app != candidate.app:
        raise ConfigError(
            f"baseline is app {baseline.app!r} and candidate is app {candidate.app!r}; "
            "compare two versions of the same app"
        )
    data = dataset if dataset is not None else bundle_dataset(candidate)
    cache: RunCache | None = EvaluationStore(store) if store is not None else None
    limiters: dict[tuple[str, str], RateLimiter] = {}

    def runner_for(target: ModelTarget) -> Runner:
        # one limiter per deployment: two bundles on the same deployment share its quota
        key = (target.endpoint, target.deployment)
        if key not in limiters:
            limiters[key] = RateLimiter(target.limits)
        return Runner(limiters[key], config=config, progress=progress)

    base_rt, base_target = open_runtime(baseline, settings, directory, client=client)
    try:
        cand_rt, cand_target = open_runtime(candidate, settings, directory, client=client)
    except BaseException:
        base_rt.close()
        raise
    try:
        base_run, cand_run = await asyncio.gather(
            run_cached(runner_for(base_target), base_rt, data, cache),
            run_cached(runner_for(cand_target), cand_rt, data, cache),
        )
    finally:
        base_rt.close()
        cand_rt.close()
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
        dataset=data,
        baseline=base_run,
        candidate=cand_run,
        baseline_items=tuple(base_items),
        candidate_items=tuple(cand_items),
        report=report,
        record=record,
        not_recorded=why,
    )


def default_workdir(settings: Settings) -> Path:
    """Where bundles fetched from the store are written out for an evaluation."""
    return settings.home / "eval-bundles"
