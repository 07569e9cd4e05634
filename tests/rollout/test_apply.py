"""Carrying out decisions against the store router and the emulator's ARM: rollback, promote, leases."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshift.audit import Reason
from modelshift.bundle.manifest import Canary
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import RouterInvariantError, StateError
from modelshift.platforms import azure
from modelshift.platforms.azure.arm import ArmClient
from modelshift.registry import register
from modelshift.rollout import ApprovalInput, ObservationPair, RolloutSpec, RolloutStatus, decide
from modelshift.rollout.apply import Applier, DeploymentRemover, StoreRouterBackend, find_canary
from modelshift.settings import Settings
from modelshift.store import BundleStatus, Store, router_violations
from tests.gateway.gateway_helpers import DEPLOYMENTS, START, MovableClock, write_bundle

APP = "shop"
ACCOUNT = "contoso-aoai-eus"


def _scenario() -> dict[str, Any]:
    from tests.gateway.gateway_helpers import scenario

    data = scenario()
    for sub in data["subscriptions"]:
        for group in sub["resource_groups"]:
            for account in group["accounts"]:
                if account["name"] == ACCOUNT:
                    for name, version in (("chat-4o-1120", "2024-11-20"), ("chat-4o-0806", "2024-08-06")):
                        account["deployments"].append(
                            {
                                "name": name,
                                "model": {"format": "OpenAI", "name": "gpt-4o", "version": version},
                                "sku": {"name": "GlobalStandard", "capacity": 5000},
                            }
                        )
    return data


DEPLOYMENTS["chat-4o-1120"] = ("rg-support", ACCOUNT, "gpt-4o", "2024-11-20")
DEPLOYMENTS["chat-4o-0806"] = ("rg-support", ACCOUNT, "gpt-4o", "2024-08-06")


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    """An emulator whose contoso account also has a gpt-4o 2024-11-20 deployment to delete."""
    with running_emulator(_scenario(), latency_scale=0.0) as emu:
        yield emu


@pytest.fixture
def arm(emulator: EmulatorHandle, tmp_path: Path) -> Iterator[ArmClient]:
    """An ARM client on the emulator."""
    settings = Settings(home=tmp_path, arm_url=emulator.arm_url, arm_token=emulator.bearer_token)
    with httpx.Client(timeout=30) as client:
        yield azure.arm_client(settings, client=client)


@pytest.fixture
def clock() -> MovableClock:
    """The store's clock."""
    return MovableClock()


@pytest.fixture
def store(tmp_path: Path, clock: MovableClock) -> Iterator[Store]:
    """A fresh SQLite store."""
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=clock) as opened:
        yield opened


def _setup(
    store: Store, tmp_path: Path, *, evaluated: bool = True, deployment: str = "chat-4o-1120"
) -> RolloutSpec:
    prod = write_bundle(tmp_path, APP, "1.0.0", "red", "support-chat-4o")
    cand = write_bundle(tmp_path, APP, "2.0.0", "blue", deployment)
    register(store, prod, actor="test", adopt=True)
    register(store, cand, actor="test")
    if evaluated:
        store.set_status(cand.digest, BundleStatus.EVALUATED, actor="test", reason="test")
        store.record_evaluation(cand.digest, "dataset", True, "successful", {}, actor="test")
    return RolloutSpec.from_canary(
        app=APP,
        baseline_digest=prod.digest,
        candidate_digest=cand.digest,
        canary=Canary(steps=[10, 50, 100], min_requests_per_step=5, step_duration_seconds=10),
        lease_seconds=60,
    )


def _applier(store: Store, arm: ArmClient | None, grace: float = 0.0) -> Applier:
    return Applier(
        store=store,
        backend=StoreRouterBackend(store, actor="canary"),
        remover=DeploymentRemover(arm),
        actor="canary",
        grace_seconds=grace,
    )


def _deployments(arm: ArmClient) -> set[str]:
    from modelshift.platforms.base import AccountRef

    sub = arm.subscriptions()[0].subscription_id
    return {
        d.name for d in arm.list(AccountRef(subscription_id=sub, resource_group="rg-support", name=ACCOUNT))
    }


def test_first_decision_enters_canary_and_sets_weights_with_a_lease(store: Store, tmp_path: Path) -> None:
    spec = _setup(store, tmp_path)
    decision = decide(spec, RolloutStatus(), None, START)
    outcome = _applier(store, None).apply(spec, decision, START)
    router = store.get_router(APP)
    assert router.weights == {spec.baseline_digest: 90, spec.candidate_digest: 10}
    assert router.lease_expires_at is not None
    assert router.lease_expires_at.replace(tzinfo=START.tzinfo) == START + timedelta(seconds=60)
    assert store.get_bundle_by_digest(spec.candidate_digest).status is BundleStatus.CANARY
    assert outcome.wait_until is not None
    # applying the same decision again writes nothing new (idempotent)
    revision = router.revision
    _applier(store, None).apply(spec, decision, START)
    assert store.get_router(APP).revision == revision


@pytest.mark.parametrize(
    ("advance", "renewed"),
    [(0, False), (29, False), (31, True), (59, True)],
)
def test_lease_renewal_writes_only_once_half_the_lease_ran_down(
    store: Store, tmp_path: Path, clock: MovableClock, advance: int, renewed: bool
) -> None:
    spec = _setup(store, tmp_path)
    applier = _applier(store, None)
    applier.apply(spec, decide(spec, RolloutStatus(), None, START), START)
    before = store.get_router(APP).revision
    now = clock.advance(advance)
    applier.backend.renew_lease(APP, now + timedelta(seconds=60), now=now)
    assert (store.get_router(APP).revision > before) is renewed


def test_unevaluated_candidate_never_gets_traffic(store: Store, tmp_path: Path) -> None:
    spec = _setup(store, tmp_path, evaluated=False)
    with pytest.raises(RouterInvariantError):
        _applier(store, None).apply(spec, decide(spec, RolloutStatus(), None, START), START)
    assert store.get_router(APP).weights == {spec.baseline_digest: 100}


def test_rollback_is_one_router_write_and_removes_the_candidate_deployment(
    store: Store, tmp_path: Path, arm: ArmClient
) -> None:
    spec = _setup(store, tmp_path)
    applier = _applier(store, arm)
    status = applier.apply(spec, decide(spec, RolloutStatus(), None, START), START).status
    reject = ObservationPair(approval=ApprovalInput(decision="reject", approver="ops", reason="test"))
    # an Approval step answers reject -> RollBack; build it by hand through a spec with approval
    spec_approval = spec.model_copy(update={"steps": [*spec.steps[:1], *_approval_steps()]})
    decision = decide(spec_approval, status, reject, START + timedelta(seconds=1))
    revision = store.get_router(APP).revision
    outcome = applier.apply(spec_approval, decision, START + timedelta(seconds=1))
    assert outcome.status.phase == "rolled_back"
    router = store.get_router(APP)
    assert router.weights == {spec.baseline_digest: 100}
    assert router.revision == revision + 1  # ONE router write
    assert store.get_bundle_by_digest(spec.candidate_digest).status is BundleStatus.ROLLED_BACK
    assert outcome.removed_deployments == ("chat-4o-1120",)
    assert "chat-4o-1120" not in _deployments(arm)
    assert "support-chat-4o" in _deployments(arm)
    reasons = [e.reason for e in store.audit_events()]
    assert reasons.count(Reason.CANARY_ROLLED_BACK) == 1
    # again: nothing changes, deleting a deployment that is gone is fine
    applier.roll_back(APP, spec.candidate_digest, reason="again", evidence={})
    assert store.get_router(APP).revision == revision + 1


def _approval_steps() -> list[Any]:
    from modelshift.rollout import Approval, SetWeight

    return [Approval(reason="test"), SetWeight(weight=100)]


@pytest.mark.parametrize(("grace", "deleted_now"), [(0.0, True), (3600.0, False)])
def test_promotion_retires_the_baseline_and_deletes_its_deployment_after_the_grace(
    store: Store, tmp_path: Path, grace: float, deleted_now: bool
) -> None:
    # its own emulator: this test deletes the production deployment the module's emulator keeps
    with running_emulator(_scenario(), latency_scale=0.0) as emu, httpx.Client(timeout=30) as client:
        settings = Settings(home=tmp_path, arm_url=emu.arm_url, arm_token=emu.bearer_token)
        arm = azure.arm_client(settings, client=client)
        spec = _setup(store, tmp_path)
        applier = _applier(store, arm, grace)
        status = applier.apply(spec, decide(spec, RolloutStatus(), None, START), START).status
        approve = ObservationPair(approval=ApprovalInput(decision="approve", approver="ops"))
        spec_approval = spec.model_copy(update={"steps": [*spec.steps[:1], *_approval_steps()]})
        outcome = applier.apply(spec_approval, decide(spec_approval, status, approve, START), START)
        assert outcome.status.phase == "promoted"
        assert store.get_router(APP).weights == {spec.candidate_digest: 100}
        assert store.get_bundle_by_digest(spec.candidate_digest).status is BundleStatus.PRODUCTION
        assert store.get_bundle_by_digest(spec.baseline_digest).status is BundleStatus.RETIRED
        assert ("support-chat-4o" not in _deployments(arm)) is deleted_now
        if not deleted_now:
            assert outcome.retire_digest == spec.baseline_digest
            assert outcome.delete_after == START + timedelta(seconds=grace)
            assert applier.retire_deployment(spec.baseline_digest) == ["support-chat-4o"]
            assert "support-chat-4o" not in _deployments(arm)
        with pytest.raises(StateError, match="only a retired"):
            applier.retire_deployment(spec.candidate_digest)


def test_a_shared_deployment_is_kept(store: Store, tmp_path: Path, arm: ArmClient) -> None:
    spec = _setup(store, tmp_path, deployment="support-chat-4o")
    applier = _applier(store, arm)
    applier.apply(spec, decide(spec, RolloutStatus(), None, START), START)
    assert applier.roll_back(APP, spec.candidate_digest, reason="test", evidence={}) == []
    assert "support-chat-4o" in _deployments(arm)


def test_a_deployment_a_newer_candidate_reuses_is_kept(store: Store, tmp_path: Path, arm: ArmClient) -> None:
    spec = _setup(store, tmp_path, deployment="chat-4o-0806")
    applier = _applier(store, arm)
    applier.apply(spec, decide(spec, RolloutStatus(), None, START), START)
    register(store, write_bundle(tmp_path, APP, "3.0.0", "green", "chat-4o-0806"), actor="test")
    assert applier.roll_back(APP, spec.candidate_digest, reason="test", evidence={}) == []
    assert "chat-4o-0806" in _deployments(arm)


def test_find_canary_names_the_app_when_nothing_is_in_canary(store: Store, tmp_path: Path) -> None:
    _setup(store, tmp_path)
    with pytest.raises(StateError, match="app 'shop' has no bundle in canary"):
        find_canary(store, APP)


def test_no_sequence_of_router_operations_serves_an_unevaluated_or_mixed_combination(
    store: Store, tmp_path: Path
) -> None:
    """Random interleavings of decisions, renewals, rollbacks and promotions: after every operation the
    stored router satisfies the store's invariants and lists only baseline and the evaluated candidate."""
    spec = _setup(store, tmp_path)
    stranger = write_bundle(tmp_path, APP, "3.0.0", "green", "faq-4o-mini")
    register(store, stranger, actor="test")  # registered, never evaluated
    rng = random.Random(7)
    for _ in range(40):
        applier = _applier(store, None)
        op = rng.choice(["decide", "renew", "rollback", "promote", "stranger"])
        now = START + timedelta(seconds=rng.randint(0, 120))
        try:
            if op == "decide":
                applier.apply(spec, decide(spec, RolloutStatus(), None, now), now)
            elif op == "renew":
                applier.backend.renew_lease(APP, now + timedelta(seconds=60), now=now)
            elif op == "rollback":
                applier.roll_back(APP, spec.candidate_digest, reason="p", evidence={})
            elif op == "promote":
                applier.promote(APP, spec.candidate_digest, evidence={}, now=now)
            else:
                applier.backend.set_weights(
                    APP, {stranger.digest: 50, spec.baseline_digest: 50}, lease_until=now, now=now
                )
        except StateError:
            pass  # refused moves change nothing; the invariant check below still holds
        router = store.get_router(APP)
        bundles = {b.digest: b for b in store.list_bundles(APP)}
        passing = {d for d in bundles if store.passing_evaluation(d) is not None}
        assert router_violations(router.weights, bundles, passing, app=APP) == []
        assert stranger.digest not in router.weights
        assert set(router.weights) <= {spec.baseline_digest, spec.candidate_digest}


def test_the_sweep_deletes_a_retired_deployment_once_its_grace_is_over_and_only_once(
    store: Store, tmp_path: Path, clock: MovableClock
) -> None:
    from modelshift.rollout.sweep import sweep_retired

    # its own emulator: the sweep deletes the production deployment the module's emulator keeps
    with running_emulator(_scenario(), latency_scale=0.0) as emu, httpx.Client(timeout=30) as client:
        settings = Settings(home=tmp_path, arm_url=emu.arm_url, arm_token=emu.bearer_token)
        arm = azure.arm_client(settings, client=client)
        spec = _setup(store, tmp_path)
        applier = _applier(store, arm, grace=3600.0)
        applier.apply(spec, decide(spec, RolloutStatus(), None, START), START)  # into canary
        applier.promote(APP, spec.candidate_digest, evidence={}, now=clock())
        assert "support-chat-4o" in _deployments(arm)

        def sweep(**kwargs: Any) -> dict[str, str]:
            result = sweep_retired(store, arm, now=clock(), grace_seconds=3600.0, actor="sweeper", **kwargs)
            return {item.deployment: item.action for item in result.items}

        assert sweep() == {"support-chat-4o": "pending"}
        clock.advance(3601)
        assert sweep(dry_run=True) == {"support-chat-4o": "due"}
        assert "support-chat-4o" in _deployments(arm)
        assert sweep(app="another-app") == {}
        assert sweep() == {"support-chat-4o": "deleted"}
        assert "support-chat-4o" not in _deployments(arm)
        # a second sweep (a second scan, another worker) finds it gone and deletes nothing
        assert sweep() == {"support-chat-4o": "gone"}
        deleted = [e for e in store.audit_events() if e.reason == Reason.DEPLOYMENT_DELETED]
        assert len(deleted) == 1 and deleted[0].actor == "sweeper"
        assert (
            deleted[0].data["digest"] == spec.baseline_digest and deleted[0].data["grace_seconds"] == 3600.0
        )
        assert store.verify_audit().ok


def test_the_sweep_keeps_a_retired_deployment_a_live_bundle_shares(
    store: Store, tmp_path: Path, arm: ArmClient, clock: MovableClock
) -> None:
    from modelshift.rollout.sweep import sweep_retired

    # a prompt-only candidate runs on its baseline's deployment: retiring the baseline must not cut it
    spec = _setup(store, tmp_path, deployment="support-chat-4o")
    applier = _applier(store, arm, grace=0.0)
    applier.apply(spec, decide(spec, RolloutStatus(), None, START), START)  # into canary
    applier.promote(APP, spec.candidate_digest, evidence={}, now=clock())
    clock.advance(10)
    result = sweep_retired(store, arm, now=clock(), grace_seconds=0.0, actor="sweeper")
    (item,) = result.items
    assert item.action == "kept" and "2.0.0 (production)" in item.reason
    assert "support-chat-4o" in _deployments(arm)
