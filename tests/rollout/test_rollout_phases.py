"""Rollout phases: the one transition table, terminal phases and the verdict lattice."""

from __future__ import annotations

import itertools

import pytest

from modelshift.errors import IllegalTransitionError, StateError
from modelshift.rollout import RolloutPhase, Verdict, check_phase_transition, is_terminal
from modelshift.rollout.phases import TRANSITIONS

P = RolloutPhase


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (P.PENDING, P.PROGRESSING),
        (P.PROGRESSING, P.PAUSED),
        (P.PAUSED, P.PROGRESSING),
        (P.PROGRESSING, P.AWAITING_APPROVAL),
        (P.AWAITING_APPROVAL, P.PROGRESSING),
        (P.AWAITING_APPROVAL, P.ROLLING_BACK),
        (P.PROGRESSING, P.PROMOTING),
        (P.PROMOTING, P.PROMOTED),
        (P.PROMOTING, P.ROLLING_BACK),
        (P.ROLLING_BACK, P.ROLLED_BACK),
        (P.PROGRESSING, P.ABORTED),
        (P.PROGRESSING, P.PROGRESSING),  # a decision that only waits
    ],
)
def test_legal_moves(current: RolloutPhase, new: RolloutPhase) -> None:
    check_phase_transition(current, new, subject="rollout chat")


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (P.PROMOTED, P.ROLLING_BACK),  # promoted is final: a rollback now is a new migration
        (P.ROLLED_BACK, P.PROGRESSING),
        (P.ABORTED, P.PROGRESSING),
        (P.ROLLED_BACK, P.ROLLED_BACK),  # terminal phases do not even stay
        (P.ROLLING_BACK, P.PROMOTING),
        (P.PROMOTING, P.PROGRESSING),
        (P.PENDING, P.PROMOTED),
        (P.PROGRESSING, P.ROLLED_BACK),  # rollback goes through rolling_back
    ],
)
def test_illegal_moves_raise_and_name_both_phases(current: RolloutPhase, new: RolloutPhase) -> None:
    with pytest.raises(IllegalTransitionError) as info:
        check_phase_transition(current, new, subject="rollout chat")
    message = str(info.value)
    assert f"from {current} to {new}" in message and "rollout chat" in message
    assert isinstance(info.value, StateError)


def test_table_covers_every_phase_and_terminals_have_no_moves() -> None:
    assert set(TRANSITIONS) == set(RolloutPhase)
    assert {p for p in RolloutPhase if is_terminal(p)} == {P.PROMOTED, P.ROLLED_BACK, P.ABORTED}
    # every non-terminal phase can still be rolled back or reach one that can
    for phase in RolloutPhase:
        if not is_terminal(phase):
            assert P.ROLLING_BACK in TRANSITIONS[phase] or phase is P.ROLLING_BACK


V = Verdict


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], V.SUCCESSFUL),
        ([V.SUCCESSFUL], V.SUCCESSFUL),
        ([V.SUCCESSFUL, V.INCONCLUSIVE], V.INCONCLUSIVE),
        ([V.INCONCLUSIVE, V.ERROR, V.SUCCESSFUL], V.ERROR),
        ([V.ERROR, V.FAILED], V.FAILED),
        ([V.FAILED, V.SUCCESSFUL, V.SUCCESSFUL], V.FAILED),
        ([V.INCONCLUSIVE, V.INCONCLUSIVE], V.INCONCLUSIVE),
    ],
)
def test_reduce_worst_wins(verdicts: list[Verdict], expected: Verdict) -> None:
    assert Verdict.reduce(verdicts) is expected
    assert Verdict.reduce(reversed(verdicts)) is expected


def test_lattice_order_is_by_severity_not_alphabet() -> None:
    chain = [V.SUCCESSFUL, V.INCONCLUSIVE, V.ERROR, V.FAILED]
    assert sorted(reversed(chain)) == chain
    for low, high in itertools.combinations(chain, 2):
        assert low < high and high > low and low <= high and high >= low
        assert not high < low
    assert V.ERROR <= V.ERROR and V.ERROR >= V.ERROR
    assert max(chain) is V.FAILED and min(chain) is V.SUCCESSFUL
    with pytest.raises(TypeError):
        _ = V.ERROR < 3  # type: ignore[operator]
