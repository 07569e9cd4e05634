"""The bundle gateway: routes each request to ONE bundle by the app's router weights, sticky per user.

:mod:`~modelshift.gateway.routing` picks the bundle (pure), :mod:`~modelshift.gateway.router_view` caches
the router and runs the lease switch, :func:`observe` reads the recorded requests back per bundle digest
for the rollout analysis.
"""

from __future__ import annotations

from modelshift.gateway.metrics import DigestWindow, RequestRecord, observe
from modelshift.gateway.router_view import NoProductionError, RouterView, expire_lease
from modelshift.gateway.routing import bucket, choose, key_hash, pick, serving_plan, sticky_key

__all__ = [
    "DigestWindow",
    "NoProductionError",
    "RequestRecord",
    "RouterView",
    "bucket",
    "choose",
    "expire_lease",
    "key_hash",
    "observe",
    "pick",
    "serving_plan",
    "sticky_key",
]
