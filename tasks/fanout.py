"""The evaluation fan-out: one Prefect task per shard of an evaluation, on the configured task runner.

A shard is the bundles of one evaluation that call one deployment (they share its rate limiter); see
:func:`modelshift.evaluation.pair.plan_shards`. The ``evaluation-fanout`` subflow loads the golden dataset
once, runs every shard as an ``evaluate-shard`` task and returns the runs by bundle digest; the evaluate task
then scores and gates them (:func:`modelshift.evaluation.pair.judge_pair`). Its task runner comes from the
settings (``MODELSHIFT_TASK_RUNNER``, ``_DASK_ADDRESS``, ``_DASK_WORKERS``): Prefect's thread pool by default,
prefect-dask's ``DaskTaskRunner`` with ``MODELSHIFT_TASK_RUNNER=dask`` (an existing cluster at
``MODELSHIFT_DASK_ADDRESS``, or a temporary local one). Each shard task opens its own store connection, HTTP
clients and event loop, so it can run on any Dask worker that has modelshift installed and the same
``MODELSHIFT_*`` settings.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar
from uuid import UUID

import httpx
from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from modelshift.bundle import Bundle
from modelshift.errors import ConfigError
from modelshift.evaluation.dataset import Dataset
from modelshift.evaluation.judge import open_judge
from modelshift.evaluation.pair import bundle_dataset, run_bundles
from modelshift.evaluation.records import EvaluationStore
from modelshift.evaluation.runner import BundleRun, Progress
from modelshift.orchestration.connect import EndpointDirectory
from modelshift.platforms.azure import arm_client
from modelshift.prepare.baseline import load_baseline
from modelshift.settings import RunnerKind, Settings, get_settings, load_settings
from modelshift.store import Store
from tasks.report import artifact_key
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, retry_condition_fn

#: seconds a model or ARM call may take before it counts as a transient failure
HTTP_TIMEOUT_S = 120.0
#: a progress artifact is written at most this often (each write is one Prefect API call)
PROGRESS_EVERY_S = 1.0

T = TypeVar("T")


class LatestProgress:
    """The newest progress of each bundle, written by the evaluation thread, read by the task thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sides: dict[str, Progress] = {}

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._sides[progress.bundle] = progress

    def snapshot(self) -> tuple[float, str]:
        """Percent done over every bundle, and a one-line description."""
        with self._lock:
            sides = list(self._sides.values())
        total = sum(p.total for p in sides)
        done = sum(p.done for p in sides)
        percent = 100.0 * done / total if total else 0.0
        text = "; ".join(
            f"{p.bundle}: {p.done}/{p.total} ({p.failed} failed, {p.throttled} throttled)" for p in sides
        )
        return percent, text or "starting"


def with_progress(work: Callable[[], T], progress: LatestProgress, artifact: UUID) -> T:
    """Run ``work`` on its own thread, writing ``progress`` to the progress ``artifact`` while it runs.

    The calling thread keeps Prefect's run context (artifacts need it); ``work`` gets a thread where it may
    start its own event loop."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate") as pool:
        future = pool.submit(work)
        shown: tuple[float, str] | None = None
        while True:
            try:
                return future.result(timeout=PROGRESS_EVERY_S)
            except FutureTimeout:
                now = progress.snapshot()
                if now != shown:  # throttled: at most one write per interval, none when nothing moved
                    update_progress_artifact(artifact, now[0], now[1][:500])
                    shown = now


def _run_shard(
    settings: Settings, digests: list[str], judge_of: str, dataset: Dataset, progress: LatestProgress
) -> list[BundleRun]:
    async def run(store: Store, bundles: list[Bundle], judged_by: Bundle) -> list[BundleRun]:
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as sync_client:
            directory = EndpointDirectory(arm_client(settings, client=sync_client))
            # every shard scores with the candidate's pinned judge, as evaluate_pair does for both sides
            judge = open_judge(judged_by, settings, directory, progress=progress)
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
                return await run_bundles(
                    bundles,
                    dataset,
                    settings=settings,
                    directory=directory,
                    client=client,
                    cache=EvaluationStore(store),
                    progress=progress,
                    judge=judge,
                )

    with Store.open(settings.resolved_database_url) as store:
        bundles = [load_baseline(store, digest, settings.bundles_dir)[1] for digest in digests]
        loaded = {bundle.digest: bundle for bundle in bundles}
        judged_by = loaded.get(judge_of) or load_baseline(store, judge_of, settings.bundles_dir)[1]
        return asyncio.run(run(store, bundles, judged_by))


@task(name="load-golden-dataset", retries=3, retry_condition_fn=retry_condition_fn, cache_policy=NO_CACHE)
def load_dataset(candidate_digest: str) -> Dataset:
    """The golden dataset the candidate's evaluation policy names (both sides run on it)."""
    settings = get_settings()
    with Store.open(settings.resolved_database_url) as store:
        return bundle_dataset(load_baseline(store, candidate_digest, settings.bundles_dir)[1])


@task(
    name="evaluate-shard",
    task_run_name="evaluate-shard-{index}",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
    cache_policy=NO_CACHE,
)
def evaluate_shard(
    digests: list[str], judge_of: str, dataset: Dataset, migration_id: str, index: int
) -> list[BundleRun]:
    """The bundles of one shard (one deployment) over the dataset, from the run cache when it holds them;
    ``judge_of``: the bundle whose pinned judge scores the runs (the candidate)."""
    progress = LatestProgress()
    artifact = create_progress_artifact(
        0.0,
        key=artifact_key("evaluation-progress", migration_id, "shard", str(index)),
        description=f"evaluation shard {index}: {len(digests)} bundle(s) on one deployment",
    )
    assert isinstance(artifact, UUID)  # sync tasks get the id itself
    runs = with_progress(
        lambda: _run_shard(get_settings(), digests, judge_of, dataset, progress), progress, artifact
    )
    update_progress_artifact(artifact, 100.0, progress.snapshot()[1][:500])
    return runs


@flow(name="evaluation-fanout", flow_run_name="evaluate-{migration_id}")
def evaluation_fanout(
    shards: list[list[str]], candidate_digest: str, migration_id: str
) -> dict[str, BundleRun]:
    """Every shard on this flow's task runner; the runs by bundle digest."""
    dataset = load_dataset.submit(candidate_digest)
    futures = [
        evaluate_shard.submit(shard, candidate_digest, dataset, migration_id, i)
        for i, shard in enumerate(shards)
    ]
    return {run.bundle_digest: run for future in futures for run in future.result()}


def task_runner(settings: Settings, shards: int) -> TaskRunner[Any]:
    """The task runner the settings choose, sized for ``shards`` shards."""
    if settings.task_runner is RunnerKind.DASK:
        # imported here: only a Dask fan-out pays for importing distributed
        from prefect_dask.task_runners import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        # threads, not processes: the runs wait on the network, and threads inherit Prefect's settings
        cluster = {"n_workers": settings.dask_workers, "processes": False, "dashboard_address": None}
        return DaskTaskRunner(cluster_kwargs=cluster)
    return ThreadPoolTaskRunner(max_workers=max(1, shards))


def run_fanout(shards: list[list[str]], candidate_digest: str, migration_id: str) -> dict[str, BundleRun]:
    """The ``evaluation-fanout`` subflow on the configured task runner."""
    settings = load_settings()  # read now: a bad value is a ConfigError naming the variable
    fanout = evaluation_fanout.with_options(task_runner=task_runner(settings, len(shards)))
    try:
        runs: dict[str, BundleRun] = fanout(shards, candidate_digest, migration_id)
    except OSError as exc:
        # the shards' own network errors arrive as ModelshiftErrors; an OSError here is the cluster's
        if settings.task_runner is RunnerKind.DASK and settings.dask_address:
            raise ConfigError(
                f"the Dask scheduler at {settings.dask_address} (MODELSHIFT_DASK_ADDRESS) cannot be "
                f"reached: {exc}; start the cluster, fix the address, or unset MODELSHIFT_DASK_ADDRESS "
                "for a local cluster"
            ) from exc
        raise
    return runs
