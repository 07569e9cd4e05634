"""Status transitions (every pair of statuses), adoption, promotion and rollback, on both backends."""

from __future__ import annotations

import itertools

import pytest
from store_helpers import bundle_args, bundle_in, register

from modelshift.errors import IllegalTransitionError, StateError
from modelshift.store import TRANSITIONS, BundleStatus, Store

LEGAL = {
    (BundleStatus.CANDIDATE, BundleStatus.EVALUATED),
    (BundleStatus.CANDIDATE, BundleStatus.REJECTED),
    (BundleStatus.EVALUATED, BundleStatus.CANARY),
    (BundleStatus.EVALUATED, BundleStatus.REJECTED),
    (BundleStatus.CANARY, BundleStatus.PRODUCTION),
    (BundleStatus.CANARY, BundleStatus.ROLLED_BACK),
    (BundleStatus.PRODUCTION, BundleStatus.RETIRED),
}
PAIRS = list(itertools.product(BundleStatus, BundleStatus))


def test_transition_table_is_exactly_the_designed_one() -> None:
    assert {(a, b) for a, moves in TRANSITIONS.items() for b in moves} == LEGAL


def test_every_transition_on_the_store(store: Store) -> None:
    """All 49 (from, to) pairs: legal ones move and audit; illegal ones raise and change nothing."""
    for n, (current, new) in enumerate(PAIRS):
        bundle = bundle_in(store, f"app{n}", current)
        events_before = store.audit_events()
        if (current, new) in LEGAL:
            moved = store.set_status(
                bundle.digest, new, actor="alice", reason="test", migration_id="m-7", evidence={"k": n}
            )
            assert moved.status is new, (current, new)
            last = store.audit_events()[-1]
            assert last.reason == "bundle.status_changed"
            assert (last.data["from"], last.data["to"], last.data["evidence"]) == (current, new, {"k": n})
            assert (last.actor, last.migration_id) == ("alice", "m-7")
            continue
        with pytest.raises(IllegalTransitionError) as caught:
            store.set_status(bundle.digest, new, actor="alice", reason="test")
        message = str(caught.value)
        assert f"from {current} to {new}" in message, message
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (it is final)"
        assert f"allowed from {current}: {allowed}" in message, message
        assert store.get_bundle_by_digest(bundle.digest).status is current
        assert store.audit_events() == events_before
    assert store.verify_audit().ok


def test_status_change_of_unknown_digest(store: Store) -> None:
    from modelshift.errors import NotFoundError

    with pytest.raises(NotFoundError):
        store.set_status("nope", BundleStatus.EVALUATED, actor="a", reason="r")


def test_second_production_is_refused(store: Store) -> None:
    first = bundle_in(store, "app", BundleStatus.PRODUCTION, version="1")
    second = bundle_in(store, "app", BundleStatus.CANARY, version="2")
    with pytest.raises(IllegalTransitionError, match=f"already has production bundle 1 \\({first.digest}\\)"):
        store.set_status(second.digest, BundleStatus.PRODUCTION, actor="a", reason="r")
    assert store.get_bundle_by_digest(second.digest).status is BundleStatus.CANARY
    # registering straight into production is held to the same rule
    with pytest.raises(IllegalTransitionError, match="at most one production bundle per app"):
        register(store, bundle_args("app", "3"), status="production")


def test_adopt_production(store: Store) -> None:
    bundle = register(store, bundle_args("app", "1"))
    state = store.adopt_production(bundle.digest, actor="onboarder")
    assert (state.revision, state.weights) == (1, {bundle.digest: 100})
    assert store.get_bundle("app").status is BundleStatus.PRODUCTION
    reasons = [e.reason for e in store.audit_events()]
    assert reasons == ["bundle.registered", "bundle.adopted", "router.updated"]
    assert store.verify_audit().ok


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        pytest.param("second", "already has production bundle", id="app-already-has-production"),
        pytest.param("evaluated", "only a candidate can be adopted", id="not-a-candidate"),
    ],
)
def test_adopt_refusals(store: Store, setup: str, expected: str) -> None:
    if setup == "second":
        store.adopt_production(register(store, bundle_args("app", "1")).digest, actor="a")
        target = register(store, bundle_args("app", "2"))
    else:
        target = bundle_in(store, "app", BundleStatus.EVALUATED)
    events = store.audit_events()
    router = store.get_router("app")
    with pytest.raises(IllegalTransitionError, match=expected):
        store.adopt_production(target.digest, actor="a")
    assert store.audit_events() == events and store.get_router("app") == router


def _canary_at(store: Store, weight: int) -> tuple[str, str]:
    base = register(store, bundle_args("app", "1"))
    store.adopt_production(base.digest, actor="a")
    cand = bundle_in(store, "app", BundleStatus.CANARY, version="2")
    store.record_evaluation(cand.digest, "golden", True, "passed", {}, actor="a")
    store.set_router(
        "app", {base.digest: 100 - weight, cand.digest: weight}, expected_revision=1, actor="a", reason="r"
    )
    return base.digest, cand.digest


def test_promote_retires_old_production_and_routes_all_traffic(store: Store) -> None:
    base, cand = _canary_at(store, 25)
    state = store.promote(cand, actor="flow", reason="canary passed", migration_id="m", evidence={"p": 0.01})
    assert state.weights == {cand: 100}
    assert store.get_bundle_by_digest(base).status is BundleStatus.RETIRED
    assert store.get_bundle_by_digest(cand).status is BundleStatus.PRODUCTION
    count = len(store.audit_events())
    assert store.promote(cand, actor="flow", reason="again") == state  # idempotent
    assert len(store.audit_events()) == count
    assert store.verify_audit().ok


def test_promote_of_a_candidate_changes_nothing(store: Store) -> None:
    base = register(store, bundle_args("app", "1"))
    store.adopt_production(base.digest, actor="a")
    cand = register(store, bundle_args("app", "2"))
    with pytest.raises(IllegalTransitionError, match="cannot move from candidate to production"):
        store.promote(cand.digest, actor="a", reason="r")
    assert store.get_bundle_by_digest(base.digest).status is BundleStatus.PRODUCTION


def test_roll_back_is_atomic_and_idempotent(store: Store) -> None:
    base, cand = _canary_at(store, 5)
    state = store.roll_back(cand, actor="analysis", reason="error rate up", evidence={"verdict": "failed"})
    assert state.weights == {base: 100}
    assert store.get_bundle_by_digest(cand).status is BundleStatus.ROLLED_BACK
    count = len(store.audit_events())
    assert store.roll_back(cand, actor="crash-hook", reason="again") == state
    assert len(store.audit_events()) == count


def test_roll_back_without_production_is_refused(store: Store) -> None:
    cand = bundle_in(store, "app", BundleStatus.CANARY)
    with pytest.raises(StateError, match="no production bundle to roll back to"):
        store.roll_back(cand.digest, actor="a", reason="r")
    assert store.get_bundle_by_digest(cand.digest).status is BundleStatus.CANARY


def test_a_bundle_with_traffic_cannot_leave_serving_status(store: Store) -> None:
    _, cand = _canary_at(store, 5)
    with pytest.raises(StateError, match="still receives 5 % of traffic"):
        store.set_status(cand, BundleStatus.ROLLED_BACK, actor="a", reason="r")
    assert store.get_bundle_by_digest(cand).status is BundleStatus.CANARY


def test_missing_actor_is_refused(store: Store) -> None:
    bundle = register(store, bundle_args("app", "1"))
    with pytest.raises(StateError, match="no actor"):
        store.adopt_production(bundle.digest, actor="")
