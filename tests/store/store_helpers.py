"""Helpers shared by the store tests (plain functions; the fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from modelshift.store import BundleStatus, RegisteredBundle, Store


def blob(text: str) -> tuple[str, bytes]:
    """(sha256, bytes) of a text file."""
    data = text.encode()
    return hashlib.sha256(data).hexdigest(), data


@dataclass
class BundleArgs:
    """Plain arguments for Store.register_bundle, as Bundle.content() would give them."""

    app: str
    version: str
    digest: str
    manifest: dict[str, Any]
    files: dict[str, str]
    blobs: dict[str, bytes] = field(default_factory=dict)


def bundle_args(app: str, version: str, prompt: str | None = None) -> BundleArgs:
    """A small bundle whose digest depends on app, version and prompt text."""
    sha, data = blob(prompt if prompt is not None else f"You answer for {app} v{version}.")
    manifest = {"app": app, "version": version, "model": {"name": "gpt-4o", "version": "2024-11-20"}}
    digest = hashlib.sha256(f"{app}|{version}|{sha}".encode()).hexdigest()
    return BundleArgs(app, version, digest, manifest, {"prompts/system.md": sha}, {sha: data})


def register(store: Store, args: BundleArgs, **kwargs: Any) -> RegisteredBundle:
    """Register ``args`` as actor "test"."""
    return store.register_bundle(
        args.app, args.version, args.digest, args.manifest, args.files, args.blobs, actor="test", **kwargs
    )


#: how to reach each status from candidate through legal moves
PATHS: dict[BundleStatus, list[BundleStatus]] = {
    BundleStatus.CANDIDATE: [],
    BundleStatus.EVALUATED: [BundleStatus.EVALUATED],
    BundleStatus.REJECTED: [BundleStatus.REJECTED],
    BundleStatus.CANARY: [BundleStatus.EVALUATED, BundleStatus.CANARY],
    BundleStatus.PRODUCTION: [BundleStatus.EVALUATED, BundleStatus.CANARY, BundleStatus.PRODUCTION],
    BundleStatus.ROLLED_BACK: [BundleStatus.EVALUATED, BundleStatus.CANARY, BundleStatus.ROLLED_BACK],
    BundleStatus.RETIRED: [
        BundleStatus.EVALUATED,
        BundleStatus.CANARY,
        BundleStatus.PRODUCTION,
        BundleStatus.RETIRED,
    ],
}


def bundle_in(store: Store, app: str, status: BundleStatus, version: str = "1") -> RegisteredBundle:
    """Register a bundle of ``app`` and walk it to ``status``."""
    registered = register(store, bundle_args(app, version))
    for step in PATHS[status]:
        registered = store.set_status(registered.digest, step, actor="test", reason=f"to {step}")
    return registered


def append_worker(job: tuple[str, int, int]) -> int:
    """Process entry point (spawn): open the store at ``url`` and append ``count`` events as writer ``n``."""
    from modelshift.audit import Reason

    url, n, count = job
    with Store.open(url) as store:
        for i in range(count):
            store.append_audit(Reason.CANARY_STEP, f"process {n}", {"i": i}, actor=f"process-{n}")
    return count
