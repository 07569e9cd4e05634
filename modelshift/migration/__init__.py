"""Migration records: phases with one transition table, the ``migrations`` table and its audited writes."""

from __future__ import annotations

from modelshift.migration.phases import (
    ACTIVE,
    KEY_HOLDING,
    TERMINAL,
    TRANSITIONS,
    MigrationPhase,
    Trigger,
    check_transition,
    parse_phase,
)
from modelshift.migration.records import Migration, MigrationRow, idempotency_key
from modelshift.migration.repository import MigrationStore, StartResult

__all__ = [
    "ACTIVE",
    "KEY_HOLDING",
    "TERMINAL",
    "TRANSITIONS",
    "Migration",
    "MigrationPhase",
    "MigrationRow",
    "MigrationStore",
    "StartResult",
    "Trigger",
    "check_transition",
    "idempotency_key",
    "parse_phase",
]
