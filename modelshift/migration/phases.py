"""Migration phases, the triggers that start a migration, and the one table of allowed phase moves."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from modelshift.errors import ConfigError, IllegalTransitionError


class MigrationPhase(StrEnum):
    """Where one migration of an app stands (DESIGN §2: assess, prepare, evaluate, canary, promote)."""

    PENDING = "pending"
    ASSESSING = "assessing"
    PLANNED = "planned"
    PREPARING = "preparing"
    #: the candidate is composed, registered and deployed; the next stage (evaluate) has not started
    PREPARED = "prepared"
    EVALUATING = "evaluating"
    #: the candidate passed the offline gate (bundle status evaluated); the canary stage has not started
    EVALUATED = "evaluated"
    CANARY = "canary"
    PROMOTING = "promoting"
    ROLLING_BACK = "rolling_back"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    DRY_RUN_DONE = "dry_run_done"


class Trigger(StrEnum):
    """What started a migration: the daily scan, a person in the Prefect UI, an Azure notice, the CLI."""

    SCHEDULE = "schedule"
    UI = "ui"
    NOTICE = "notice"
    CLI = "cli"


_P = MigrationPhase

#: THE transition table. Anything not listed raises IllegalTransitionError and changes nothing.
#: Every non-terminal phase may fail or be cancelled; rolling_back may only end rolled_back or failed,
#: because cancelling a rollback half way would leave traffic split.
TRANSITIONS: Mapping[MigrationPhase, frozenset[MigrationPhase]] = {
    _P.PENDING: frozenset({_P.ASSESSING, _P.FAILED, _P.CANCELLED}),
    _P.ASSESSING: frozenset({_P.PLANNED, _P.DRY_RUN_DONE, _P.FAILED, _P.CANCELLED}),
    _P.PLANNED: frozenset({_P.PREPARING, _P.FAILED, _P.CANCELLED}),
    _P.PREPARING: frozenset({_P.PREPARED, _P.EVALUATING, _P.FAILED, _P.CANCELLED}),
    _P.PREPARED: frozenset({_P.EVALUATING, _P.FAILED, _P.CANCELLED}),
    # a failed or inconclusive gate ends in failed (candidate rejected, reason in the evidence)
    _P.EVALUATING: frozenset({_P.EVALUATED, _P.CANARY, _P.FAILED, _P.CANCELLED}),
    _P.EVALUATED: frozenset({_P.CANARY, _P.FAILED, _P.CANCELLED}),
    _P.CANARY: frozenset({_P.PROMOTING, _P.ROLLING_BACK, _P.FAILED}),
    _P.PROMOTING: frozenset({_P.SUCCEEDED, _P.ROLLING_BACK, _P.FAILED}),
    _P.ROLLING_BACK: frozenset({_P.ROLLED_BACK, _P.FAILED}),
    _P.SUCCEEDED: frozenset(),
    _P.FAILED: frozenset(),
    _P.ROLLED_BACK: frozenset(),
    _P.CANCELLED: frozenset(),
    _P.DRY_RUN_DONE: frozenset(),
}

#: phases with no way out
TERMINAL: frozenset[MigrationPhase] = frozenset(p for p, moves in TRANSITIONS.items() if not moves)
#: phases of a migration still in flight; an app may have at most one (enforced by a partial unique index)
ACTIVE: frozenset[MigrationPhase] = frozenset(MigrationPhase) - TERMINAL
#: terminal phases after which the same (app, baseline, target) may be tried again
RETRYABLE_ENDS: frozenset[MigrationPhase] = frozenset(
    {_P.FAILED, _P.ROLLED_BACK, _P.CANCELLED, _P.DRY_RUN_DONE}
)
#: phases whose rows hold their idempotency key: in flight, or finished successfully
KEY_HOLDING: frozenset[MigrationPhase] = frozenset(MigrationPhase) - RETRYABLE_ENDS


def sql_in(phases: frozenset[MigrationPhase]) -> str:
    """``'a', 'b', ...`` in a stable order, for the partial indexes' WHERE clauses."""
    return ", ".join(f"'{p.value}'" for p in sorted(phases))


def parse_phase(value: str, *, field: str = "phase") -> MigrationPhase:
    """Turn a string into a MigrationPhase, or raise ConfigError naming the valid values."""
    try:
        return MigrationPhase(value)
    except ValueError:
        valid = ", ".join(p.value for p in MigrationPhase)
        raise ConfigError(f"{field} {value!r} is not a migration phase; use one of: {valid}") from None


def check_transition(current: MigrationPhase, new: MigrationPhase, *, subject: str) -> None:
    """Raise IllegalTransitionError (naming from, to and the allowed moves) unless current -> new is legal."""
    if new in TRANSITIONS[current]:
        return
    moves = ", ".join(sorted(TRANSITIONS[current])) or "none (it is final)"
    raise IllegalTransitionError(
        f"{subject}: cannot move from {current} to {new}; allowed from {current}: {moves}",
        subject=subject,
        current=str(current),
        new=str(new),
    )
