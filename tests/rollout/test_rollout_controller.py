"""The pure controller: every step kind, promotion, rollback, extensions, approvals and idempotence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rollout_helpers import BASELINE, CANDIDATE, T0, at, pair

from modelshift.audit import Reason
from modelshift.bundle.manifest import Canary
from modelshift.errors import StateError
from modelshift.rollout import (
    Analysis,
    Approval,
    ApprovalInput,
    Decision,
    ObservationPair,
    Pause,
    Promote,
    RenewLease,
    RequestApproval,
    RollBack,
    RolloutPhase,
    RolloutPolicy,
    RolloutSpec,
    RolloutStatus,
    SetWeight,
    SetWeights,
    Verdict,
    Wait,
    abort,
    complete,
    decide,
)

P = RolloutPhase
GOOD: dict[str, object] = {}
WORSE_ERRORS: dict[str, object] = {"errors": 30}
SLOWER: dict[str, object] = {"latency": 180.0}


def spec_for(canary: Canary | None = None, **policy: object) -> RolloutSpec:
    spec = RolloutSpec.from_canary(
        app="support-chat",
        baseline_digest=BASELINE,
        candidate_digest=CANDIDATE,
        canary=canary or Canary(min_requests_per_step=50, step_duration_seconds=60, max_step_extensions=2),
    )
    return spec.model_copy(update={"policy": spec.policy.model_copy(update=policy)}) if policy else spec


def custom(*steps: object, **policy: object) -> RolloutSpec:
    return RolloutSpec(
        app="support-chat",
        baseline_digest=BASELINE,
        candidate_digest=CANDIDATE,
        steps=list(steps),  # type: ignore[arg-type]
        policy=RolloutPolicy(**policy),  # type: ignore[arg-type]
    )


def reasons(decision: Decision) -> list[Reason]:
    return [e.reason for e in decision.events]


def kinds(decision: Decision) -> list[str]:
    return [a.kind for a in decision.actions]


def drive(spec: RolloutSpec, canary: dict[str, object], *, step_seconds: float = 30) -> list[Decision]:
    """Decide from pending until the rollout leaves progressing, feeding ``canary`` at every analysis."""
    status = RolloutStatus()
    decisions = []
    t = 0.0
    observation = None
    for _ in range(50):
        decision = decide(spec, status, observation, at(t))
        decisions.append(decision)
        status = decision.status
        if status.phase in (P.PROMOTING, P.ROLLING_BACK, P.AWAITING_APPROVAL):
            break
        t += step_seconds
        observation = pair(canary=canary)
    return decisions


def test_first_decision_sets_the_first_weight_and_starts_the_analysis() -> None:
    decision = decide(spec_for(), RolloutStatus(), None, T0)
    assert decision.actions == [
        SetWeights(weights={CANDIDATE: 5, BASELINE: 95}, lease_until=T0 + timedelta(seconds=300)),
        Wait(until=T0 + timedelta(seconds=15)),
    ]
    status = decision.status
    assert (status.phase, status.step_index, status.step_started_at) == (P.PROGRESSING, 1, T0)
    assert reasons(decision) == [Reason.CANARY_STEP, Reason.CANARY_STEP]
    assert [e.data["kind"] for e in decision.events] == ["set_weight", "analysis"]
    assert status.history[0].kind == "set_weight"


def test_a_good_candidate_is_driven_step_by_step_to_promote() -> None:
    spec = spec_for()
    decisions = drive(spec, GOOD)
    last = decisions[-1]
    assert last.status.phase is P.PROMOTING
    assert [a for a in last.actions if isinstance(a, Promote)]
    weights = [a.weights[CANDIDATE] for d in decisions for a in d.actions if isinstance(a, SetWeights)]
    assert weights == [5, 25, 50, 100]
    analyses = [r for r in last.status.history if r.kind == "analysis"]
    assert len(analyses) == 3 and all(r.verdict is Verdict.SUCCESSFUL for r in analyses)
    promote = next(a for a in last.actions if isinstance(a, Promote))
    assert len(promote.evidence["steps"]) == len(spec.steps)
    assert Reason.CANARY_PROMOTED in reasons(last)
    assert last.status.weights == {CANDIDATE: 100, BASELINE: 0}
    # the task applied Promote: the rollout is over and asks for nothing more
    done = complete(spec, last.status)
    assert done.phase is P.PROMOTED
    assert decide(spec, done, pair(), at(10_000)) == Decision(status=done, actions=[], events=[])


@pytest.mark.parametrize(
    ("canary", "metric"),
    [
        pytest.param(WORSE_ERRORS, "error_rate", id="higher-error-rate"),
        pytest.param(SLOWER, "latency", id="slower"),
        pytest.param({"tokens": 600.0}, "tokens_per_request", id="more-tokens"),
    ],
)
def test_a_worse_candidate_is_rolled_back_with_failed(canary: dict[str, object], metric: str) -> None:
    spec = spec_for()
    decisions = drive(spec, canary)
    last = decisions[-1]
    assert last.status.phase is P.ROLLING_BACK
    rollback = next(a for a in last.actions if isinstance(a, RollBack))
    assert rollback.verdict is Verdict.FAILED and metric in rollback.reason
    assert last.status.weights == {CANDIDATE: 0, BASELINE: 100}
    assert last.status.outcome_verdict is Verdict.FAILED
    assert reasons(last) == [Reason.CANARY_ANALYSIS, Reason.CANARY_ROLLED_BACK]
    assert last.events[0].data["verdict"] == "failed"
    assert last.events[1].data["verdict"] == "failed"
    # the first analysis already caught it: the candidate never got past 5 %
    assert last.status.step_index == 1
    # retried (e.g. after a crash) the same RollBack comes back, then complete() ends it
    again = decide(spec, last.status, None, at(999))
    assert again.actions == [rollback] and again.events == []
    assert complete(spec, last.status).phase is P.ROLLED_BACK


def test_could_not_measure_rolls_back_with_error_not_failed() -> None:
    spec = spec_for()
    status = decide(spec, RolloutStatus(), None, T0).status
    no_baseline = pair(baseline={"requests": 0})
    # inside the window it keeps waiting for baseline traffic ...
    assert kinds(decide(spec, status, no_baseline, at(30))) == ["renew_lease", "wait"]
    # ... and when the window is over without any, it could not measure
    decision = decide(spec, status, no_baseline, at(60))
    rollback = next(a for a in decision.actions if isinstance(a, RollBack))
    assert rollback.verdict is Verdict.ERROR
    assert "no baseline" in rollback.reason
    assert decision.events[0].data["verdict"] == "error"


def _no_data_until_exhausted(spec: RolloutSpec) -> tuple[RolloutStatus, list[Decision]]:
    status = decide(spec, RolloutStatus(), None, T0).status
    decisions = []
    for t in (30, 60, 90, 120, 150, 180):
        decision = decide(spec, status, pair(canary={"requests": 3}, baseline={"requests": 60}), at(t))
        decisions.append(decision)
        status = decision.status
    return status, decisions


def test_no_data_waits_then_extends_then_rolls_back_by_policy() -> None:
    spec = spec_for()  # window 60 s, 2 extensions, on_inconclusive rollback
    status, decisions = _no_data_until_exhausted(spec)
    # t=30: window still open -> wait (and renew the lease), no audit noise
    assert kinds(decisions[0]) == ["renew_lease", "wait"] and decisions[0].events == []
    # t=60: window over, inconclusive -> extension 1 until t=120
    assert reasons(decisions[1]) == [Reason.CANARY_ANALYSIS, Reason.CANARY_EXTENDED]
    assert decisions[1].status.extensions_used == 1
    assert decisions[1].events[1].data["until"].startswith("2026-03-01T12:02:00")
    assert decisions[2].events == []  # t=90
    assert reasons(decisions[3]) == [Reason.CANARY_ANALYSIS, Reason.CANARY_EXTENDED]  # t=120
    assert decisions[3].status.extensions_used == 2
    # t=180: the second extension ran out -> rollback with the inconclusive verdict
    last = decisions[5]
    rollback = next(a for a in last.actions if isinstance(a, RollBack))
    assert rollback.verdict is Verdict.INCONCLUSIVE
    assert "after 2 extension(s)" in rollback.reason
    assert status.phase is P.ROLLING_BACK


def test_no_data_goes_to_approval_when_the_policy_says_so() -> None:
    spec = spec_for(on_inconclusive="approval")
    status, decisions = _no_data_until_exhausted(spec)
    last = decisions[5]
    assert status.phase is P.AWAITING_APPROVAL
    request = next(a for a in last.actions if isinstance(a, RequestApproval))
    assert "inconclusive" in request.reason and request.evidence["analysis"]["verdict"] == "inconclusive"
    assert reasons(last) == [Reason.CANARY_ANALYSIS, Reason.CANARY_APPROVAL_REQUESTED]
    # asking again without an answer re-sends the request but audits nothing new
    again = decide(spec, status, None, at(200))
    assert kinds(again) == ["renew_lease", "request_approval"] and again.events == []
    # approved: the step counts as passed by that person and the next weight is set
    yes = ObservationPair(approval=ApprovalInput(decision="approve", approver="ana", reason="low traffic"))
    approved = decide(spec, status, yes, at(210))
    analysed = approved.status.history[1]
    assert (analysed.kind, analysed.approved_by, analysed.reason) == ("analysis", "ana", "low traffic")
    assert analysed.verdict is Verdict.INCONCLUSIVE
    assert approved.actions[0] == SetWeights(
        weights={CANDIDATE: 25, BASELINE: 75}, lease_until=at(210) + timedelta(seconds=300)
    )
    assert reasons(approved)[0] is Reason.CANARY_APPROVED
    # rejected: back to the baseline, no verdict (a person decided), the audit names who and why
    no = ObservationPair(approval=ApprovalInput(decision="reject", approver="bo", reason="too risky"))
    rejected = decide(spec, status, no, at(210))
    rollback = next(a for a in rejected.actions if isinstance(a, RollBack))
    assert rollback.verdict is None and "bo" in rollback.reason and "too risky" in rollback.reason
    assert reasons(rejected) == [Reason.CANARY_REJECTED, Reason.CANARY_ROLLED_BACK]


def test_enough_requests_before_the_window_ends_are_analysed_at_once() -> None:
    spec = spec_for()
    status = decide(spec, RolloutStatus(), None, T0).status
    decision = decide(spec, status, pair(), at(5))
    assert decision.status.step_index == 3  # analysis passed, 25 % set, next analysis started
    assert decision.status.history[1].verdict is Verdict.SUCCESSFUL


def test_enough_requests_but_too_few_samples_keeps_waiting_inside_the_window() -> None:
    spec = spec_for()
    status = decide(spec, RolloutStatus(), None, T0).status
    decision = decide(spec, status, pair(canary={"samples": 5}), at(5))
    assert kinds(decision) == ["renew_lease", "wait"]
    assert decision.events == [] and decision.status == status


@pytest.mark.parametrize("answer", ["approve", "reject"])
def test_approval_step(answer: str) -> None:
    spec = custom(SetWeight(weight=10), Approval(reason="ship it?"), SetWeight(weight=100))
    first = decide(spec, RolloutStatus(), None, T0)
    assert first.status.phase is P.AWAITING_APPROVAL
    assert kinds(first) == ["set_weights", "request_approval"]
    assert first.actions[1] == RequestApproval(reason="ship it?", evidence=first.actions[1].evidence)  # type: ignore[union-attr]
    assert Reason.CANARY_APPROVAL_REQUESTED in reasons(first)
    pending = decide(spec, first.status, pair(), at(60))  # observations without an answer change nothing
    assert kinds(pending) == ["renew_lease", "request_approval"] and pending.status == first.status
    given = ApprovalInput(decision=answer, approver="ana", reason="looks fine")  # type: ignore[arg-type]
    decision = decide(spec, first.status, ObservationPair(approval=given), at(90))
    if answer == "approve":
        assert kinds(decision) == ["set_weights", "promote"]
        assert decision.status.phase is P.PROMOTING
        assert decision.status.history[1].approved_by == "ana"
        assert reasons(decision)[0] is Reason.CANARY_APPROVED
    else:
        assert kinds(decision) == ["roll_back"]
        assert decision.status.phase is P.ROLLING_BACK
        assert decision.status.weights[CANDIDATE] == 0


def test_timed_pause_waits_then_continues() -> None:
    spec = custom(SetWeight(weight=20), Pause(seconds=120), SetWeight(weight=100))
    first = decide(spec, RolloutStatus(), None, T0)
    assert first.status.phase is P.PAUSED
    assert first.actions[-1] == Wait(until=at(120))
    middle = decide(spec, first.status, None, at(119))
    assert kinds(middle) == ["renew_lease", "wait"] and middle.status.phase is P.PAUSED
    after = decide(spec, first.status, None, at(120))
    assert kinds(after) == ["set_weights", "promote"]


@pytest.mark.parametrize(("answer", "phase"), [("approve", P.PROMOTING), ("reject", P.ROLLING_BACK)])
def test_indefinite_pause_holds_until_a_person_answers(answer: str, phase: RolloutPhase) -> None:
    spec = custom(SetWeight(weight=20), Pause(seconds=None), SetWeight(weight=100), poll_seconds=30)
    first = decide(spec, RolloutStatus(), None, T0)
    assert first.status.phase is P.PAUSED and first.actions[-1] == Wait(until=at(30))
    later = decide(spec, first.status, None, at(86_400))
    assert later.status.phase is P.PAUSED and isinstance(later.actions[0], RenewLease)
    given = ApprovalInput(decision=answer, approver="ana")  # type: ignore[arg-type]
    assert decide(spec, first.status, ObservationPair(approval=given), at(100)).status.phase is phase


def test_every_live_decision_renews_the_lease() -> None:
    spec = spec_for(lease_seconds=90)
    status = RolloutStatus()
    for t in range(0, 400, 20):
        decision = decide(spec, status, pair(), at(t))
        if decision.status.phase in (P.PROMOTING, P.ROLLING_BACK):
            break
        leases = [a.lease_until for a in decision.actions if isinstance(a, SetWeights)]
        leases += [a.until for a in decision.actions if isinstance(a, RenewLease)]
        assert leases and all(lease == at(t + 90) for lease in leases)
        status = decision.status


@pytest.mark.parametrize(
    "observation",
    [None, pair(), pair(canary=WORSE_ERRORS), pair(canary={"requests": 3})],
    ids=["none", "good", "worse", "little"],
)
def test_deciding_twice_gives_the_same_decision(observation: ObservationPair | None) -> None:
    spec = spec_for()
    status = decide(spec, RolloutStatus(), None, T0).status
    for t in (10, 60, 200):
        assert decide(spec, status, observation, at(t)) == decide(spec, status, observation, at(t))


@pytest.mark.parametrize("phase", [P.PROMOTED, P.ROLLED_BACK, P.ABORTED])
def test_terminal_phases_produce_no_actions(phase: RolloutPhase) -> None:
    status = RolloutStatus(phase=phase, step_index=2, step_started_at=T0)
    decision = decide(spec_for(), status, pair(canary=WORSE_ERRORS), at(60))
    assert decision == Decision(status=status, actions=[], events=[])


def test_complete_refuses_a_rollout_that_is_not_finishing() -> None:
    with pytest.raises(StateError, match="nothing to complete in phase progressing"):
        complete(spec_for(), RolloutStatus(phase=P.PROGRESSING))


def test_observation_for_another_bundle_is_refused() -> None:
    spec = spec_for()
    status = decide(spec, RolloutStatus(), None, T0).status
    swapped = ObservationPair(canary=pair().baseline, baseline=pair().canary)
    with pytest.raises(StateError, match="the canary observation is for sha256:b"):
        decide(spec, status, swapped, at(30))


def test_status_beyond_the_spec_is_refused() -> None:
    with pytest.raises(StateError, match="beyond the spec"):
        decide(spec_for(), RolloutStatus(phase=P.PROGRESSING, step_index=99), None, T0)


def test_abort_takes_traffic_back_and_ends_the_rollout() -> None:
    spec = spec_for()
    status = decide(spec, RolloutStatus(), None, T0).status
    decision = abort(spec, status, at(10), actor="ops@contoso", reason="incident 42")
    assert decision.status.phase is P.ABORTED
    assert decision.actions == [RollBack(verdict=None, reason="aborted by ops@contoso: incident 42")]
    assert decision.status.weights == {CANDIDATE: 0, BASELINE: 100}
    assert reasons(decision) == [Reason.CANARY_ROLLED_BACK]
    # before any traffic moved there is nothing to take back
    assert abort(spec, RolloutStatus(), T0, actor="ops", reason="x").actions == []
    # and an ended rollout stays as it is
    done = RolloutStatus(phase=P.PROMOTED)
    assert abort(spec, done, T0, actor="ops", reason="x").status == done


def test_analysis_step_limit_overrides_the_policy_limit() -> None:
    spec = custom(
        SetWeight(weight=5), Analysis(min_requests=50, window_seconds=60, max_extensions=0), max_extensions=5
    )
    status = decide(spec, RolloutStatus(), None, T0).status
    decision = decide(spec, status, None, at(60))
    rollback = next(a for a in decision.actions if isinstance(a, RollBack))
    assert rollback.verdict is Verdict.INCONCLUSIVE


def test_events_are_plain_json_for_the_audit_chain() -> None:
    import json

    for decision in drive(spec_for(), SLOWER) + drive(spec_for(), GOOD):
        for event in decision.events:
            json.dumps(event.data, allow_nan=False)
            assert event.subject == f"rollout support-chat -> {CANDIDATE}"


def test_spec_refuses_the_same_bundle_on_both_sides() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="same bundle"):
        RolloutSpec(
            app="a", baseline_digest=BASELINE, candidate_digest=BASELINE, steps=[SetWeight(weight=100)]
        )


def test_spec_and_status_survive_a_json_round_trip() -> None:
    # the tasks persist status between decisions and pass the spec as a flow parameter
    spec = spec_for(canary=Canary(steps=[10, 100], approval_required=True))
    decisions = drive(spec, GOOD)
    status = decisions[-1].status
    assert status.phase is P.AWAITING_APPROVAL
    assert RolloutSpec.model_validate_json(spec.model_dump_json()) == spec
    assert RolloutStatus.model_validate_json(status.model_dump_json()) == status
    restored = RolloutStatus.model_validate_json(status.model_dump_json())
    yes = ObservationPair(approval=ApprovalInput(decision="approve", approver="ana"))
    assert decide(spec, restored, yes, at(500)) == decide(spec, status, yes, at(500))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"candidate_digest": BASELINE}, "same bundle", id="same-digest"),
        pytest.param({"app": ""}, "app:", id="empty-app"),
        pytest.param({"lease_seconds": 0}, "lease_seconds", id="no-lease"),
    ],
)
def test_from_canary_reports_config_errors(kwargs: dict[str, object], message: str) -> None:
    from modelshift.errors import ConfigError

    args: dict[str, object] = {
        "app": "support-chat",
        "baseline_digest": BASELINE,
        "candidate_digest": CANDIDATE,
        "canary": Canary(),
        **kwargs,
    }
    with pytest.raises(ConfigError, match=message) as info:
        RolloutSpec.from_canary(**args)  # type: ignore[arg-type]
    assert info.value.exit_code == 2


def test_promote_now_skips_the_remaining_steps_and_says_who() -> None:
    from modelshift.rollout import promote_now

    spec = spec_for()
    status = decide(spec, RolloutStatus(), None, T0).status  # 5 %, first analysis running
    decision = promote_now(spec, status, at(10), actor="ops@contoso", reason="old model retires tonight")
    assert decision.status.phase is P.PROMOTING
    assert decision.status.weights == {CANDIDATE: 100, BASELINE: 0}
    promote = decision.actions[0]
    assert isinstance(promote, Promote)
    assert promote.evidence["override"] == {"actor": "ops@contoso", "reason": "old model retires tonight"}
    assert reasons(decision) == [Reason.CANARY_PROMOTED]
    assert decision.events[0].data["actor"] == "ops@contoso"
    assert "step 2 of 7" in (decision.status.outcome_reason or "")
    # asking again while promoting repeats the same Promote (idempotent)
    assert kinds(promote_now(spec, decision.status, at(20), actor="ops", reason="again")) == ["promote"]


@pytest.mark.parametrize("phase", [P.ROLLING_BACK, P.ROLLED_BACK, P.PROMOTED, P.ABORTED])
def test_promote_now_is_refused_once_rolling_back_or_over(phase: RolloutPhase) -> None:
    from modelshift.errors import IllegalTransitionError
    from modelshift.rollout import promote_now

    with pytest.raises(IllegalTransitionError, match=f"from {phase} to promoting"):
        promote_now(spec_for(), RolloutStatus(phase=phase), T0, actor="ops", reason="x")
