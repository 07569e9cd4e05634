"""The baseline cache: a bundle's outcomes on a dataset are measured once per evaluator version.

The key is (bundle digest, dataset digest, evaluator version). The evaluator version is
:data:`~modelshift.evaluation.runner.RUNNER_VERSION`, plus the pinned judge's identity when a judge scores
the answers (:mod:`modelshift.evaluation.judge`). The same bytes of bundle and data, run by the same runner
semantics and judged by the same judge, give the same outcomes (the emulator and a pinned deployment with a
fixed seed are deterministic; for a real model the cached run IS the baseline that was measured). Only
complete runs are cached, so an item that failed on a bad day is measured again.
"""

from __future__ import annotations

from typing import Protocol

from modelshift.evaluation.dataset import Dataset
from modelshift.evaluation.judge import JudgeRunner, judged_errors
from modelshift.evaluation.runner import RUNNER_VERSION, BundleRun, Progress, Runner
from modelshift.orchestration.runtime import BundleRuntime


class RunCache(Protocol):
    """Where finished runs are kept (:class:`modelshift.evaluation.records.EvaluationStore` is one)."""

    def cached_run(self, bundle_digest: str, dataset_digest: str, evaluator_version: str) -> BundleRun | None:
        """The run stored under this key, or None."""
        ...

    def save_run(self, run: BundleRun) -> bool:
        """Store a complete run; False when the key was already stored."""
        ...


async def run_cached(
    runner: Runner,
    runtime: BundleRuntime,
    dataset: Dataset,
    cache: RunCache | None,
    judge: JudgeRunner | None = None,
) -> BundleRun:
    """``runtime`` over ``dataset``, from ``cache`` when it holds this exact key, else run and keep it.

    With a ``judge`` the answers are scored by it before the run is kept, under the judge's evaluator
    version: a run judged by another judge (or by none) is another key, so a judge change measures again.
    A run on which the judge failed for some item is not kept either."""
    version = judge.evaluator_version if judge is not None else RUNNER_VERSION
    if cache is not None:
        hit = cache.cached_run(runtime.bundle.digest, dataset.digest, version)
        if hit is not None:
            if runner.progress is not None:
                label = f"{runtime.bundle.app}@{runtime.bundle.version} (cached)"
                runner.progress(Progress(label, len(hit.outcomes), len(hit.outcomes), len(hit.failed), 0))
            return hit
    run = await runner.run(runtime, dataset)
    if judge is not None:
        run = await judge.judge(run, f"{runtime.bundle.app}@{runtime.bundle.version}")
    if cache is not None and not run.failed and not judged_errors(run):
        cache.save_run(run)
    return run
