"""The baseline bundle as the prepare stage reads it: the registered content, on disk, at its own version.

The state store is the source of truth (DESIGN §1: a worker on another machine works without the checkout).
When ``<bundles_dir>/<app>/<version>/`` holds the same digest it is used as it is, so a candidate can refer
to the checkout's shared files (``../shared/...``) by the same relative paths; when it is missing, the
registered content is materialized there first.
"""

from __future__ import annotations

import re
from pathlib import Path

from modelshift.bundle import Bundle, BundleContent, bundle_from_content, load_bundle
from modelshift.bundle.loader import BUNDLE_FILE
from modelshift.errors import BundleValidationError, ConfigError
from modelshift.store import RegisteredBundle, Store

_NUMERIC = re.compile(r"^(\d+)\.(\d+)(\.\d+)?$")


def version_dir(bundles_dir: Path, app: str, version: str) -> Path:
    """``<bundles_dir>/<app>/<version>``: where one bundle version lives."""
    return bundles_dir / app / version


def load_baseline(store: Store, digest: str, bundles_dir: Path) -> tuple[RegisteredBundle, Bundle]:
    """The registered bundle ``digest`` and the loaded checkout of it, materializing it when missing.

    Raises ConfigError when the checkout at its version holds different content (someone edited a
    registered version in place), NotFoundError when the digest is not registered."""
    registered = store.get_bundle_by_digest(digest)
    where = version_dir(bundles_dir, registered.app, registered.version)
    if (where / BUNDLE_FILE).exists():
        try:
            bundle = load_bundle(where)
        except BundleValidationError as exc:
            raise ConfigError(
                f"{where / BUNDLE_FILE}: the checkout of registered bundle {registered.app}@"
                f"{registered.version} does not load ({exc.problems[0]}); restore it from version control"
            ) from None
        if bundle.digest != digest:
            raise ConfigError(
                f"{where / BUNDLE_FILE}: holds digest {bundle.digest}, but {registered.app}@"
                f"{registered.version} is registered as {digest}; registered versions are immutable, so "
                "restore the checkout (e.g. `git checkout -- bundles`) or move the edits to a new version"
            )
        return registered, bundle
    content = BundleContent(
        manifest=registered.manifest, files=registered.files, blobs=store.bundle_blobs(digest)
    )
    return registered, bundle_from_content(content, where, digest=digest)


def bump_minor(version: str, step: int = 1) -> str:
    """The ``step``-th minor bump of ``version``: ``1.0.0`` -> ``1.1.0``, ``2.3`` -> ``2.4``; a version
    that is not numeric gets a ``-c<step>`` suffix (``2024a`` -> ``2024a-c1``)."""
    if step < 1:
        raise ConfigError(f"version bump step {step} must be at least 1")
    match = _NUMERIC.match(version)
    if match is None:
        return f"{version}-c{step}"
    major, minor, patch = match.groups()
    return f"{major}.{int(minor) + step}" + (".0" if patch is not None else "")
