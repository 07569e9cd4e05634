"""``load_migration_view``: what the report reads back from the store, for migrations in each state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelshift.errors import NotFoundError
from modelshift.evaluation.records import EvaluationStore
from modelshift.gateway.metrics import observe
from modelshift.migration import MigrationPhase
from modelshift.report import MigrationView, load_migration_view
from modelshift.report.timeline import side_stats
from modelshift.store import Store
from tests.gateway.gateway_helpers import MovableClock
from tests.report.conftest import Scenario
from tests.report.report_helpers import APP, PER_WINDOW, TARGET, build

Get = Callable[..., Scenario]


def _view(s: Scenario) -> MigrationView:
    with s.store() as store:
        return load_migration_view(store, s.built.migration_id, clock=s.clock)


def _states(view: MigrationView) -> dict[str, str]:
    return {stage.name: stage.state for stage in view.stages}


@pytest.mark.parametrize(
    ("until", "phase", "outcome", "states"),
    [
        ("planned", "planned", "in progress (planned)",
         {"assess": "done", "prepare": "not reached", "evaluate": "not reached", "canary": "not reached"}),
        ("prepared", "prepared", "in progress (prepared)",
         {"assess": "done", "prepare": "running", "evaluate": "not reached"}),
        ("rejected", "failed", "rejected by the offline gate",
         {"prepare": "done", "evaluate": "failed", "canary": "not reached"}),
        ("evaluated", "evaluated", "in progress (evaluated)",
         {"evaluate": "running", "canary": "not reached"}),
        ("canary", "canary", "in progress (canary)", {"evaluate": "done", "canary": "running"}),
        ("promoted", "succeeded", "promoted", {"canary": "done", "promote": "done"}),
        ("rolled_back", "rolled_back", "rolled back",
         {"canary": "done", "promote": "not reached", "roll back": "done"}),
    ],
)  # fmt: skip
def test_phase_stages_and_decision_follow_the_migration(
    scenario: Get, until: str, phase: str, outcome: str, states: dict[str, str]
) -> None:
    s = scenario(until)
    view = _view(s)
    assert view.phase == phase == s.built.phase.value
    assert view.decision.outcome == outcome
    assert view.decision.final is (phase in ("failed", "succeeded", "rolled_back"))
    for name, state in states.items():
        assert _states(view)[name] == state, name
    # every stage that ran has a start, and one that ended has an end no earlier than its start
    for stage in view.stages:
        if stage.state != "not reached":
            assert stage.started_at is not None
        if stage.ended_at is not None:
            assert stage.started_at is not None and stage.ended_at >= stage.started_at
    assert view.audit_verified is True and view.audit_head_hash


def test_planned_migration_names_the_target_from_the_plan_and_has_no_candidate(scenario: Get) -> None:
    view = _view(scenario("planned"))
    assert view.app == APP
    assert view.candidate is None and view.evaluation is None and view.canary is None
    assert view.from_model == "gpt-4o@2024-05-13"
    assert view.to_model == TARGET
    assert view.plan is not None
    assert view.plan.scope == "variant" and view.plan.canary_steps == [10, 50, 100]
    assert [(s.name, s.runs) for s in view.plan.stages][:2] == [("fine_tune", True), ("rechunk", True)]
    assert view.assessment["days_left"] == 30 and view.assessment["status"] == "retiring"


def test_prepare_results_come_from_the_finetune_table_and_the_rechunk_event(scenario: Get) -> None:
    s = scenario("prepared")
    view = _view(s)
    assert view.candidate is not None and view.candidate.digest == s.built.candidate
    assert view.to_model == TARGET
    [job] = view.prepare.fine_tunes
    assert (job.job_id, job.status, job.phase) == ("ftjob-report-1", "succeeded", "succeeded")
    assert job.fine_tuned_model == "gpt-4o-mini-2024-07-18.ft-report" and job.finished_at is not None
    chunking = view.prepare.chunking
    assert chunking is not None
    prepared = next(m for m in view.moves if m.to_phase == "prepared")
    assert chunking.generation == prepared.evidence["index_generation"]
    assert (chunking.tokenizer, chunking.chunk_tokens, chunking.overlap_tokens) == ("o200k_base", 256, 32)
    assert chunking.documents == 17 and chunking.chunks is not None and chunking.chunks >= 17
    assert view.prepare.deployment is not None and view.prepare.deployment["deployment"] == "faq-4o-mini"


@pytest.mark.parametrize("until", ["rejected", "promoted"])
def test_evaluation_rows_and_per_item_scores_match_the_gate_and_the_stored_items(
    scenario: Get, until: str
) -> None:
    s = scenario(until)
    view = _view(s)
    report = s.built.report
    assert report is not None and view.evaluation is not None
    ev = view.evaluation
    assert ev.verdict == report.verdict.value and ev.passed is report.passed
    assert [m.name for m in ev.metrics] == [r.name for r in report.rows]
    for metric, row in zip(ev.metrics, report.rows, strict=True):
        assert (metric.baseline, metric.candidate, metric.diff) == (row.baseline, row.candidate, row.diff)
        assert (metric.ci_low, metric.ci_high, metric.p_value) == (row.ci_low, row.ci_high, row.p_value)
        assert (metric.margin, metric.verdict) == (row.margin, row.verdict.value)
    with s.store() as store:
        stored = EvaluationStore(store).items(ev.record_id)
    f1 = next(m for m in ev.metrics if m.name == "answer_f1")
    assert f1.baseline_scores == [i.answer_f1 for i in stored["baseline"]]
    assert f1.candidate_scores == [i.answer_f1 for i in stored["candidate"]]
    latency = next(m for m in ev.metrics if m.name == "latency_p95_ms")
    assert latency.unit == "ms" and len(latency.candidate_scores) == ev.candidate_items == 40
    refusals = next(m for m in ev.metrics if m.name == "refusal_rate")
    assert set(refusals.baseline_scores) == {0.0, 1.0}
    if until == "rejected":
        assert f1.verdict == "fail" and "answer_f1" in ev.summary
        assert "offline gate" in view.decision.reason


def test_promoted_canary_timeline_counts_every_request_once(scenario: Get) -> None:
    s = scenario("promoted")
    view = _view(s)
    canary = view.canary
    assert canary is not None
    assert (canary.outcome, canary.verdict) == ("promoted", "successful")
    assert [w.candidate_weight for w in canary.weights] == [10, 50, 100]
    assert [w.candidate_weight for w in canary.steps] == s.built.canary_weights == [10, 50]
    first, second = canary.steps
    assert (first.canary.requests, first.baseline.requests) == (PER_WINDOW // 10, PER_WINDOW * 9 // 10)
    assert (second.canary.requests, second.baseline.requests) == (PER_WINDOW // 2, PER_WINDOW // 2)
    assert first.canary.error_rate == 0.0 and first.canary.latency_p50_ms is not None
    # the time buckets partition the canary: together they hold exactly the requests the gateway served
    assert sum(w.canary.requests for w in canary.series) == s.built.requests["canary"]
    assert sum(w.baseline.requests for w in canary.series) == s.built.requests["baseline"]
    assert len(canary.series) == 24  # 240 canary requests: the most buckets
    assert [a.verdict for a in canary.analyses] == ["successful", "successful"]
    assert {m.name for m in canary.analyses[0].metrics} >= {"error_rate", "latency"}
    assert view.decision.canary_verdict == "successful" and view.decision.reason == "all 5 steps passed"
    assert view.candidate is not None and view.candidate.status == "production"
    assert view.baseline.status == "retired"


def test_rolled_back_canary_shows_the_failed_step_and_its_error_rate(scenario: Get) -> None:
    view = _view(scenario("rolled_back"))
    canary = view.canary
    assert canary is not None and (canary.outcome, canary.verdict) == ("rolled back", "failed")
    [step] = canary.steps
    assert step.candidate_weight == 10
    # every third canary request failed: 14 of the first 40
    assert step.canary.errors == 14 and step.canary.error_rate == pytest.approx(14 / 40)
    assert step.baseline.error_rate == 0.0
    assert [w.candidate_weight for w in canary.weights] == [10, 0]
    # 40 canary requests: 4 buckets of about 10, not 24 buckets of one or two (a point is a rate)
    assert len(canary.series) == 4
    assert sum(w.canary.requests for w in canary.series) == 40
    assert all(w.canary.requests >= 9 for w in canary.series)
    assert canary.analyses[-1].verdict == "failed"
    assert "error_rate" in view.decision.reason and view.decision.canary_verdict == "failed"


def test_a_running_canary_ends_its_timeline_at_the_clock(scenario: Get) -> None:
    s = scenario("canary")
    view = _view(s)
    canary = view.canary
    assert canary is not None
    assert (canary.outcome, canary.verdict) == ("running", None)
    assert canary.ended_at == s.clock.now
    assert [w.candidate_weight for w in canary.weights] == [10, 50]
    assert [w.candidate_weight for w in canary.steps] == [10, 50]
    # the last step is still open: it runs to the clock and holds what was served so far
    assert canary.steps[-1].end == s.clock.now
    assert sum(w.canary.requests for w in canary.series) == s.built.requests["canary"]
    assert [a.verdict for a in canary.analyses] == ["successful"]
    assert view.decision.canary_verdict is None and view.decision.final is False


@pytest.mark.parametrize("until", ["promoted", "rolled_back"])
def test_every_window_counts_what_the_gateway_observe_reads(scenario: Get, until: str) -> None:
    s = scenario(until)
    view = _view(s)
    assert view.canary is not None
    with s.store() as store:
        for window in [*view.canary.steps, *view.canary.series]:
            seen = observe(store, APP, window.start, window.end)
            assert window.canary == side_stats(seen.get(s.built.candidate)), window.start
            assert window.baseline == side_stats(seen.get(s.built.baseline)), window.start


def test_audit_trail_is_the_migrations_events_with_their_digests(scenario: Get) -> None:
    s = scenario("promoted")
    view = _view(s)
    with s.store() as store:
        events = store.audit_events(migration_id=s.built.migration_id)
    assert [e.seq for e in view.audit] == [e.seq for e in events]
    assert [e.hash for e in view.audit] == [e.hash for e in events]
    composed = next(e for e in view.audit if e.reason == "candidate.composed")
    assert composed.digests == {"baseline_digest": s.built.baseline, "candidate_digest": s.built.candidate}
    router = next(e for e in view.audit if e.reason == "router.updated")
    assert set(router.digests.values()) == {s.built.baseline, s.built.candidate}


def test_the_view_round_trips_through_json(scenario: Get) -> None:
    view = _view(scenario("promoted"))
    assert MigrationView.model_validate_json(view.model_dump_json()) == view


def test_a_broken_audit_chain_is_reported_not_hidden(tmp_path: Path) -> None:
    from sqlalchemy import update

    from modelshift.store.models import AuditEventRow

    clock = MovableClock()
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=clock) as store:
        built = build(store, clock, tmp_path, "planned")
        with store.engine.begin() as conn:
            conn.execute(update(AuditEventRow).where(AuditEventRow.seq == 3).values(actor="mallory"))
        view = load_migration_view(store, built.migration_id, clock=clock)
    assert view.audit_verified is False
    assert view.audit_problem is not None and "altered" in view.audit_problem


@pytest.mark.parametrize("bad", ["no-such-migration", "   "])
def test_an_unknown_migration_id_is_a_clear_error(scenario: Get, bad: str) -> None:
    with scenario("planned").store() as store, pytest.raises(NotFoundError) as caught:
        load_migration_view(store, bad)
    message = str(caught.value)
    assert "modelshift audit show" in message
    if bad.strip():
        assert repr(bad) in message


@pytest.mark.postgres
def test_postgres_store_gives_the_same_view_as_sqlite(
    scenario: Get, postgres_url_factory: Callable[[], str], tmp_path: Path
) -> None:
    clock = MovableClock()
    with Store.open(postgres_url_factory(), clock=clock) as store:
        built = build(store, clock, tmp_path, "promoted")
        pg = load_migration_view(store, built.migration_id, clock=clock)
    lite = _view(scenario("promoted"))
    assert pg.phase == lite.phase == MigrationPhase.SUCCEEDED.value
    assert _states(pg) == _states(lite)
    assert pg.evaluation is not None and lite.evaluation is not None
    assert [m.model_dump(exclude={"name"}) for m in pg.evaluation.metrics] == [
        m.model_dump(exclude={"name"}) for m in lite.evaluation.metrics
    ]
    assert pg.canary is not None and lite.canary is not None
    assert [w.model_dump() for w in pg.canary.steps] == [w.model_dump() for w in lite.canary.steps]
    assert [e.reason for e in pg.audit] == [e.reason for e in lite.audit]
