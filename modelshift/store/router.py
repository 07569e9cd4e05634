"""The router invariants, as ONE pure function every router write goes through."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from modelshift.errors import RouterInvariantError
from modelshift.store.status import SERVING, BundleStatus


class BundleLike(Protocol):
    """What the invariants need to know about a bundle (RegisteredBundle satisfies it)."""

    @property
    def app(self) -> str:
        """The app the bundle belongs to."""
        ...

    @property
    def status(self) -> BundleStatus:
        """The bundle's current status."""
        ...


def router_violations(
    weights: Mapping[str, object],
    bundles_by_digest: Mapping[str, BundleLike],
    passing_eval_digests: Collection[str],
    *,
    app: str,
) -> list[str]:
    """Every invariant the proposed ``weights`` for ``app`` break; empty when they are fine."""
    problems: list[str] = []
    total = 0
    serving: dict[BundleStatus, list[str]] = {BundleStatus.PRODUCTION: [], BundleStatus.CANARY: []}
    for digest, weight in sorted(weights.items()):
        # bool is an int subclass; True as "1 %" is a bug, not a weight.
        if not isinstance(weight, int) or isinstance(weight, bool):
            problems.append(f"weight of {digest} is {weight!r}; weights are whole percent (int 0..100)")
            continue
        if not 0 <= weight <= 100:
            problems.append(f"weight of {digest} is {weight}; weights must be between 0 and 100")
        total += weight
        bundle = bundles_by_digest.get(digest)
        if bundle is None:
            problems.append(f"{digest} is not a registered bundle; register it before routing to it")
            continue
        if bundle.app != app:
            problems.append(f"{digest} belongs to app {bundle.app!r}, not {app!r}")
            continue
        if weight <= 0:
            continue
        if bundle.status not in SERVING:
            problems.append(
                f"{digest} is {bundle.status}; only production or canary bundles may receive traffic"
            )
            continue
        serving[bundle.status].append(digest)
        if bundle.status is BundleStatus.CANARY and digest not in passing_eval_digests:
            problems.append(
                f"canary {digest} has no passing evaluation record for its exact digest; "
                "evaluate it before giving it traffic"
            )
    if total != 100:
        problems.append(f"weights sum to {total}; they must sum to 100")
    for status, digests in serving.items():
        if len(digests) > 1:
            problems.append(
                f"{len(digests)} {status} bundles have weight ({', '.join(digests)}); at most one"
            )
    return problems


def check_router_invariants(
    weights: Mapping[str, object],
    bundles_by_digest: Mapping[str, BundleLike],
    passing_eval_digests: Collection[str],
    *,
    app: str,
) -> None:
    """Raise RouterInvariantError listing every violation of the router invariants; return when none."""
    problems = router_violations(weights, bundles_by_digest, passing_eval_digests, app=app)
    if problems:
        raise RouterInvariantError(
            f"router weights for app {app!r} refused, {len(problems)} problem(s):\n"
            + "\n".join(f"  {p}" for p in problems),
            app=app,
            problems=problems,
        )
