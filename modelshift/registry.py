"""Where bundles meet the state store: register a loaded bundle (and optionally adopt it) in one call."""

from __future__ import annotations

from dataclasses import dataclass

from modelshift.bundle import Bundle
from modelshift.errors import NotFoundError
from modelshift.store import RegisteredBundle, Store


@dataclass(frozen=True)
class Registration:
    """What :func:`register` did: the stored bundle, and whether it was new."""

    bundle: RegisteredBundle
    created: bool


def register(
    store: Store,
    bundle: Bundle,
    *,
    actor: str,
    adopt: bool = False,
    migration_id: str | None = None,
) -> Registration:
    """Register ``bundle`` with its full content (a no-op when already registered); with ``adopt``, make it
    its app's production bundle (onboarding an app whose bundle already serves)."""
    try:
        store.get_bundle_by_digest(bundle.digest)
        created = False
    except NotFoundError:
        created = True
    content = bundle.content()
    registered = store.register_bundle(
        bundle.app,
        bundle.version,
        bundle.digest,
        content.manifest,
        content.files,
        content.blobs,
        actor=actor,
        migration_id=migration_id,
    )
    if adopt and str(registered.status) != "production":
        store.adopt_production(bundle.digest, actor=actor, migration_id=migration_id)
        registered = store.get_bundle_by_digest(bundle.digest)
    return Registration(registered, created)
