"""Properties of the controller over arbitrary step lists and observation sequences (hypothesis).

Whatever happens: weights always sum to 100; once a RollBack is decided the candidate never gets traffic
again and nothing is promoted; a Promote only follows when every Analysis step passed (successful, or
inconclusive and then approved by a named person); deciding twice on the same input gives the same answer.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rollout_helpers import BASELINE, CANDIDATE, at, pair

from modelshift.rollout import (
    Analysis,
    Approval,
    ApprovalInput,
    ObservationPair,
    Pause,
    Promote,
    RollBack,
    RolloutPhase,
    RolloutPolicy,
    RolloutSpec,
    RolloutStatus,
    SetWeight,
    SetWeights,
    Step,
    Verdict,
    complete,
    decide,
)

OBSERVATIONS: dict[str, ObservationPair | None] = {
    "none": None,
    "good": pair(),
    "worse": pair(canary={"errors": 30}),
    "slower": pair(canary={"latency": 180.0}),
    "little": pair(canary={"requests": 3}, baseline={"requests": 3}),
    "no_baseline": pair(baseline={"requests": 0}),
    "nan": ObservationPair(
        canary=pair().canary.model_copy(update={"latencies_ms": [float("nan")] * 30}),  # type: ignore[union-attr]
        baseline=pair().baseline,
    ),
    "approve": ObservationPair(approval=ApprovalInput(decision="approve", approver="ana")),
    "reject": ObservationPair(approval=ApprovalInput(decision="reject", approver="bo")),
    "good_and_approve": pair().model_copy(
        update={"approval": ApprovalInput(decision="approve", approver="cy", reason="ok")}
    ),
}

steps_strategy: st.SearchStrategy[Step] = st.one_of(
    st.builds(SetWeight, weight=st.integers(0, 100)),
    st.builds(Pause, seconds=st.one_of(st.none(), st.integers(0, 120))),
    st.builds(
        Analysis,
        min_requests=st.sampled_from([1, 50, 150]),
        window_seconds=st.integers(1, 120),
        max_extensions=st.one_of(st.none(), st.integers(0, 2)),
    ),
    st.builds(Approval, reason=st.just("go on?")),
)

specs = st.builds(
    RolloutSpec,
    app=st.just("support-chat"),
    baseline_digest=st.just(BASELINE),
    candidate_digest=st.just(CANDIDATE),
    steps=st.lists(steps_strategy, min_size=1, max_size=8),
    policy=st.builds(
        RolloutPolicy,
        on_inconclusive=st.sampled_from(["rollback", "approval"]),
        max_extensions=st.integers(0, 2),
        lease_seconds=st.integers(1, 600),
        poll_seconds=st.integers(1, 60),
    ),
)

moves = st.lists(
    st.tuples(st.integers(0, 200), st.sampled_from(sorted(OBSERVATIONS)), st.booleans()),
    min_size=1,
    max_size=25,
)


def _passed_every_analysis(spec: RolloutSpec, status: RolloutStatus) -> bool:
    records = {r.index: r for r in status.history}
    for index, step in enumerate(spec.steps):
        if not isinstance(step, Analysis):
            continue
        record = records.get(index)
        if record is None or record.kind != "analysis":
            return False
        passed = record.verdict is Verdict.SUCCESSFUL
        approved = record.verdict is Verdict.INCONCLUSIVE and bool(record.approved_by)
        if not (passed or approved):
            return False
    return True


_SHORT = RolloutSpec(
    app="support-chat",
    baseline_digest=BASELINE,
    candidate_digest=CANDIDATE,
    steps=[
        SetWeight(weight=5),
        Analysis(min_requests=50, window_seconds=1, max_extensions=0),
        SetWeight(weight=100),
    ],
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, sequence=moves)
# the paths that must end in a rollback, always tried besides the random ones
@example(spec=_SHORT, sequence=[(0, "none", False), (5, "little", True), (5, "approve", True)])
@example(spec=_SHORT, sequence=[(0, "none", False), (5, "worse", False), (5, "good", True)])
@example(spec=_SHORT, sequence=[(0, "none", False), (5, "nan", False), (5, "approve", True)])
@example(
    spec=_SHORT.model_copy(update={"policy": RolloutPolicy(on_inconclusive="approval")}),
    sequence=[(0, "none", False), (5, "little", False), (5, "reject", False), (5, "approve", False)],
)
def test_no_sequence_breaks_the_rollout_invariants(
    spec: RolloutSpec, sequence: list[tuple[int, str, bool]]
) -> None:
    status = RolloutStatus()
    t = 0
    rolled_back = False
    for dt, name, apply_done in sequence:
        t += dt
        observation = OBSERVATIONS[name]
        decision = decide(spec, status, observation, at(t))
        assert decide(spec, status, observation, at(t)) == decision  # idempotent
        for action in decision.actions:
            match action:
                case SetWeights(weights=weights):
                    assert sum(weights.values()) == 100
                    assert all(0 <= w <= 100 for w in weights.values())
                    assert set(weights) == {CANDIDATE, BASELINE}
                    assert not rolled_back, "traffic sent to the candidate after a rollback"
                case RollBack():
                    rolled_back = True
                case Promote():
                    assert not rolled_back, "promoted after a rollback"
                    assert _passed_every_analysis(spec, decision.status), decision.status.history
        status = decision.status
        if status.weights:
            assert sum(status.weights.values()) == 100
        if rolled_back:
            assert status.weights.get(CANDIDATE, 0) == 0
            assert status.phase in (RolloutPhase.ROLLING_BACK, RolloutPhase.ROLLED_BACK)
        if apply_done and status.phase in (RolloutPhase.PROMOTING, RolloutPhase.ROLLING_BACK):
            status = complete(spec, status)
    if status.phase in (RolloutPhase.PROMOTING, RolloutPhase.PROMOTED):
        assert _passed_every_analysis(spec, status)
