"""The Azure ML router backend: canary weights reach the endpoint's traffic by deployment name.

The real azure-ai-ml SDK runs against recorded ARM responses (the FakeArm of tests/platforms/test_aml.py:
endpoint ``support-chat`` with deployments ``blue`` at 100 % and ``green`` at 0 %).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from modelshift.bundle.manifest import Canary
from modelshift.errors import ConfigError
from modelshift.platforms.azure.aml import AmlEndpointRouter
from modelshift.registry import register
from modelshift.rollout import RolloutSpec, RolloutStatus, decide
from modelshift.rollout.apply import (
    AmlRouterBackend,
    Applier,
    DeploymentRemover,
    StoreRouterBackend,
    aml_deployments,
)
from modelshift.store import BundleStatus, Store
from tests.gateway.gateway_helpers import START, MovableClock, write_bundle
from tests.platforms.test_aml import FakeArm, make_client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

APP = "support-chat"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store."""
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=MovableClock()) as opened:
        yield opened


def _spec(store: Store, tmp_path: Path) -> RolloutSpec:
    prod = write_bundle(tmp_path, APP, "1.0.0", "red", "support-chat-4o")
    cand = write_bundle(tmp_path, APP, "2.0.0", "blue", "faq-4o-mini")
    register(store, prod, actor="test", adopt=True)
    register(store, cand, actor="test")
    store.set_status(cand.digest, BundleStatus.EVALUATED, actor="test", reason="test")
    store.record_evaluation(cand.digest, "dataset", True, "successful", {}, actor="test")
    return RolloutSpec.from_canary(
        app=APP,
        baseline_digest=prod.digest,
        candidate_digest=cand.digest,
        canary=Canary(steps=[10, 100], min_requests_per_step=5, step_duration_seconds=10),
    )


def _applier(store: Store, spec: RolloutSpec, router: AmlEndpointRouter) -> Applier:
    names = {spec.baseline_digest: "blue", spec.candidate_digest: "green"}
    backend = AmlRouterBackend(router, names, StoreRouterBackend(store, actor="canary"))
    return Applier(store=store, backend=backend, remover=DeploymentRemover(None), actor="canary")


def test_canary_weights_and_rollback_reach_the_endpoint(store: Store, tmp_path: Path) -> None:
    arm = FakeArm()
    router = AmlEndpointRouter(make_client(arm))
    spec = _spec(store, tmp_path)
    applier = _applier(store, spec, router)
    applier.apply(spec, decide(spec, RolloutStatus(), None, START), START)
    assert router.read(APP).weights == {"blue": 90, "green": 10}
    assert store.get_router(APP).weights == {spec.baseline_digest: 90, spec.candidate_digest: 10}
    puts = len(arm.puts())
    # the same weights again: the endpoint is not written a second time
    applier.apply(spec, decide(spec, RolloutStatus(), None, START), START)
    assert len(arm.puts()) == puts
    applier.roll_back(APP, spec.candidate_digest, reason="test", evidence={})
    assert router.read(APP).weights == {"blue": 100, "green": 0}
    assert store.get_router(APP).weights == {spec.baseline_digest: 100}


def test_a_digest_without_a_deployment_name_is_refused_before_any_write(store: Store, tmp_path: Path) -> None:
    arm = FakeArm()
    spec = _spec(store, tmp_path)
    backend = AmlRouterBackend(
        AmlEndpointRouter(make_client(arm)),
        {spec.baseline_digest: "blue"},
        StoreRouterBackend(store, actor="x"),
    )
    with pytest.raises(ConfigError, match="no Azure ML deployment is known"):
        backend.follow(APP, {spec.baseline_digest: 90, spec.candidate_digest: 10})
    assert arm.puts() == []


def test_deployment_names_come_from_azure_ml_manifests(store: Store, tmp_path: Path) -> None:
    spec = _spec(store, tmp_path)
    bundles = store.list_bundles(APP)
    assert aml_deployments(bundles) == {}  # azure-openai bundles have no endpoint deployment
    aml = replace(bundles[0], manifest={"model": {"platform": "azure-ml", "deployment": "blue"}})
    assert aml_deployments([aml, bundles[1]]) == {spec.baseline_digest: "blue"}
