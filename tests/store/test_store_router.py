"""Router: the pure invariant check (every violation), and compare-and-set on both backends."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from store_helpers import bundle_args, bundle_in, register

from modelshift.errors import RouterConflictError, RouterInvariantError
from modelshift.store import BundleStatus, Store, check_router_invariants, router_violations

S = BundleStatus


@dataclass(frozen=True)
class B:
    app: str
    status: BundleStatus


BUNDLES = {
    "prod": B("app", S.PRODUCTION),
    "prod2": B("app", S.PRODUCTION),
    "can": B("app", S.CANARY),
    "can2": B("app", S.CANARY),
    "cand": B("app", S.CANDIDATE),
    "eval": B("app", S.EVALUATED),
    "retired": B("app", S.RETIRED),
    "rolled": B("app", S.ROLLED_BACK),
    "rejected": B("app", S.REJECTED),
    "other-app": B("other", S.PRODUCTION),
}
PASSING = {"can", "can2"}


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        pytest.param({"prod": 100}, [], id="all-production"),
        pytest.param({"prod": 95, "can": 5}, [], id="canary-5"),
        pytest.param({"prod": 0, "can": 100}, [], id="canary-100-zero-production"),
        pytest.param({"prod": 100, "retired": 0}, [], id="zero-weight-on-retired-is-fine"),
        pytest.param({"prod": 99}, ["sum to 99"], id="sum-below"),
        pytest.param({"prod": 100, "can": 1}, ["sum to 101"], id="sum-above"),
        pytest.param({}, ["sum to 0"], id="empty"),
        pytest.param({"prod": 101, "can": -1}, ["prod is 101", "can is -1"], id="out-of-range"),
        pytest.param({"prod": 99.5, "can": 0.5}, ["whole percent", "whole percent", "sum to 0"], id="floats"),
        pytest.param({"prod": True}, ["whole percent", "sum to 0"], id="bool"),
        pytest.param({"prod": 90, "ghost": 10}, ["ghost is not a registered bundle"], id="unregistered"),
        pytest.param({"prod": 90, "other-app": 10}, ["belongs to app 'other'"], id="other-app"),
        pytest.param({"prod": 90, "cand": 10}, ["cand is candidate"], id="candidate"),
        pytest.param({"prod": 90, "eval": 10}, ["eval is evaluated"], id="evaluated"),
        pytest.param({"prod": 90, "retired": 10}, ["retired is retired"], id="retired"),
        pytest.param({"prod": 90, "rolled": 10}, ["rolled is rolled_back"], id="rolled-back"),
        pytest.param({"prod": 90, "rejected": 10}, ["rejected is rejected"], id="rejected"),
        pytest.param({"prod": 50, "prod2": 50}, ["2 production bundles"], id="two-production"),
        pytest.param({"prod": 80, "can": 10, "can2": 10}, ["2 canary bundles"], id="two-canaries"),
        pytest.param(
            {"prod": 90, "can": 1, "ghost": 5, "cand": 1},
            ["sum to 97", "ghost is not", "cand is candidate"],
            id="every-violation-at-once",
        ),
    ],
)
def test_router_invariants(weights: dict[str, object], expected: list[str]) -> None:
    problems = router_violations(weights, BUNDLES, PASSING, app="app")
    assert len(problems) == len(expected), problems
    for fragment, problem in zip(expected, sorted(problems, key=lambda p: _order(p, expected)), strict=True):
        assert fragment in problem
    if expected:
        with pytest.raises(RouterInvariantError) as caught:
            check_router_invariants(weights, BUNDLES, PASSING, app="app")
        assert all(f in str(caught.value) for f in expected)
    else:
        check_router_invariants(weights, BUNDLES, PASSING, app="app")


def _order(problem: str, expected: list[str]) -> int:
    return next((i for i, f in enumerate(expected) if f in problem), len(expected))


def test_canary_needs_a_passing_record_for_its_exact_digest() -> None:
    problems = router_violations({"prod": 95, "can": 5}, BUNDLES, {"can2"}, app="app")
    assert problems == [
        "canary can has no passing evaluation record for its exact digest; "
        "evaluate it before giving it traffic"
    ]


# -- on the store --


def _serving(store: Store) -> tuple[str, str]:
    base = register(store, bundle_args("app", "1"))
    store.adopt_production(base.digest, actor="a")
    cand = bundle_in(store, "app", BundleStatus.CANARY, version="2")
    return base.digest, cand.digest


def test_router_starts_empty(store: Store) -> None:
    state = store.get_router("app")
    assert (state.app, state.revision, state.weights, state.lease_expires_at) == ("app", 0, {}, None)


def test_set_router_compare_and_set(store: Store) -> None:
    base, cand = _serving(store)
    store.record_evaluation(cand, "golden", True, "passed", {"metrics": []}, actor="gate")
    lease = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)
    state = store.set_router(
        "app", {base: 95, cand: 5}, expected_revision=1, actor="flow", reason="step 1", lease_expires_at=lease
    )
    assert (state.revision, state.weights, state.lease_expires_at) == (2, {base: 95, cand: 5}, lease)
    assert store.get_router("app") == state
    events = store.audit_events()
    with pytest.raises(RouterConflictError, match="at revision 2, not 1") as caught:
        store.set_router("app", {base: 50, cand: 50}, expected_revision=1, actor="other", reason="stale")
    assert caught.value.retryable
    assert store.get_router("app") == state and store.audit_events() == events
    last = events[-1]
    assert last.reason == "router.updated"
    assert last.data["weights"] == {base: 95, cand: 5} and last.data["previous_weights"] == {base: 100}


def test_zero_weights_are_not_stored(store: Store) -> None:
    base, cand = _serving(store)
    store.record_evaluation(cand, "golden", True, "passed", {}, actor="gate")
    state = store.set_router("app", {base: 100, cand: 0}, expected_revision=1, actor="a", reason="r")
    assert state.weights == {base: 100}


@pytest.mark.parametrize(
    ("evaluation", "expected"),
    [
        pytest.param(None, "no passing evaluation record", id="never-evaluated"),
        pytest.param(False, "no passing evaluation record", id="failed-evaluation"),
    ],
)
def test_canary_without_passing_evaluation_gets_no_traffic(
    store: Store, evaluation: bool | None, expected: str
) -> None:
    base, cand = _serving(store)
    if evaluation is not None:
        store.record_evaluation(cand, "golden", evaluation, "failed", {}, actor="gate")
    events = store.audit_events()
    with pytest.raises(RouterInvariantError, match=expected):
        store.set_router("app", {base: 95, cand: 5}, expected_revision=1, actor="a", reason="r")
    assert store.get_router("app").weights == {base: 100} and store.audit_events() == events


def test_invariant_violations_on_the_store_change_nothing(store: Store) -> None:
    base, _ = _serving(store)
    other = register(store, bundle_args("other", "1"))
    before = store.get_router("app")
    with pytest.raises(RouterInvariantError) as caught:
        store.set_router(
            "app", {base: 90, other.digest: 5, "ghost": 1}, expected_revision=1, actor="a", reason="r"
        )
    message = str(caught.value)
    assert "3 problem(s)" in message and "sum to 96" in message and "belongs to app 'other'" in message
    assert store.get_router("app") == before


def test_passing_evaluation_is_the_newest_passing_record(store: Store) -> None:
    base, cand = _serving(store)
    assert store.passing_evaluation(cand) is None
    first = store.record_evaluation(cand, "golden", True, "passed", {"n": 1}, actor="gate")
    store.record_evaluation(cand, "golden", False, "failed", {"n": 2}, actor="gate")
    second = store.record_evaluation(
        cand, "golden-2", True, "passed", {"n": 3}, baseline_digest=base, actor="gate"
    )
    found = store.passing_evaluation(cand)
    assert found is not None and found.id == second.id and found.id != first.id
    assert (found.baseline_digest, found.report, found.dataset_digest) == (base, {"n": 3}, "golden-2")
    assert store.passing_evaluation(base) is None
    assert [e.reason for e in store.audit_events()].count("evaluation.recorded") == 3


def test_evaluation_of_unknown_bundle_is_refused(store: Store) -> None:
    from modelshift.errors import NotFoundError

    with pytest.raises(NotFoundError):
        store.record_evaluation("nope", "golden", True, "passed", {}, actor="gate")
    base = register(store, bundle_args("app", "1"))
    with pytest.raises(NotFoundError):
        store.record_evaluation(
            base.digest, "golden", True, "passed", {}, baseline_digest="nope", actor="gate"
        )
    assert store.passing_evaluation(base.digest) is None


def test_concurrent_compare_and_set_has_exactly_one_winner(store: Store) -> None:
    base, cand = _serving(store)
    store.record_evaluation(cand, "golden", True, "passed", {}, actor="gate")
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def writer(weight: int) -> None:
        barrier.wait()
        try:
            store.set_router(
                "app", {base: 100 - weight, cand: weight}, expected_revision=1, actor="w", reason="r"
            )
            outcomes.append("won")
        except RouterConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
    assert store.get_router("app").revision == 2
    assert store.verify_audit().ok
