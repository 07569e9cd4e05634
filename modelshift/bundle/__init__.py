"""Bundles: one tested combination of model, prompts, parameters, retrieval and policies (DESIGN §1).

Load and validate with :func:`load_bundle` (every problem at once), identify with ``Bundle.digest``, store
with :meth:`Bundle.content` and bring back with :func:`materialize`, compare with :func:`diff_bundles`.
"""

from __future__ import annotations

from modelshift.bundle.content import BundleContent, bundle_from_content, materialize, verify_blobs
from modelshift.bundle.core import Bundle, FileEntry, PromptSet
from modelshift.bundle.diff import BundleDiff, FieldChange, diff_bundles
from modelshift.bundle.digest import canonical_json, compute_digest
from modelshift.bundle.loader import discover_bundles, load_bundle
from modelshift.bundle.manifest import Manifest

__all__ = [
    "Bundle",
    "BundleContent",
    "BundleDiff",
    "FieldChange",
    "FileEntry",
    "Manifest",
    "PromptSet",
    "bundle_from_content",
    "canonical_json",
    "compute_digest",
    "diff_bundles",
    "discover_bundles",
    "load_bundle",
    "materialize",
    "verify_blobs",
]
