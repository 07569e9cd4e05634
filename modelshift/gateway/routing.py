"""Pure routing: which bundle digest serves a request, given the app's router state and a sticky key.

A request's bucket (0..99) comes from blake2b of ``app`` and its sticky key, so the same user or session
lands on the same bundle for as long as the weights stay the same, and a step from 5 % to 25 % keeps every
user that was already on the canary there (buckets fill from 0 upwards in a fixed digest order).
Nothing here reads a clock, a store or the network.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelshift.clock import ensure_utc

#: number of buckets; router weights are whole percent
BUCKETS = 100


def key_hash(key: str) -> str:
    """A short, stable, non-reversible id of a user/session key (what the request metrics store)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def sticky_key(user: str | None, session_id: str | None) -> str | None:
    """The key a request sticks by: the user id, else the session id, else None (random routing)."""
    for candidate in (user, session_id):
        if candidate:
            return candidate
    return None


def bucket(app: str, key: str | None) -> int:
    """The request's bucket in ``0..BUCKETS-1``: stable for (app, key); random when there is no key."""
    if key is None:
        return secrets.randbelow(BUCKETS)
    # app is part of the hash so one user is not always on the canary of every app at once
    digest = hashlib.blake2b(f"{app}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def pick(weights: Mapping[str, int], slot: int, *, first: str | None = None) -> str | None:
    """The digest whose share of ``0..99`` contains ``slot``; ``first`` (the canary) takes the low buckets.

    The canary fills from bucket 0 upwards, so raising its weight only moves users production -> canary,
    never back and forth. None when no digest has weight.
    """
    order = sorted(d for d, w in weights.items() if w > 0)
    if first is not None and first in order:
        order.remove(first)
        order.insert(0, first)
    upper = 0
    for digest in order:
        upper += weights[digest]
        if slot < upper:
            return digest
    # weights are validated to sum to 100 on write; if they do not, the last one takes the rest
    return order[-1] if order else None


@dataclass(frozen=True)
class Plan:
    """The weights the gateway actually serves, and whether the lease switch overrode the stored ones."""

    weights: Mapping[str, int]
    canary: str | None
    lease_expired: bool


def serving_plan(
    weights: Mapping[str, int],
    lease_expires_at: datetime | None,
    production: str | None,
    now: datetime,
) -> Plan:
    """What to serve: the stored weights, or 100 % production when a canary's lease has lapsed.

    A lease only matters while some bundle other than production has weight; ``lease_expires_at`` None
    means no lease (a plain production split). A lease that ends exactly ``now`` has lapsed.
    """
    live = {d: w for d, w in weights.items() if w > 0}
    others = sorted(d for d in live if d != production)
    canary = others[0] if len(others) == 1 and production in live else None
    lapsed = lease_expires_at is not None and ensure_utc(lease_expires_at) <= ensure_utc(now)
    if others and lapsed and production is not None:
        return Plan({production: 100}, None, True)
    return Plan(live, canary, False)


def choose(app: str, plan: Plan, key: str | None) -> str | None:
    """The digest that serves one request of ``app`` with sticky ``key`` under ``plan``."""
    return pick(plan.weights, bucket(app, key), first=plan.canary)
