"""The canary-rollout flow against a real gateway on a loopback port and the emulator, driven by traffic.

A good candidate (support-chat on gpt-4o 2024-11-20) is promoted; a candidate the scenario makes worse
live (gpt-4o 2024-08-06 with injected 500s) is rolled back automatically with verdict failed; a flow that
fails (approval timeout) rolls back through its failure hook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.exceptions import FlowPauseTimeout

from flows.canary import canary_rollout
from modelshift.audit import Reason
from modelshift.bundle import Bundle, load_bundle
from modelshift.clock import utcnow
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.gateway.server import open_gateway, running_gateway
from modelshift.gateway.traffic import Traffic as LiveTraffic
from modelshift.platforms import azure
from modelshift.platforms.base import AccountRef
from modelshift.registry import register
from modelshift.rollout import AnalysisPolicy, RolloutPhase
from modelshift.settings import Settings, get_settings
from modelshift.store import BundleStatus, Store
from tests.gateway.gateway_helpers import DEPLOYMENTS, QUESTION, scenario, write_bundle

pytestmark = pytest.mark.slow

APP = "support-chat"
ACCOUNT = "contoso-aoai-eus"
GOOD, WORSE = "chat-4o-1120", "chat-4o-0806"
DEPLOYMENTS[GOOD] = ("rg-support", ACCOUNT, "gpt-4o", "2024-11-20")
DEPLOYMENTS[WORSE] = ("rg-support", ACCOUNT, "gpt-4o", "2024-08-06")
#: a short canary: 25 % with one analysis, then 100 %
CANARY = {
    "steps": [25, 100],
    "min_requests_per_step": 20,
    "step_duration_seconds": 6,
    "max_step_extensions": 2,
    "approval_required": False,
    "on_inconclusive": "rollback",
}
#: latency and tokens of two emulated model versions differ by design; the error rate decides here
ANALYSIS = AnalysisPolicy(min_requests=20, latency_tolerance=1.0, tokens_tolerance=1.0)


def _scenario() -> dict[str, Any]:
    data = scenario()
    for sub in data["subscriptions"]:
        for group in sub["resource_groups"]:
            for account in group["accounts"]:
                if account["name"] == ACCOUNT:
                    for name in (GOOD, WORSE):
                        version = DEPLOYMENTS[name][3]
                        account["deployments"].append(
                            {
                                "name": name,
                                "model": {"format": "OpenAI", "name": "gpt-4o", "version": version},
                                "sku": {"name": "GlobalStandard", "capacity": 5000},
                            }
                        )
    return data


@dataclass
class Canary:
    """A running gateway over this test's store, the emulator and the two bundles."""

    url: str
    emulator: EmulatorHandle
    settings: Settings
    baseline: str
    candidate: str

    def store(self) -> Store:
        """The test's store (close it when done)."""
        return Store.open(self.settings.resolved_database_url)

    def deployments(self) -> set[str]:
        """Deployment names of the contoso account, read through ARM."""
        with httpx.Client(timeout=30) as client:
            arm = azure.arm_client(self.settings, client=client)
            ref = AccountRef(
                subscription_id=self.emulator.subscription_id, resource_group="rg-support", name=ACCOUNT
            )
            return {d.name for d in arm.list(ref)}


def _candidate(tmp_path: Path, version: str, deployment: str, **canary: Any) -> Bundle:
    bundle = write_bundle(tmp_path, APP, version, "red", deployment)
    manifest = yaml.safe_load(bundle.yaml_path.read_text())
    manifest["canary"] = {**CANARY, **canary}
    bundle.yaml_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return load_bundle(bundle.yaml_path.parent)


def _setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deployment: str, **canary: Any
) -> Iterator[Canary]:
    with running_emulator(_scenario(), latency_scale=0.0) as emu:
        home = tmp_path / "home"
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{tmp_path / 'state.db'}",
            arm_url=emu.arm_url,
            arm_token=emu.bearer_token,
            api_key=emu.api_key,
        )
        for key, value in {
            "MODELSHIFT_HOME": str(home),
            "MODELSHIFT_DATABASE_URL": settings.resolved_database_url,
            "MODELSHIFT_ARM_URL": emu.arm_url,
            "MODELSHIFT_ARM_TOKEN": emu.bearer_token,
            "MODELSHIFT_API_KEY": emu.api_key,
            "MODELSHIFT_ACTOR": "canary-test",
        }.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        baseline = write_bundle(tmp_path, APP, "1.0.0", "red", "support-chat-4o")
        candidate = _candidate(tmp_path, "2.0.0", deployment, **canary)
        with Store.open(settings.resolved_database_url) as store:
            register(store, baseline, actor="test", adopt=True)
            register(store, candidate, actor="test")
            store.set_status(candidate.digest, BundleStatus.EVALUATED, actor="test", reason="evaluated")
            store.record_evaluation(
                candidate.digest,
                "golden",
                True,
                "successful",
                {},
                baseline_digest=baseline.digest,
                actor="test",
            )
        with (
            Store.open(settings.resolved_database_url) as gateway_store,
            open_gateway(settings, gateway_store, clock=utcnow, ttl_s=0.05, flush_ms=50, max_rows=50) as gw,
            running_gateway(gw) as url,
        ):
            yield Canary(url, emu, settings, baseline.digest, candidate.digest)
    get_settings.cache_clear()


@pytest.fixture
def good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    """support-chat on gpt-4o 2024-05-13 with a candidate on gpt-4o 2024-11-20."""
    yield from _setup(tmp_path, monkeypatch, GOOD)


@pytest.fixture
def worse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    """The same with a candidate on gpt-4o 2024-08-06 whose deployment answers 500 to most requests."""
    for canary in _setup(tmp_path, monkeypatch, WORSE):
        canary.emulator.inject_faults(ACCOUNT, WORSE, rate_500=0.7)
        yield canary


@pytest.fixture
def approval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    """A good candidate whose canary policy asks a person before 100 %."""
    yield from _setup(tmp_path, monkeypatch, GOOD, approval_required=True)


def Traffic(url: str) -> LiveTraffic:
    """Live requests for the test's app, each from a fresh simulated user, until stopped (600 at most)."""
    return LiveTraffic(url, APP, [QUESTION], limit=600, users=10**9)


def _run(canary: Canary, **kwargs: Any) -> Any:
    return canary_rollout(
        APP,
        canary.baseline,
        canary.candidate,
        migration_id=None,
        poll_seconds=0.3,
        grace_seconds=0.0,
        lease_seconds=30,
        analysis=ANALYSIS,
        **kwargs,
    )


def _artifacts(key: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def test_good_candidate_is_promoted_and_the_baseline_deployment_deleted(good: Canary) -> None:
    with Traffic(good.url) as traffic:
        outcome = _run(good)
    assert outcome.phase is RolloutPhase.PROMOTED, outcome
    assert traffic.by_digest.get(good.candidate, 0) > 0
    with good.store() as store:
        assert store.get_router(APP).weights == {good.candidate: 100}
        assert store.get_bundle_by_digest(good.candidate).status is BundleStatus.PRODUCTION
        assert store.get_bundle_by_digest(good.baseline).status is BundleStatus.RETIRED
        reasons = [e.reason for e in store.audit_events()]
        assert store.verify_audit().ok
    assert "support-chat-4o" not in good.deployments()
    assert GOOD in good.deployments()
    assert outcome.removed_deployments == ["support-chat-4o"]
    assert Reason.CANARY_ANALYSIS in reasons
    assert reasons.count(Reason.CANARY_PROMOTED) == 1
    artifacts = _artifacts(f"canary-{APP}")
    pages = [str(a.data or "") for a in artifacts]
    assert any(good.candidate in page and "**promoted**" in page for page in pages), pages
    assert _artifacts(f"canary-progress-{APP}")
    # a re-run finds the candidate promoted and changes nothing
    again = _run(good)
    assert again.phase is RolloutPhase.PROMOTED
    assert again.decisions == 0


def test_worse_candidate_is_rolled_back_with_verdict_failed(worse: Canary) -> None:
    with Traffic(worse.url) as traffic:
        outcome = _run(worse)
    assert outcome.phase is RolloutPhase.ROLLED_BACK, outcome
    assert outcome.verdict == "failed"
    assert "error_rate" in (outcome.reason or "")
    assert traffic.by_digest.get(worse.candidate, 0) > 0
    with worse.store() as store:
        assert store.get_router(APP).weights == {worse.baseline: 100}
        assert store.get_bundle_by_digest(worse.candidate).status is BundleStatus.ROLLED_BACK
        assert store.get_bundle_by_digest(worse.baseline).status is BundleStatus.PRODUCTION
        rolled = [e for e in store.audit_events() if e.reason == Reason.CANARY_ROLLED_BACK]
    assert len(rolled) == 1
    assert rolled[0].data["verdict"] == "failed"
    assert WORSE not in worse.deployments()
    assert "support-chat-4o" in worse.deployments()


def test_a_failed_flow_rolls_back_through_its_hook(approval: Canary) -> None:
    """The approval before 100 % times out (nobody answers): the flow fails and its hook rolls back."""
    with Traffic(approval.url), pytest.raises(FlowPauseTimeout):
        _run(approval, approval_timeout_seconds=2)
    with approval.store() as store:
        assert store.get_router(APP).weights == {approval.baseline: 100}
        assert store.get_bundle_by_digest(approval.candidate).status is BundleStatus.ROLLED_BACK
        events = store.audit_events()
    assert Reason.CANARY_APPROVAL_REQUESTED in [e.reason for e in events]
    hook = [e for e in events if e.reason == Reason.CANARY_ROLLED_BACK]
    assert len(hook) == 1
    assert "Failed" in hook[0].data["reason"]


def _paused_run_id(name: str, deadline_s: float = 40.0) -> Any:
    """The id of the paused flow run called ``name`` (polls the Prefect API)."""
    from prefect.client.orchestration import get_client

    end = time.monotonic() + deadline_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < end:
            for run in client.read_flow_runs(limit=50):
                if run.name == name and run.state is not None and run.state.is_paused():
                    return run.id
            time.sleep(0.2)
    raise AssertionError(f"no paused flow run {name} within {deadline_s}s")


def test_approval_resumes_with_the_typed_input_and_is_audited(approval: Canary) -> None:
    from prefect.flow_runs import resume_flow_run

    errors: list[BaseException] = []

    def approve() -> None:
        try:
            run_id = _paused_run_id(f"canary-{APP}")
            resume_flow_run(
                run_id, run_input={"decision": "approve", "approver": "dana", "reason": "looks good"}
            )
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    approver = threading.Thread(target=approve, daemon=True)
    with Traffic(approval.url):
        approver.start()
        outcome = _run(approval, approval_timeout_seconds=30)
    approver.join(timeout=30)
    assert errors == []
    assert outcome.phase is RolloutPhase.PROMOTED, outcome
    with approval.store() as store:
        approved = [e for e in store.audit_events() if e.reason == Reason.CANARY_APPROVED]
    assert len(approved) == 1
    assert approved[0].data["approver"] == "dana"
    assert approved[0].data["reason"] == "looks good"


def test_a_manual_rollback_mid_canary_stops_the_flow(good: Canary) -> None:
    """``modelshift rollback APP`` while the flow runs: the flow ends rolled back and writes nothing more."""
    from modelshift.rollout.apply import Applier, DeploymentRemover, StoreRouterBackend, manual_roll_back

    done = threading.Event()

    def override() -> None:
        with good.store() as store:
            while not done.is_set():
                if store.get_router(APP).weights.get(good.candidate):
                    applier = Applier(
                        store=store,
                        backend=StoreRouterBackend(store, actor="oncall"),
                        remover=DeploymentRemover(None),
                        actor="oncall",
                    )
                    manual_roll_back(applier, APP, reason="pager", now=utcnow())
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=override, daemon=True)
    thread.start()
    try:
        # no traffic: the analysis waits for requests, so the override lands mid-step
        outcome = _run(good)
    finally:
        done.set()
        thread.join(timeout=10)
    assert outcome.phase is RolloutPhase.ROLLED_BACK
    assert "manual override" in (outcome.reason or "")
    with good.store() as store:
        assert store.get_router(APP).weights == {good.baseline: 100}
        rolled = [e for e in store.audit_events() if e.reason == Reason.CANARY_ROLLED_BACK]
    assert [e.actor for e in rolled] == ["oncall"]


def test_killing_the_flow_process_returns_traffic_to_the_baseline_within_the_lease(good: Canary) -> None:
    """SIGKILL mid-canary: no hook runs; once the 3 s lease lapses the gateway serves only the baseline.

    A re-run then restarts the canary from its first step."""
    import os
    import signal
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    repo = Path(__file__).resolve().parents[2]
    script = (
        "from flows.canary import canary_rollout\n"
        "from modelshift.rollout import AnalysisPolicy\n"
        f"canary_rollout({APP!r}, {good.baseline!r}, {good.candidate!r}, poll_seconds=0.3, lease_seconds=3,"
        " analysis=AnalysisPolicy(min_requests=20, latency_tolerance=1.0, tokens_tolerance=1.0))\n"
    )
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=repo, env=env)
    try:
        with good.store() as store:
            deadline = time.monotonic() + 60
            while not store.get_router(APP).weights.get(good.candidate):
                assert proc.poll() is None, "the flow process ended before the canary started"
                assert time.monotonic() < deadline, "the canary never got traffic"
                time.sleep(0.1)
            lease = store.get_router(APP).lease_expires_at
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert lease is not None
    time.sleep(4.0)  # past any lease the dead flow could have written
    with httpx.Client(base_url=good.url, timeout=30) as client:
        served = {
            client.post(f"/apps/{APP}/chat", json={"question": QUESTION, "session_id": f"after-{i}"}).headers[
                "x-modelshift-digest"
            ]
            for i in range(40)
        }
    assert served == {good.baseline}
    with good.store() as store:
        assert store.get_router(APP).weights == {good.baseline: 100}
        assert Reason.ROUTER_LEASE_EXPIRED in [e.reason for e in store.audit_events()]
        assert store.get_bundle_by_digest(good.candidate).status is BundleStatus.CANARY
    # a re-run restarts the canary from its first step and takes it to the end
    with Traffic(good.url):
        outcome = _run(good)
    assert outcome.phase is RolloutPhase.PROMOTED, outcome
