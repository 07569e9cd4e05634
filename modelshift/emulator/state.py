"""The emulator's mutable world: accounts, deployments, faults and limiters, built from a scenario.

One ``World`` per running server. Every mutation holds ``world.lock`` so the server's worker threads and
the event loop see a consistent estate. Lifecycle questions ("is this deployment retired now?") are
answered against the scenario clock.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelshift.emulator.aml_state import Workspace, build_workspace
from modelshift.emulator.finetune_state import FineTuneStore
from modelshift.emulator.ratelimit import SlidingWindowLimiter
from modelshift.emulator.scenario import (
    AccountSpec,
    BehaviourProfile,
    CatalogModel,
    CatalogSku,
    DeploymentSpec,
    FaultSpec,
    ModelRef,
    Scenario,
)
from modelshift.emulator.simclock import ScenarioClock


@dataclass
class Deployment:
    """A deployment as the emulator holds it."""

    name: str
    model: ModelRef
    sku_name: str
    capacity: int
    version_upgrade_option: str
    state: str
    profile: str | None
    created_at: datetime
    ready_at: datetime
    provision_failed: bool = False
    #: chat requests this deployment has served (what ``degrades_after_requests`` counts)
    chat_requests: int = 0

    def provisioning_state(self, now: datetime) -> str:
        """Creating until the scenario delay passes, then Succeeded (or Failed when a fault says so)."""
        if now < self.ready_at:
            return "Creating"
        return "Failed" if self.provision_failed else "Succeeded"


@dataclass
class Account:
    """A Microsoft.CognitiveServices account and everything under it."""

    subscription: str
    resource_group: str
    name: str
    location: str
    kind: str
    sku: str
    deployments: dict[str, Deployment] = field(default_factory=dict)
    finetune: FineTuneStore = field(default_factory=FineTuneStore)

    @property
    def arm_id(self) -> str:
        """The account's ARM resource id."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


class World:
    """Everything the emulator knows and changes while it runs."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.clock = ScenarioClock(scenario.clock.start, scenario.clock.speed)
        self.lock = threading.RLock()
        self.latency_scale = scenario.latency_scale
        self.page_size = scenario.page_size
        self._build()

    def _build(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.workspaces: dict[str, Workspace] = {}
        self.faults: dict[tuple[str, str], FaultSpec] = {}
        self.limiters: dict[tuple[str, str], SlidingWindowLimiter] = {}
        self._rngs: dict[tuple[str, str], random.Random] = {}
        now = self.clock()
        for sub in self.scenario.subscriptions:
            for group in sub.resource_groups:
                for spec in group.accounts:
                    self.accounts[spec.name] = self._account(sub.id, group.name, spec, now)
                for ws in group.workspaces:
                    self.workspaces[ws.name.lower()] = build_workspace(ws, sub.id, group.name, now)

    def _account(self, sub: str, group: str, spec: AccountSpec, now: datetime) -> Account:
        account = Account(sub, group, spec.name, spec.location, spec.kind, spec.sku)
        for ft in spec.fine_tuned_models:
            account.finetune.add_existing_model(ft.id, ft.base_model, ft.created_at)
        for dep in spec.deployments:
            account.deployments[dep.name] = self._deployment(dep, now)
            if dep.faults is not None:
                self.faults[(spec.name, dep.name)] = dep.faults
        return account

    @staticmethod
    def _deployment(spec: DeploymentSpec, now: datetime) -> Deployment:
        return Deployment(
            name=spec.name,
            model=spec.model,
            sku_name=spec.sku.name,
            capacity=spec.sku.capacity,
            version_upgrade_option=spec.version_upgrade_option,
            state=spec.state,
            profile=spec.profile,
            created_at=now,
            ready_at=now,
        )

    def reset(self) -> None:
        """Back to the scenario as loaded: clock, deployments, files, jobs, faults and limiters."""
        with self.lock:
            self.clock.reset()
            self.latency_scale = self.scenario.latency_scale
            self.page_size = self.scenario.page_size
            self._build()

    # --- lookups -------------------------------------------------------------------------------

    def subscription_ids(self) -> list[str]:
        """Subscription ids of the scenario."""
        return [s.id for s in self.scenario.subscriptions]

    def subscription_name(self, sub: str) -> str | None:
        """Display name of a subscription, or None when the scenario has no such subscription."""
        for s in self.scenario.subscriptions:
            if s.id == sub:
                return s.display_name
        return None

    def accounts_in(self, sub: str, group: str | None = None) -> list[Account]:
        """Accounts of a subscription, optionally of one resource group (case-insensitive as ARM is)."""
        return [
            a
            for a in self.accounts.values()
            if a.subscription == sub and (group is None or a.resource_group.lower() == group.lower())
        ]

    def account(self, sub: str, group: str, name: str) -> Account | None:
        """One account by its ARM coordinates."""
        for a in self.accounts_in(sub, group):
            if a.name.lower() == name.lower():
                return a
        return None

    def catalog_model(
        self, name: str, version: str | None, location: str | None = None
    ) -> CatalogModel | None:
        """The catalog entry for name@version (or the default version when version is None)."""
        for m in self.scenario.catalog:
            if m.name != name or (location is not None and not m.offered_in(location)):
                continue
            if version is None and m.is_default_version:
                return m
            if m.version == version:
                return m
        return None

    def catalog_for_base_id(self, base_id: str) -> CatalogModel | None:
        """The catalog model whose id is ``base_id`` ('<name>-<version>' or a fine-tuned model's base)."""
        for m in self.scenario.catalog:
            if f"{m.name}-{m.version}" == base_id or m.name == base_id:
                return m
        return None

    def base_catalog_model(self, account: Account, model: ModelRef) -> CatalogModel | None:
        """The catalog model behind a deployment's model, following a fine-tuned model to its base."""
        ft = account.finetune.models.get(model.name)
        if ft is not None:
            return self.catalog_for_base_id(ft.base_model)
        return self.catalog_model(model.name, model.version)

    def profile_for(self, account: Account, dep: Deployment) -> BehaviourProfile:
        """The behaviour profile of a deployment: its own, its model version's, its base's, or the default."""
        if dep.profile is not None:
            return self.scenario.profiles[dep.profile]
        base = self.base_catalog_model(account, dep.model)
        keys = [f"{dep.model.name}@{dep.model.version}"] + ([base.key] if base else [])
        for key in keys:
            if key in self.scenario.profiles:
                profile = self.scenario.profiles[key]
                tuned = profile.fine_tune.quality
                if tuned is not None and dep.model.name in account.finetune.models:
                    # a fine-tuned model answers with its base's fine-tune quality
                    return profile.model_copy(update={"quality": tuned})
                return profile
        return self.scenario.default_profile

    def retirement_of(self, account: Account, dep: Deployment) -> datetime | None:
        """When inference on ``dep`` stops: the model's inference date or its SKU's earlier date."""
        base = self.base_catalog_model(account, dep.model)
        if base is None:
            return None
        dates = [d for d in [base.deprecation.inference] if d is not None]
        sku = self.catalog_sku(base, dep.sku_name)
        if sku is not None and sku.deprecation_date is not None:
            dates.append(sku.deprecation_date)
        return min(dates) if dates else None

    def is_retired(self, account: Account, dep: Deployment) -> bool:
        """True when ``dep``'s model is retired on the scenario clock (inference answers 410)."""
        base = self.base_catalog_model(account, dep.model)
        if base is not None and base.lifecycle_status == "Deprecated":
            return True
        when = self.retirement_of(account, dep)
        return when is not None and self.clock() >= when

    @staticmethod
    def catalog_sku(model: CatalogModel, sku_name: str) -> CatalogSku | None:
        """The catalog SKU entry of ``model`` named ``sku_name`` (case-insensitive)."""
        for sku in model.skus:
            if sku.name.lower() == sku_name.lower():
                return sku
        return None

    # --- quota -----------------------------------------------------------------------------------

    @staticmethod
    def usage_name(model: CatalogModel, sku_name: str, fine_tuned: bool = False) -> str:
        """The quota counter a deployment of ``model`` with ``sku_name`` draws from."""
        sku = World.catalog_sku(model, sku_name)
        if sku is not None and sku.usage_name and not fine_tuned:
            return sku.usage_name
        prefix = "OpenAI" if model.format == "OpenAI" else "AIServices"
        suffix = "-finetune" if fine_tuned else ""
        return f"{prefix}.{sku.name if sku else sku_name}.{model.name}{suffix}"

    def deployment_usage_name(self, account: Account, dep: Deployment) -> str | None:
        """The quota counter of an existing deployment (None when its model is unknown)."""
        base = self.base_catalog_model(account, dep.model)
        if base is None:
            return None
        return self.usage_name(base, dep.sku_name, fine_tuned=dep.model.name in account.finetune.models)

    def usage_limit(self, location: str, name: str) -> int:
        """The quota limit of counter ``name`` in ``location``."""
        for usage in self.scenario.usages.get(location, []):
            if usage.name == name:
                return usage.limit
        return self.scenario.default_usage_limit

    def usage_current(
        self, sub: str, location: str, name: str, exclude: tuple[str, str] | None = None
    ) -> int:
        """Capacity in use on counter ``name`` across the subscription's accounts in ``location``."""
        total = 0
        for account in self.accounts_in(sub):
            if account.location.lower() != location.lower():
                continue
            for dep in account.deployments.values():
                if exclude == (account.name, dep.name):
                    continue
                if self.deployment_usage_name(account, dep) == name:
                    total += dep.capacity
        return total

    # --- per-deployment runtime state -------------------------------------------------------------

    def limiter(self, account: str, dep: Deployment) -> SlidingWindowLimiter:
        """The rate limiter of a deployment (re-created when its capacity changes), its limits scaled by the
        scenario's ``rate_limit_scale``."""
        with self.lock:
            key = (account, dep.name)
            current = self.limiters.get(key)
            capacity = max(1, round(dep.capacity * self.scenario.rate_limit_scale))
            if current is None or current.tokens_per_window != capacity * 1000:
                current = SlidingWindowLimiter(capacity)
                self.limiters[key] = current
            return current

    def rng(self, account: str, deployment: str) -> random.Random:
        """A per-deployment random stream, seeded by name, so fault sequences repeat run to run."""
        with self.lock:
            key = (account, deployment)
            if key not in self._rngs:
                self._rngs[key] = random.Random(f"{account}/{deployment}")
            return self._rngs[key]

    def new_deployment(
        self, account: Account, name: str, model: ModelRef, sku_name: str, capacity: int, upgrade: str
    ) -> Deployment:
        """Create or replace a deployment; it is Creating for the scenario's LRO delay."""
        now = self.clock()
        existing = account.deployments.get(name)
        fault = self.faults.get((account.name, name))
        dep = Deployment(
            name=name,
            model=model,
            sku_name=sku_name,
            capacity=capacity,
            version_upgrade_option=upgrade,
            state=existing.state if existing else "Running",
            profile=None,
            created_at=existing.created_at if existing else now,
            ready_at=now + timedelta(seconds=self.scenario.lro_delay_seconds),
            provision_failed=bool(fault and fault.provision_fail),
        )
        account.deployments[name] = dep
        return dep
