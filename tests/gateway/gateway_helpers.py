"""Helpers of the gateway tests: an emulator scenario with roomy limits, test bundles, router set-up."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from modelshift.bundle import Bundle, load_bundle
from modelshift.registry import register
from modelshift.store import BundleStatus, RouterState, Store

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "bundles" / "support-chat"
DEFAULT_SCENARIO = REPO / "modelshift" / "emulator" / "scenarios" / "default.yaml"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

#: deployment -> capacity units in the test scenario (hr-35t: 1 request per 10 s window, to get a 429)
CAPACITY = {"support-chat-4o": 5000, "faq-4o-mini": 5000, "hr-35t": 1}

#: where each test deployment lives: (resource group, account, model name, model version)
DEPLOYMENTS = {
    "support-chat-4o": ("rg-support", "contoso-aoai-eus", "gpt-4o", "2024-05-13"),
    "faq-4o-mini": ("rg-support", "contoso-aoai-eus", "gpt-4o-mini", "2024-07-18"),
    "hr-35t": ("rg-hr", "northwind-aoai-weu", "gpt-35-turbo", "0125"),
    "legacy-35-0613": ("rg-legacy", "tailspin-ai-eus2", "gpt-35-turbo", "0613"),
    # an account ARM does not know: the gateway cannot resolve the bundle's endpoint
    "ghost": ("rg-support", "no-such-account", "gpt-4o", "2024-11-20"),
}

QUESTION = "What colour is the gateway flag?"


class MovableClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds``."""
        self.now += timedelta(seconds=seconds)
        return self.now


def scenario() -> dict[str, Any]:
    """The default emulator scenario with roomy limits on the test deployments and no latency."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    data["latency_scale"] = 0.0
    for sub in data["subscriptions"]:
        for group in sub["resource_groups"]:
            for account in group["accounts"]:
                for dep in account.get("deployments", []):
                    if dep["name"] in CAPACITY:
                        dep["sku"]["capacity"] = CAPACITY[dep["name"]]
    return data


def write_bundle(
    root: Path, app: str, version: str, colour: str, deployment: str, *, retrieval: bool = False
) -> Bundle:
    """A support-chat copy as ``app@version`` on ``deployment``, whose prompt says the flag is ``colour``.

    No retrieval: the fact lives in the bundle's own user template, so the answer shows which prompt went
    out."""
    shared = root / "shared"
    if not shared.exists():
        shutil.copytree(SUPPORT / "shared", shared)
    target = root / f"{app}-{version}"
    shutil.copytree(SUPPORT / "1.0.0", target)
    manifest = yaml.safe_load((target / "bundle.yaml").read_text())
    group, account, name, model_version = DEPLOYMENTS[deployment]
    manifest["app"] = app
    manifest["version"] = version
    if not retrieval:
        manifest["retrieval"] = None
    manifest["model"].update(
        {
            "resource_group": group,
            "account": account,
            "deployment": deployment,
            "name": name,
            "version": model_version,
        }
    )
    manifest["prompts"].pop("overrides", None)
    (target / "bundle.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (target / "prompts" / "user.md").write_text(
        f"Documentation excerpts:\n\n[flag.md]\nThe gateway flag is {colour}.\n\n{{context}}\n\n"
        "Question: {question}\n"
    )
    return load_bundle(target)


def adopt(store: Store, bundle: Bundle) -> str:
    """Register ``bundle`` as its app's production bundle (router 100 % on it); its digest."""
    register(store, bundle, actor="test", adopt=True)
    return bundle.digest


def start_canary(
    store: Store, bundle: Bundle, weight: int, *, lease_expires_at: datetime | None = None
) -> RouterState:
    """Register, evaluate (passing) and canary ``bundle`` at ``weight`` % next to production."""
    register(store, bundle, actor="test")
    store.set_status(bundle.digest, BundleStatus.EVALUATED, actor="test", reason="test")
    store.record_evaluation(bundle.digest, "dataset", True, "successful", {}, actor="test")
    store.set_status(bundle.digest, BundleStatus.CANARY, actor="test", reason="test")
    state = store.get_router(bundle.app)
    production = next(d for d in state.weights if d != bundle.digest)
    weights = {production: 100 - weight, bundle.digest: weight}
    return store.set_router(
        bundle.app,
        weights,
        expected_revision=state.revision,
        actor="test",
        reason="canary step",
        lease_expires_at=lease_expires_at,
    )
