"""The phase transition table: every legal move, every illegal one, and the derived phase sets."""

from __future__ import annotations

import itertools

import pytest

from modelshift.errors import ConfigError, IllegalTransitionError
from modelshift.migration import ACTIVE, KEY_HOLDING, TERMINAL, TRANSITIONS, MigrationPhase, check_transition
from modelshift.migration.phases import parse_phase

P = MigrationPhase

LEGAL = [
    (P.PENDING, P.ASSESSING),
    (P.ASSESSING, P.PLANNED),
    (P.ASSESSING, P.DRY_RUN_DONE),
    (P.PLANNED, P.PREPARING),
    (P.PREPARING, P.EVALUATING),
    (P.EVALUATING, P.CANARY),
    (P.CANARY, P.PROMOTING),
    (P.CANARY, P.ROLLING_BACK),
    (P.PROMOTING, P.SUCCEEDED),
    (P.PROMOTING, P.ROLLING_BACK),
    (P.ROLLING_BACK, P.ROLLED_BACK),
    (P.ROLLING_BACK, P.FAILED),
    (P.PENDING, P.CANCELLED),
    (P.PLANNED, P.CANCELLED),
    (P.EVALUATING, P.FAILED),
]


@pytest.mark.parametrize(("current", "new"), LEGAL)
def test_legal_moves_pass(current: MigrationPhase, new: MigrationPhase) -> None:
    check_transition(current, new, subject="migration m")


def _all_pairs() -> list[tuple[MigrationPhase, MigrationPhase]]:
    return [(a, b) for a, b in itertools.product(MigrationPhase, MigrationPhase) if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("current", "new"), _all_pairs())
def test_every_move_outside_the_table_raises_naming_both_phases(
    current: MigrationPhase, new: MigrationPhase
) -> None:
    with pytest.raises(IllegalTransitionError) as err:
        check_transition(current, new, subject="migration m of support-chat")
    assert f"from {current} to {new}" in str(err.value)
    assert "migration m of support-chat" in str(err.value)


def test_terminal_phases_are_exactly_the_ends() -> None:
    assert {P.SUCCEEDED, P.FAILED, P.ROLLED_BACK, P.CANCELLED, P.DRY_RUN_DONE} == TERMINAL
    assert frozenset(MigrationPhase) - TERMINAL == ACTIVE
    assert "none (it is final)" in _message(P.SUCCEEDED, P.PENDING)


def test_cancelling_a_rollback_or_a_live_canary_is_refused() -> None:
    # cancelling half way through would leave traffic split; rollback must finish or fail loudly
    for phase in (P.CANARY, P.PROMOTING, P.ROLLING_BACK):
        assert P.CANCELLED not in TRANSITIONS[phase]


def test_only_succeeded_keeps_its_key_after_the_end() -> None:
    assert {P.SUCCEEDED} == KEY_HOLDING & TERMINAL


@pytest.mark.parametrize(
    ("text", "ok"), [("planned", True), ("PLANNED", False), ("", False), ("done", False)]
)
def test_parse_phase(text: str, ok: bool) -> None:
    if ok:
        assert parse_phase(text) is P.PLANNED
    else:
        with pytest.raises(ConfigError, match="not a migration phase"):
            parse_phase(text)


def _message(current: MigrationPhase, new: MigrationPhase) -> str:
    with pytest.raises(IllegalTransitionError) as err:
        check_transition(current, new, subject="m")
    return str(err.value)
