"""The ``evaluated`` phase: where a passed gate leaves a migration, and the moves into and out of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshift.errors import IllegalTransitionError, MigrationConflictError
from modelshift.migration import ACTIVE, KEY_HOLDING, TERMINAL, TRANSITIONS, MigrationPhase, MigrationStore
from modelshift.migration.phases import check_transition
from modelshift.store import Store

P = MigrationPhase


@pytest.mark.parametrize(
    ("current", "new", "legal"),
    [
        (P.EVALUATING, P.EVALUATED, True),  # the gate passed
        (P.EVALUATING, P.FAILED, True),  # the gate failed or was inconclusive: candidate rejected
        (P.EVALUATING, P.CANARY, True),  # a later release may go straight on
        (P.EVALUATING, P.CANCELLED, True),
        (P.EVALUATED, P.CANARY, True),
        (P.EVALUATED, P.FAILED, True),
        (P.EVALUATED, P.CANCELLED, True),
        (P.PREPARED, P.EVALUATED, False),  # never without evaluating
        (P.PREPARING, P.EVALUATED, False),
        (P.EVALUATED, P.EVALUATING, False),  # an evaluation that finished is not run again
        (P.EVALUATED, P.PROMOTING, False),  # no promotion without a canary
        (P.EVALUATED, P.SUCCEEDED, False),
        (P.EVALUATED, P.PREPARED, False),
    ],
)
def test_moves_around_evaluated(current: MigrationPhase, new: MigrationPhase, legal: bool) -> None:
    if legal:
        check_transition(current, new, subject="migration m")
        assert new in TRANSITIONS[current]
    else:
        with pytest.raises(IllegalTransitionError, match=f"from {current} to {new}"):
            check_transition(current, new, subject="migration m")


def test_evaluated_is_active_and_holds_its_key() -> None:
    assert P.EVALUATED in ACTIVE and P.EVALUATED in KEY_HOLDING and P.EVALUATED not in TERMINAL


def test_an_evaluated_migration_blocks_a_second_one_for_the_app(tmp_path: Path) -> None:
    # the store's partial unique index (alembic 0008) counts evaluated as active
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        migrations = MigrationStore(store)

        def start(target: str) -> str:
            started = migrations.start(
                app="support-chat", baseline_digest="b" * 64, target=target, trigger="cli",
                reason="test", actor="tester", parameters={},
            )  # fmt: skip
            return started.migration.id

        first = start("gpt-4o@2024-11-20")
        for phase in (P.ASSESSING, P.PLANNED, P.PREPARING, P.PREPARED, P.EVALUATING, P.EVALUATED):
            migrations.advance(first, phase, actor="tester")
        assert migrations.get(first).phase is P.EVALUATED
        assert migrations.active_for("support-chat") is not None
        with pytest.raises(MigrationConflictError, match="active"):
            start("gpt-4o@2024-08-06")
