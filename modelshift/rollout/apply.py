"""Carrying out the controller's decisions: router writes with a lease, promote, roll back, audit events.

The controller (:func:`modelshift.rollout.decide`) is pure; this module is its one I/O side. Every action
is idempotent, so a task retried after a crash (or a decision made twice on the same inputs) cannot
double-act: weights already in force are not written again, ``Store.promote`` / ``Store.roll_back`` are
themselves idempotent, and deleting a deployment that is gone is not an error.

Two router backends: the store-backed router the gateway reads (compare-and-set with the lease) and an
Azure ML endpoint router (a :class:`~modelshift.platforms.base.TrafficRouter`) for azure-ml bundles, which
follows the store's weights with digests mapped to deployment names. The store stays the record of which
bundle is canary, production or rolled back in both cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from modelshift.audit import Reason, format_time
from modelshift.errors import ConfigError, StateError
from modelshift.platforms.base import AccountRef, Deployments, TrafficRouter
from modelshift.rollout.actions import Promote, RenewLease, RequestApproval, RollBack, SetWeights, Wait
from modelshift.rollout.controller import complete
from modelshift.rollout.phases import RolloutPhase
from modelshift.rollout.spec import Decision, RolloutSpec, RolloutStatus
from modelshift.store import BundleStatus, RegisteredBundle, RouterState, Store


class RouterBackend(Protocol):
    """Where canary weights take effect: the store-backed gateway router or a platform's endpoint router."""

    def set_weights(
        self, app: str, weights: Mapping[str, int], *, lease_until: datetime, now: datetime
    ) -> None:
        """Put ``weights`` (digest -> percent) in force with a lease; a no-op when they already are."""
        ...

    def renew_lease(self, app: str, until: datetime, *, now: datetime) -> None:
        """Extend the lease of the weights in force to ``until``."""
        ...

    def follow(self, app: str, weights: Mapping[str, int]) -> None:
        """The store has just promoted or rolled back to ``weights``; an external router follows it."""
        ...


class StoreRouterBackend:
    """The gateway's router in the store: compare-and-set writes that carry the lease (dead-man's switch)."""

    def __init__(self, store: Store, *, actor: str, migration_id: str | None = None) -> None:
        self.store = store
        self.actor = actor
        self.migration_id = migration_id

    def set_weights(
        self, app: str, weights: Mapping[str, int], *, lease_until: datetime, now: datetime
    ) -> None:
        """CAS the weights in; when they are already in force only the lease is renewed."""
        state = self.store.get_router(app)
        wanted = _nonzero(weights)
        if state.weights == wanted:
            self._renew(state, lease_until, now)
            return
        self._write(state, wanted, lease_until, why="canary step")

    def renew_lease(self, app: str, until: datetime, *, now: datetime) -> None:
        """Renew the lease of the weights in force (only once half of the extension has run down)."""
        self._renew(self.store.get_router(app), until, now)

    def follow(self, app: str, weights: Mapping[str, int]) -> None:
        """Nothing to do: ``Store.promote`` / ``Store.roll_back`` wrote this router themselves."""

    def _renew(self, state: RouterState, until: datetime, now: datetime) -> None:
        lease = state.lease_expires_at
        # Each write is an audited router.updated event: skip renewals while most of the lease is left.
        if lease is not None and lease - now >= (until - now) / 2:
            return
        if not state.weights:
            raise StateError(
                f"router of app {state.app!r} has no weights to renew the lease of; "
                "start the canary again with the canary-rollout flow",
                app=state.app,
            )
        self._write(state, dict(state.weights), until, why="canary lease renewed")

    def _write(self, state: RouterState, weights: dict[str, int], lease: datetime, *, why: str) -> None:
        self.store.set_router(
            state.app,
            weights,
            expected_revision=state.revision,
            actor=self.actor,
            reason=why,
            migration_id=self.migration_id,
            lease_expires_at=lease,
        )


class AmlRouterBackend:
    """An Azure ML managed online endpoint's traffic: digests mapped to deployment names.

    Azure ML has no lease, so the store router is written too (its lease records the dead-man's switch
    and the gateway falls back on it); renewing is the store's job only.
    """

    def __init__(
        self, router: TrafficRouter, deployment_of: Mapping[str, str], store_backend: StoreRouterBackend
    ):
        self.router = router
        self.deployment_of = dict(deployment_of)
        self.store_backend = store_backend

    def _names(self, weights: Mapping[str, int]) -> dict[str, int]:
        missing = sorted(d for d in weights if d not in self.deployment_of)
        if missing:
            raise ConfigError(
                f"no Azure ML deployment is known for bundle digest(s) {', '.join(missing)}; "
                "register the bundles with model.platform azure-ml and a model.deployment",
                digests=missing,
            )
        return {self.deployment_of[d]: w for d, w in weights.items()}

    def set_weights(
        self, app: str, weights: Mapping[str, int], *, lease_until: datetime, now: datetime
    ) -> None:
        """Write the store router (CAS, lease), then the endpoint's traffic unless it already matches."""
        self.store_backend.set_weights(app, weights, lease_until=lease_until, now=now)
        self.follow(app, weights)

    def renew_lease(self, app: str, until: datetime, *, now: datetime) -> None:
        """Renew the store router's lease (the endpoint has none)."""
        self.store_backend.renew_lease(app, until, now=now)

    def follow(self, app: str, weights: Mapping[str, int]) -> None:
        """Set the endpoint's traffic to ``weights`` unless it is already in force."""
        names = self._names(weights)
        current = {k.lower(): v for k, v in self.router.read(app).weights.items() if v > 0}
        if current != {k.lower(): v for k, v in names.items() if v > 0}:
            self.router.set(app, names)


def aml_deployments(bundles: list[RegisteredBundle]) -> dict[str, str]:
    """digest -> Azure ML deployment name for the azure-ml bundles among ``bundles``."""
    out: dict[str, str] = {}
    for bundle in bundles:
        model = bundle.manifest.get("model", {})
        if model.get("platform") == "azure-ml" and model.get("deployment"):
            out[bundle.digest] = str(model["deployment"])
    return out


#: bundle statuses that serve or may still serve: their deployment is never deleted
LIVE_STATUSES = frozenset(
    {BundleStatus.CANDIDATE, BundleStatus.EVALUATED, BundleStatus.CANARY, BundleStatus.PRODUCTION}
)


class DeploymentRemover:
    """Deletes the Azure OpenAI deployment a bundle ran on, unless another live bundle still uses it."""

    def __init__(self, deployments: Deployments | None) -> None:
        self.deployments = deployments

    def remove(self, store: Store, bundle: RegisteredBundle) -> str | None:
        """Delete ``bundle``'s deployment; the deployment's name, or None when it was kept (and why not)."""
        target = deployment_ref(bundle)
        if target is None or self.deployments is None or sharing_bundles(store, bundle):
            return None
        ref, name = target
        self.deployments.delete(ref, name)
        return name


def sharing_bundles(store: Store, bundle: RegisteredBundle) -> list[RegisteredBundle]:
    """Other live bundles of the app that run on ``bundle``'s deployment (so it must not be deleted).

    A prompt-only candidate shares its baseline's deployment (and a newer candidate may reuse a rolled-back
    one's): deleting it would cut a bundle that serves or may still serve.
    """
    target = deployment_ref(bundle)
    if target is None:
        return []
    return [
        other
        for other in store.list_bundles(bundle.app)
        if other.digest != bundle.digest and other.status in LIVE_STATUSES and deployment_ref(other) == target
    ]


def deployment_ref(bundle: RegisteredBundle) -> tuple[AccountRef, str] | None:
    model: dict[str, Any] = bundle.manifest.get("model", {})
    if model.get("platform") != "azure-openai":
        return None
    ref = AccountRef(
        subscription_id=str(model["subscription"]),
        resource_group=str(model["resource_group"]),
        name=str(model["account"]),
    )
    return ref, str(model["deployment"])


def _nonzero(weights: Mapping[str, int]) -> dict[str, int]:
    return {d: int(w) for d, w in sorted(weights.items()) if w > 0}


@dataclass(frozen=True)
class Outcome:
    """What carrying out a decision left to the caller: wait, ask a person, or the rollout is over."""

    status: RolloutStatus
    wait_until: datetime | None = None
    approval: RequestApproval | None = None
    #: the digest of a deployment whose deletion is due at ``delete_after`` (promotion with a grace period)
    retire_digest: str | None = None
    delete_after: datetime | None = None
    removed_deployments: tuple[str, ...] = ()


@dataclass
class Applier:
    """Carries out decisions of one rollout: the store, a router backend, the deployment remover, who acts."""

    store: Store
    backend: RouterBackend
    remover: DeploymentRemover
    actor: str
    migration_id: str | None = None
    #: seconds after a promotion before the baseline's deployment is deleted (0: at once)
    grace_seconds: float = 86400.0

    def apply(self, spec: RolloutSpec, decision: Decision, now: datetime) -> Outcome:
        """Carry out every action of ``decision`` in order, then append its audit events.

        The events come last: a failed action raises before any is written, and deciding again gives the
        same events once more, so none is recorded twice.
        """
        status = decision.status
        wait: datetime | None = None
        approval: RequestApproval | None = None
        removed: list[str] = []
        retire: str | None = None
        after: datetime | None = None
        for action in decision.actions:
            match action:
                case SetWeights(weights=weights, lease_until=lease):
                    self._enter_canary(spec)
                    self.backend.set_weights(spec.app, weights, lease_until=lease, now=now)
                case RenewLease(until=until) if status.weights:
                    # Put the controller's weights back if the lease lapsed meanwhile (the gateway then
                    # reverted to production); else this only renews the lease.
                    self.backend.set_weights(spec.app, status.weights, lease_until=until, now=now)
                case RenewLease(until=until):
                    self.backend.renew_lease(spec.app, until, now=now)
                case RequestApproval():
                    approval = action
                case Wait(until=until):
                    wait = until
                case RollBack(verdict=verdict, reason=reason):
                    evidence = {"verdict": None if verdict is None else str(verdict)}
                    removed += self.roll_back(
                        spec.app, spec.candidate_digest, reason=reason, evidence=evidence
                    )
                    if status.phase is RolloutPhase.ROLLING_BACK:
                        status = complete(spec, status)
                case Promote(evidence=evidence):
                    retire, after, gone = self.promote(
                        spec.app, spec.candidate_digest, evidence=evidence, now=now
                    )
                    removed += gone
                    status = complete(spec, status)
        for event in decision.events:
            self.store.append_audit(
                event.reason, event.subject, event.data, actor=self.actor, migration_id=self.migration_id
            )
        return Outcome(
            status=status,
            wait_until=wait,
            approval=approval,
            retire_digest=retire,
            delete_after=after,
            removed_deployments=tuple(removed),
        )

    def _enter_canary(self, spec: RolloutSpec) -> None:
        """evaluated -> canary before the candidate's first traffic (the router refuses anything else)."""
        bundle = self.store.get_bundle_by_digest(spec.candidate_digest)
        if bundle.status is BundleStatus.EVALUATED:
            self.store.set_status(
                bundle.digest,
                BundleStatus.CANARY,
                actor=self.actor,
                reason="canary rollout started",
                migration_id=self.migration_id,
            )

    def roll_back(self, app: str, candidate: str, *, reason: str, evidence: Mapping[str, Any]) -> list[str]:
        """ONE router update to 100 % baseline + candidate -> rolled_back, then its deployment removed.

        A candidate still ``evaluated`` (a person said no at an approval asked before any traffic) enters
        the rollout first, so it ends ``rolled_back`` like every other rolled-back canary.
        """
        if self.store.get_bundle_by_digest(candidate).status is BundleStatus.EVALUATED:
            self.store.set_status(
                candidate,
                BundleStatus.CANARY,
                actor=self.actor,
                reason="canary rollout started (rolled back before its first traffic)",
                migration_id=self.migration_id,
            )
        state = self.store.roll_back(
            candidate, actor=self.actor, reason=reason, migration_id=self.migration_id, evidence=evidence
        )
        self.backend.follow(app, state.weights)
        gone = self.remover.remove(self.store, self.store.get_bundle_by_digest(candidate))
        return [] if gone is None else [gone]

    def promote(
        self, app: str, candidate: str, *, evidence: Mapping[str, Any], now: datetime
    ) -> tuple[str | None, datetime | None, list[str]]:
        """candidate -> production at 100 %, baseline -> retired; its deployment deleted now or later.

        Returns the retired baseline's digest with the time its deployment is due for deletion (None and
        None when it was deleted at once or there was no baseline), and the deployments deleted.
        """
        before = self.store.get_bundle_by_digest(candidate)
        baseline = None
        if before.status is not BundleStatus.PRODUCTION:
            baseline = next(iter(self.store.list_bundles(app, BundleStatus.PRODUCTION)), None)
        state = self.store.promote(
            candidate,
            actor=self.actor,
            reason="canary promoted",
            migration_id=self.migration_id,
            evidence=dict(evidence),
        )
        self.backend.follow(app, state.weights)
        if baseline is None:
            return None, None, []
        if self.grace_seconds > 0:
            return baseline.digest, now + timedelta(seconds=self.grace_seconds), []
        return None, None, self.retire_deployment(baseline.digest)

    def retire_deployment(self, digest: str) -> list[str]:
        """Delete a retired bundle's deployment (after its grace period); refused while it still serves."""
        bundle = self.store.get_bundle_by_digest(digest)
        if bundle.status in (BundleStatus.PRODUCTION, BundleStatus.CANARY):
            raise StateError(
                f"bundle {bundle.app}@{bundle.version} ({digest}) is {bundle.status}; only a retired or "
                "rolled-back bundle's deployment is deleted",
                digest=digest,
            )
        gone = self.remover.remove(self.store, bundle)
        return [] if gone is None else [gone]


def find_canary(store: Store, app: str) -> tuple[RegisteredBundle, RegisteredBundle | None]:
    """The app's bundle in canary and its production bundle; NotFoundError-like StateError when none."""
    canaries = store.list_bundles(app, BundleStatus.CANARY)
    if not canaries:
        production = next(iter(store.list_bundles(app, BundleStatus.PRODUCTION)), None)
        serving = "none" if production is None else f"{production.app}@{production.version}"
        raise StateError(
            f"app {app!r} has no bundle in canary (production: {serving}); nothing to promote or roll back - "
            "see `modelshift bundle list`",
            app=app,
        )
    production = next(iter(store.list_bundles(app, BundleStatus.PRODUCTION)), None)
    return canaries[-1], production


def manual_roll_back(
    applier: Applier, app: str, *, reason: str, now: datetime
) -> tuple[RegisteredBundle, list[str]]:
    """A person's ``modelshift rollback APP``: the canary back to 100 % baseline, audited with the actor."""
    candidate, _ = find_canary(applier.store, app)
    why = f"rolled back by {applier.actor}: {reason}"
    removed = applier.roll_back(
        app, candidate.digest, reason=why, evidence={"manual": True, "actor": applier.actor}
    )
    applier.store.append_audit(
        Reason.CANARY_ROLLED_BACK,
        f"rollout {app} -> {candidate.digest}",
        {"app": app, "verdict": None, "reason": why, "actor": applier.actor, "at": format_time(now)},
        actor=applier.actor,
        migration_id=applier.migration_id,
    )
    return candidate, removed


def manual_promote(
    applier: Applier, app: str, *, reason: str, now: datetime
) -> tuple[RegisteredBundle, Outcome]:
    """A person's ``modelshift promote APP``: the canary to production at 100 % now, audited."""
    candidate, _ = find_canary(applier.store, app)
    why = f"promoted by {applier.actor}: {reason}"
    evidence = {"override": {"actor": applier.actor, "reason": reason}}
    retire, after, removed = applier.promote(app, candidate.digest, evidence=evidence, now=now)
    applier.store.append_audit(
        Reason.CANARY_PROMOTED,
        f"rollout {app} -> {candidate.digest}",
        {"app": app, "reason": why, "actor": applier.actor, "at": format_time(now), "evidence": evidence},
        actor=applier.actor,
        migration_id=applier.migration_id,
    )
    outcome = Outcome(
        status=RolloutStatus(), retire_digest=retire, delete_after=after, removed_deployments=tuple(removed)
    )
    return candidate, outcome
