"""The fleet table's pure rules: the colour of days left (boundary rows), the order of precedence of the
next action, and when a pending approval counts; and the session/CSRF tokens of the operator check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelshift.audit import GENESIS_HASH, AuditEvent, Reason
from modelshift.dashboard.auth import Authenticator, AuthProblem
from modelshift.dashboard.fleet import (
    Approval,
    Lifecycle,
    next_action,
    pending_approval,
    urgency,
)
from modelshift.migration import Migration, MigrationPhase, Trigger
from modelshift.store import BundleStatus, RegisteredBundle

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "status", "expected"),
    [
        (None, None, "unknown"),
        (None, "retired", "urgent"),
        (-5, "retired", "urgent"),
        (0, "retiring", "urgent"),
        (30, "retiring", "urgent"),
        (31, "retiring", "warning"),
        (90, "deprecating", "warning"),
        (91, "ok", "ok"),
        (None, "ok", "ok"),
    ],
)
def test_urgency_of_days_left(days: int | None, status: str | None, expected: str) -> None:
    assert urgency(days, status) == expected


def _migration(
    phase: MigrationPhase, *, dry_run: bool = False, plan: dict[str, Any] | None = None
) -> Migration:
    return Migration(
        id=f"m-{phase.value}",
        app="a",
        baseline_digest="sha256:b",
        target="gpt-4o@2024-11-20",
        idempotency_key="k",
        phase=phase,
        dry_run=dry_run,
        trigger=Trigger.CLI,
        reason="r",
        actor="t",
        parameters={},
        plan=plan,
        created_at=NOW,
        updated_at=NOW,
        flow_run_id=None,
    )


def _event(
    seq: int, reason: Reason, data: dict[str, Any], subject: str = "rollout a -> sha256:c"
) -> AuditEvent:
    return AuditEvent(
        seq=seq,
        occurred_at=NOW + timedelta(seconds=seq),
        migration_id="m-canary",
        actor="flow",
        reason=reason.value,
        subject=subject,
        data=data,
        prev_hash=GENESIS_HASH,
        hash=str(seq),
    )


RETIRING = Lifecycle(available=True, status="retiring", days_left=12, urgency="urgent")
OK = Lifecycle(available=True, status="ok", days_left=400, urgency="ok")
APPROVAL = Approval(candidate_digest="sha256:c", reason="before 100 %", requested_at=NOW)
READY = {"status": "ready"}
BLOCKED = {"status": "blocked", "next_steps": ["request more quota"]}
_P = MigrationPhase


@pytest.mark.parametrize(
    ("lifecycle", "approval", "migrations", "kind", "detail"),
    [
        (OK, None, [], "none", ""),
        (RETIRING, None, [], "migrate", "retiring in 12 days"),
        (Lifecycle(available=True, status="retired", days_left=-3), None, [], "migrate", "3 days ago"),
        (Lifecycle(available=False, note="ARM down"), None, [], "none", ""),
        (RETIRING, None, [_migration(_P.DRY_RUN_DONE, dry_run=True, plan=READY)], "plan_ready", "dry run"),
        (RETIRING, None, [_migration(_P.PLANNED, plan=READY)], "plan_ready", "planned"),
        (RETIRING, None, [_migration(_P.DRY_RUN_DONE, dry_run=True, plan=BLOCKED)], "blocked", "quota"),
        (RETIRING, None, [_migration(_P.EVALUATING)], "migration_running", "evaluating"),
        (RETIRING, None, [_migration(_P.FAILED)], "blocked", "migration failed"),
        (RETIRING, None, [_migration(_P.ROLLED_BACK)], "blocked", "rolled_back"),
        # a succeeded migration and a healthy model: nothing to do
        (OK, None, [_migration(_P.SUCCEEDED)], "none", ""),
        # an approval wins over everything, a running migration over an old dry run
        (RETIRING, APPROVAL, [_migration(_P.CANARY)], "needs_approval", "before 100 %"),
        (
            RETIRING,
            None,
            [_migration(_P.CANARY), _migration(_P.DRY_RUN_DONE, dry_run=True, plan=READY)],
            "migration_running",
            "canary",
        ),
    ],
)
def test_next_action_precedence(
    lifecycle: Lifecycle, approval: Approval | None, migrations: list[Migration], kind: str, detail: str
) -> None:
    action = next_action(lifecycle, None, approval, migrations, {})
    assert action.kind == kind
    assert detail in action.detail


def _bundle(status: BundleStatus) -> RegisteredBundle:
    return RegisteredBundle(
        id=2,
        app="a",
        version="1.1.0",
        digest="sha256:c",
        status=status,
        manifest={},
        files={},
        registered_at=NOW,
        status_changed_at=NOW,
    )


@pytest.mark.parametrize(
    ("later", "status", "pending"),
    [
        (None, BundleStatus.CANARY, True),
        (None, BundleStatus.EVALUATED, True),  # asked before any traffic
        (Reason.CANARY_APPROVED, BundleStatus.CANARY, False),
        (Reason.CANARY_REJECTED, BundleStatus.CANARY, False),
        (Reason.CANARY_ROLLED_BACK, BundleStatus.ROLLED_BACK, False),
        (Reason.CANARY_PROMOTED, BundleStatus.PRODUCTION, False),
        # the flow gave up and the candidate moved on: the question is moot
        (None, BundleStatus.ROLLED_BACK, False),
    ],
)
def test_pending_approval(later: Reason | None, status: BundleStatus, pending: bool) -> None:
    events = [_event(1, Reason.CANARY_APPROVAL_REQUESTED, {"app": "a", "reason": "before 100 %"})]
    events.append(_event(2, Reason.CANARY_APPROVAL_REQUESTED, {"app": "other"}))
    if later is not None:
        events.append(_event(3, later, {"app": "a"}))
    found = pending_approval(events, "a", [_bundle(status)])
    assert (found is not None) is pending
    if found is not None:
        assert found.candidate_digest == "sha256:c"
        assert found.reason == "before 100 %"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_session_cookie_and_csrf_token() -> None:
    clock = Clock()
    auth = Authenticator("tok", clock=clock)
    operator, cookie = auth.login("dana", "tok")
    assert auth.from_cookie(cookie) == operator
    csrf = auth.csrf_token(operator)
    auth.check_csrf(operator, csrf)
    with pytest.raises(AuthProblem) as bad:
        auth.check_csrf(operator, csrf[:-1] + ("A" if csrf[-1] != "A" else "B"))
    assert bad.value.status == 403
    # a tampered cookie, another dashboard's cookie and an expired one are no session
    body, _, signature = cookie.rpartition(".")
    assert auth.from_cookie(body + "x." + signature) is None
    assert Authenticator("tok", clock=clock).from_cookie(cookie) is None
    clock.now = NOW + timedelta(hours=13)
    assert auth.from_cookie(cookie) is None
    with pytest.raises(AuthProblem) as wrong:
        auth.login("dana", "nope")
    assert wrong.value.status == 401
