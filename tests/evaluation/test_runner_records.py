"""Evaluation runs and per-item tables in the store: the baseline cache and the recorded gate outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from runner_helpers import SUPPORT, runtime_for, small_dataset, write_bundle
from test_runner import BIG, scenario_with

from modelshift.bundle import Bundle, load_bundle
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import ConfigError
from modelshift.evaluation import compare
from modelshift.evaluation.cache import run_cached
from modelshift.evaluation.records import EvaluationStore
from modelshift.evaluation.runner import RUNNER_VERSION, BundleRun, ItemOutcome, Progress, Runner, score_run
from modelshift.registry import register
from modelshift.store import Store
from modelshift.store.models import Base

MY_TABLES = {"evaluation_runs", "evaluation_items"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'state.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    with Store.open(url) as opened:
        yield opened


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(scenario_with(BIG, 450), latency_scale=0.0) as handle:
        yield handle


def outcome(item_id: str, error: str | None = None) -> ItemOutcome:
    return ItemOutcome(item_id, "q?", "ref", ("a.md",), None if error else "answer", error=error)


def run_of(digest: str, *outcomes: ItemOutcome) -> BundleRun:
    return BundleRun(digest, "sha-data", RUNNER_VERSION, outcomes)


def test_migration_matches_the_models(store: Store) -> None:
    def mine(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in MY_TABLES

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": mine})
        assert compare_metadata(context, Base.metadata) == []


def test_run_round_trip_and_first_writer_wins(store: Store) -> None:
    evals = EvaluationStore(store)
    run = run_of("sha-b", outcome("q1"), outcome("q2"))
    assert evals.cached_run("sha-b", "sha-data", RUNNER_VERSION) is None
    assert evals.save_run(run) is True
    assert evals.save_run(run_of("sha-b", outcome("other"))) is False
    hit = evals.cached_run("sha-b", "sha-data", RUNNER_VERSION)
    assert hit is not None and hit.cached and hit.outcomes == run.outcomes
    # every part of the key matters
    assert evals.cached_run("sha-b", "sha-data", "runner-0") is None
    assert evals.cached_run("sha-b", "sha-other", RUNNER_VERSION) is None
    assert evals.cached_run("sha-c", "sha-data", RUNNER_VERSION) is None


def test_a_run_with_failed_items_is_not_cached(store: Store) -> None:
    with pytest.raises(ConfigError, match="1 failed item"):
        EvaluationStore(store).save_run(run_of("sha-b", outcome("q1"), outcome("q2", error="400")))


def count_requests(
    emu: EmulatorHandle, bundle: Bundle, store: Store, n: int
) -> tuple[BundleRun, int, list[Progress]]:
    sent: list[httpx.Request] = []
    progress: list[Progress] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request)

    async def go() -> BundleRun:
        async with httpx.AsyncClient(timeout=30, event_hooks={"request": [hook]}) as client:
            runner = Runner(progress=progress.append)
            return await run_cached(
                runner, runtime_for(bundle, emu, client), small_dataset(n), EvaluationStore(store)
            )

    return asyncio.run(go()), len(sent), progress


def test_second_run_of_a_bundle_is_served_from_the_cache(
    emu: EmulatorHandle, store: Store, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path, "1.0.0", model={"deployment": BIG})
    first, sent_first, _ = count_requests(emu, bundle, store, 5)
    second, sent_second, progress = count_requests(emu, load_bundle(bundle.root), store, 5)
    assert (sent_first, first.cached) == (5, False)
    assert (sent_second, second.cached) == (0, True)
    assert second.outcomes == first.outcomes
    assert progress[-1].done == 5 and "(cached)" in progress[-1].bundle
    # another dataset (other digest) is measured again
    _, sent_other, _ = count_requests(emu, bundle, store, 4)
    assert sent_other == 4


def test_failed_runs_are_measured_again(emu: EmulatorHandle, store: Store, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, "1.0.0", model={"deployment": "no-such-deployment"})
    first, sent_first, _ = count_requests(emu, bundle, store, 2)
    _, sent_second, _ = count_requests(emu, bundle, store, 2)
    assert len(first.failed) == 2 and (sent_first, sent_second) == (2, 2)


def test_record_writes_the_evaluation_and_the_item_table(
    emu: EmulatorHandle, store: Store, tmp_path: Path
) -> None:
    baseline_bundle = load_bundle(SUPPORT / "1.0.0")
    candidate_bundle = write_bundle(tmp_path, "1.1.0", model={"deployment": BIG})
    for b in (baseline_bundle, candidate_bundle):
        register(store, b, actor="test")
    baseline_run, _, _ = count_requests(emu, baseline_bundle, store, 6)
    candidate_run, _, _ = count_requests(emu, candidate_bundle, store, 6)
    base_items = score_run(baseline_run, baseline_bundle)
    cand_items = score_run(candidate_run, candidate_bundle)
    report = compare(cand_items, base_items, candidate_bundle.manifest.evaluation)
    evals = EvaluationStore(store)
    record = evals.record(
        baseline=baseline_run,
        candidate=candidate_run,
        baseline_items=base_items,
        candidate_items=cand_items,
        report=report,
        actor="test",
        migration_id="m-1",
    )
    assert (record.bundle_digest, record.baseline_digest) == (candidate_bundle.digest, baseline_bundle.digest)
    assert record.verdict == report.verdict.value and record.passed is report.passed
    assert record.report["verdict"] == report.verdict.value
    table = evals.items(record.id)
    assert table == {"baseline": base_items, "candidate": cand_items}
    assert [e.reason for e in store.audit_events("m-1")] == ["evaluation.recorded"]
    assert evals.items(record.id + 1) == {"baseline": [], "candidate": []}


def test_record_refuses_runs_on_different_datasets(store: Store) -> None:
    other = BundleRun("sha-c", "sha-other-data", RUNNER_VERSION, ())
    with pytest.raises(ConfigError, match="same golden data"):
        EvaluationStore(store).record(
            baseline=run_of("sha-b"),
            candidate=other,
            baseline_items=[],
            candidate_items=[],
            report=compare([], [], load_bundle(SUPPORT / "1.0.0").manifest.evaluation),
            actor="test",
        )
