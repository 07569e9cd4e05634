"""The evaluation fan-out on a local Dask cluster gives the same evaluation as Prefect's thread pool.

One prepared migration (support-chat -> gpt-4o 2024-11-20 on the emulator, over HTTP); its store is copied
before anything is evaluated, so each runner evaluates from scratch (no cached run, no earlier record): the
default runner on the original, ``MODELSHIFT_TASK_RUNNER=dask`` (a temporary local cluster of two workers)
on a copy, and an existing LocalCluster reached through ``MODELSHIFT_DASK_ADDRESS`` on another copy.
Both must give the same per-item results (latency aside: it is measured) and the same gate verdict.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
from distributed import LocalCluster
from prefect import flow

from flows.migrate import model_migration
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import ConfigError
from modelshift.evaluation.records import EvaluationStore
from modelshift.evaluation.results import ItemResult
from modelshift.evaluation.stage import EvaluationSummary
from modelshift.migration import MigrationPhase
from modelshift.settings import get_settings
from modelshift.store import Store
from tasks.evaluate import evaluate_candidate
from tasks.fanout import run_fanout
from tests.flows.conftest import artifact_text
from tests.flows.test_evaluate_flow import APP, GOOD, EvalEnv, _eval_env, _params, _scenario

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """The evaluate flow tests' emulator: roomy capacity, fast PUTs, 1 % of the sampled latency."""
    with running_emulator(_scenario(), latency_scale=0.01) as handle:
        yield handle


@pytest.fixture
def ev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Iterator[EvalEnv]:
    """support-chat 1.0.0 copied (gating on quality only) and adopted, as in the evaluate flow tests."""
    yield _eval_env(tmp_path, monkeypatch, emulator)
    get_settings.cache_clear()


@flow
def _evaluation(migration_id: str, baseline: str, candidate: str) -> EvaluationSummary:
    """The evaluate task alone, as the model-migration flow calls it."""
    return evaluate_candidate(migration_id, baseline, candidate, "tester")


def _copy_sqlite(url: str, to: Path) -> str:
    """A consistent copy of a SQLite store (WAL included), through SQLite's backup API."""
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    target = sqlite3.connect(to)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{to}"


def _items(database_url: str, record_id: int | None) -> dict[str, list[dict[str, object]]]:
    assert record_id is not None
    with Store.open(database_url) as store:
        sides = EvaluationStore(store).items(record_id)
    return {side: [_comparable(item) for item in items] for side, items in sides.items()}


def _comparable(item: ItemResult) -> dict[str, object]:
    # the latency is measured on the wire, so it differs from run to run; everything else is determined
    return item.model_dump(exclude={"latency_ms"})


def test_a_dask_cluster_gives_the_same_evaluation_as_the_thread_pool(
    ev: EvalEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELSHIFT_STOP_AFTER", "prepare")  # prepared, not evaluated
    get_settings.cache_clear()
    prepared = model_migration(_params(GOOD))
    assert prepared.phase is MigrationPhase.PREPARED, prepared.message
    mid = prepared.migration_id or ""
    with ev.store() as store:
        candidate = store.get_bundle(APP, "1.1.0").digest
    dask_url = _copy_sqlite(ev.database_url, tmp_path / "dask-state.db")
    cluster_url = _copy_sqlite(ev.database_url, tmp_path / "cluster-state.db")

    monkeypatch.delenv("MODELSHIFT_TASK_RUNNER", raising=False)
    threads = _evaluation(mid, ev.baseline_digest, candidate)
    assert float(artifact_text(f"evaluation-progress-{mid}-shard-1")) == 100.0

    monkeypatch.setenv("MODELSHIFT_DATABASE_URL", dask_url)
    monkeypatch.setenv("MODELSHIFT_TASK_RUNNER", "dask")
    monkeypatch.setenv("MODELSHIFT_DASK_WORKERS", "2")
    get_settings.cache_clear()
    on_dask = _evaluation(mid, ev.baseline_digest, candidate)

    # an existing cluster, by its scheduler's address: the shards are its tasks
    monkeypatch.setenv("MODELSHIFT_DATABASE_URL", cluster_url)
    monkeypatch.delenv("MODELSHIFT_DASK_WORKERS")
    get_settings.cache_clear()
    with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        monkeypatch.setenv("MODELSHIFT_DASK_ADDRESS", cluster.scheduler_address)
        before = cluster.scheduler.transition_counter
        on_cluster = _evaluation(mid, ev.baseline_digest, candidate)
        assert cluster.scheduler.transition_counter > before

    # all measured from scratch: two shards (baseline and candidate deployments), every item sent
    for summary in (threads, on_dask, on_cluster):
        assert not summary.reused and not summary.baseline_cached and not summary.candidate_cached
        assert summary.requests >= 2 * summary.paired > 0
    assert (on_dask.verdict, on_dask.passed) == (threads.verdict, threads.passed) == ("pass", True)
    assert on_dask.failing == threads.failing and on_dask.inconclusive == threads.inconclusive
    assert on_dask.paired == threads.paired and on_dask.failed_items == threads.failed_items
    assert on_dask.dataset_digest == threads.dataset_digest
    assert _items(dask_url, on_dask.record_id) == _items(ev.database_url, threads.record_id)
    assert (on_cluster.verdict, on_cluster.failing, on_cluster.paired) == (
        threads.verdict,
        threads.failing,
        threads.paired,
    )
    assert _items(cluster_url, on_cluster.record_id) == _items(ev.database_url, threads.record_id)


def test_an_unreachable_dask_scheduler_is_a_config_error_naming_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("MODELSHIFT_TASK_RUNNER", "dask")
    monkeypatch.setenv("MODELSHIFT_DASK_ADDRESS", address)
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(ConfigError, match="MODELSHIFT_DASK_ADDRESS") as raised,
    ):
        run_fanout([["0" * 64]], "0" * 64, "m-unreachable")
    assert address in str(raised.value) and "start the cluster" in str(raised.value)
