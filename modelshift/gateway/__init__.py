"""The bundle gateway: routes each request to ONE bundle by the app's router weights, sticky per user.

``create_app(Gateway(store, factory, clock=..., workdir=...))`` is the ASGI app; ``modelshift gateway
serve`` runs it. :func:`observe` reads the recorded requests back per bundle digest for the rollout analysis.
"""

from __future__ import annotations

from modelshift.gateway.app import SESSION_HEADER, create_app
from modelshift.gateway.metrics import DigestWindow, RequestRecord, observe, prune
from modelshift.gateway.router_view import NoProductionError, RouterView, expire_lease
from modelshift.gateway.routing import bucket, choose, key_hash, pick, serving_plan, sticky_key
from modelshift.gateway.runtimes import RuntimeCache, RuntimeFactory, default_factory
from modelshift.gateway.server import data_plane_client, open_gateway, running_gateway
from modelshift.gateway.service import Gateway, Served
from modelshift.gateway.transport import StreamTransport

__all__ = [
    "SESSION_HEADER",
    "DigestWindow",
    "Gateway",
    "NoProductionError",
    "RequestRecord",
    "RouterView",
    "RuntimeCache",
    "RuntimeFactory",
    "Served",
    "StreamTransport",
    "bucket",
    "choose",
    "create_app",
    "data_plane_client",
    "default_factory",
    "expire_lease",
    "key_hash",
    "observe",
    "open_gateway",
    "pick",
    "prune",
    "running_gateway",
    "serving_plan",
    "sticky_key",
]
