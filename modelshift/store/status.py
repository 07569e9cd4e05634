"""Bundle status: the states a registered bundle moves through, and the one table of allowed moves."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from modelshift.errors import ConfigError, IllegalTransitionError


class BundleStatus(StrEnum):
    """Where a registered bundle stands in its life cycle (DESIGN §1)."""

    CANDIDATE = "candidate"
    EVALUATED = "evaluated"
    CANARY = "canary"
    PRODUCTION = "production"
    RETIRED = "retired"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"


#: THE transition table. Anything not listed raises; retired/rejected/rolled_back are terminal.
TRANSITIONS: Mapping[BundleStatus, frozenset[BundleStatus]] = {
    BundleStatus.CANDIDATE: frozenset({BundleStatus.EVALUATED, BundleStatus.REJECTED}),
    BundleStatus.EVALUATED: frozenset({BundleStatus.CANARY, BundleStatus.REJECTED}),
    BundleStatus.CANARY: frozenset({BundleStatus.PRODUCTION, BundleStatus.ROLLED_BACK}),
    BundleStatus.PRODUCTION: frozenset({BundleStatus.RETIRED}),
    BundleStatus.RETIRED: frozenset(),
    BundleStatus.REJECTED: frozenset(),
    BundleStatus.ROLLED_BACK: frozenset(),
}

#: statuses that may carry router weight > 0
SERVING: frozenset[BundleStatus] = frozenset({BundleStatus.PRODUCTION, BundleStatus.CANARY})


def allowed_moves(current: BundleStatus) -> list[BundleStatus]:
    """The statuses ``current`` may move to, in a stable order for messages."""
    return sorted(TRANSITIONS[current])


def parse_status(value: str, *, field: str = "status") -> BundleStatus:
    """Turn a string into a BundleStatus, or raise ConfigError naming the valid values."""
    try:
        return BundleStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in BundleStatus)
        raise ConfigError(f"{field} {value!r} is not a bundle status; use one of: {valid}") from None


def check_transition(current: BundleStatus, new: BundleStatus, *, subject: str) -> None:
    """Raise IllegalTransitionError (naming from, to and the allowed moves) unless current -> new is legal."""
    if new in TRANSITIONS[current]:
        return
    moves = ", ".join(allowed_moves(current)) or "none (it is final)"
    raise IllegalTransitionError(
        f"{subject}: cannot move from {current} to {new}; allowed from {current}: {moves}",
        subject=subject,
        current=str(current),
        new=str(new),
    )
