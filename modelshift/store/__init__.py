"""The state store: registered bundles, their status, router weights, evaluation records and the audit chain.

Open it with :meth:`Store.open` (SQLite by default, PostgreSQL via ``MODELSHIFT_DATABASE_URL``); the schema
is upgraded to the newest migration on open.
"""

from __future__ import annotations

from modelshift.store.records import EvaluationRecord, RegisteredBundle, RouterState
from modelshift.store.router import check_router_invariants, router_violations
from modelshift.store.status import TRANSITIONS, BundleStatus, check_transition
from modelshift.store.store import Store

__all__ = [
    "TRANSITIONS",
    "BundleStatus",
    "EvaluationRecord",
    "RegisteredBundle",
    "RouterState",
    "Store",
    "check_router_invariants",
    "check_transition",
    "router_violations",
]
