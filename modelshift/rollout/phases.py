"""Rollout phases: the states one canary rollout moves through, and the one table of allowed moves."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from modelshift.errors import IllegalTransitionError


class RolloutPhase(StrEnum):
    """Where a canary rollout stands; the controller owns it and persists it in the rollout status."""

    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    AWAITING_APPROVAL = "awaiting_approval"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


_P = RolloutPhase

#: THE transition table. A phase may always stay where it is (a decision that only waits); anything else
#: not listed raises. promoted, rolled_back and aborted are terminal.
TRANSITIONS: Mapping[RolloutPhase, frozenset[RolloutPhase]] = {
    _P.PENDING: frozenset(
        {_P.PROGRESSING, _P.PAUSED, _P.AWAITING_APPROVAL, _P.PROMOTING, _P.ROLLING_BACK, _P.ABORTED}
    ),
    _P.PROGRESSING: frozenset({_P.PAUSED, _P.AWAITING_APPROVAL, _P.PROMOTING, _P.ROLLING_BACK, _P.ABORTED}),
    _P.PAUSED: frozenset({_P.PROGRESSING, _P.AWAITING_APPROVAL, _P.PROMOTING, _P.ROLLING_BACK, _P.ABORTED}),
    _P.AWAITING_APPROVAL: frozenset({_P.PROGRESSING, _P.PAUSED, _P.PROMOTING, _P.ROLLING_BACK, _P.ABORTED}),
    # A failed promotion (e.g. the store refused) can still be rolled back.
    _P.PROMOTING: frozenset({_P.PROMOTED, _P.ROLLING_BACK}),
    _P.ROLLING_BACK: frozenset({_P.ROLLED_BACK}),
    _P.PROMOTED: frozenset(),
    _P.ROLLED_BACK: frozenset(),
    _P.ABORTED: frozenset(),
}

#: phases after which the controller produces no actions
TERMINAL: frozenset[RolloutPhase] = frozenset(p for p, moves in TRANSITIONS.items() if not moves)


def is_terminal(phase: RolloutPhase) -> bool:
    """True for promoted, rolled_back and aborted: nothing more happens to the rollout."""
    return phase in TERMINAL


def check_phase_transition(current: RolloutPhase, new: RolloutPhase, *, subject: str) -> None:
    """Raise IllegalTransitionError (naming both phases and the allowed moves) unless the move is legal."""
    if new is current and not is_terminal(current):
        return
    if new in TRANSITIONS[current]:
        return
    moves = ", ".join(sorted(TRANSITIONS[current])) or "none (it is final)"
    raise IllegalTransitionError(
        f"{subject}: rollout cannot move from {current} to {new}; allowed from {current}: {moves}",
        subject=subject,
        current=str(current),
        new=str(new),
    )
