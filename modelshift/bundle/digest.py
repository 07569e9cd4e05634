"""The bundle digest: sha256 over a canonical JSON form of the manifest and the bytes it references.

Canonical form: the manifest with every default filled in, each referenced file replaced by
``{"sha256": hex}`` and each referenced directory by ``{"tree": {posix_relpath: hex, ...}}``, serialised as
JSON with sorted keys, no insignificant whitespace, UTF-8. Paths never enter the digest, so it does not depend
on where a bundle sits on disk or how a path is spelled; any byte of any referenced file changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from modelshift.bundle.refs import iter_refs, replace_refs, tree_key

DIGEST_PREFIX = "sha256:"


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(data: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8; stable across machines and Python runs."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def resolved_refs(manifest: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, Any]:
    """What each reference in ``manifest`` stands for in the digest; ``files`` maps logical key -> sha256."""
    out: dict[str, Any] = {}
    for ref in iter_refs(manifest):
        if ref.kind == "file":
            out[ref.key] = {"sha256": files[ref.key]}
        else:
            prefix = tree_key(ref.key, "")
            out[ref.key] = {
                "tree": {
                    key[len(prefix) :]: sha for key, sha in sorted(files.items()) if key.startswith(prefix)
                }
            }
    return out


def compute_digest(manifest: Mapping[str, Any], files: Mapping[str, str]) -> str:
    """``sha256:<hex>`` of the canonical manifest with references replaced by the hashes in ``files``.

    ``manifest`` is canonical manifest data (defaults applied); its references may be paths or logical keys,
    both are replaced. Raises ``KeyError`` when ``files`` lacks a referenced file.
    """
    resolved = replace_refs(manifest, resolved_refs(manifest, files))
    return DIGEST_PREFIX + sha256_hex(canonical_json(resolved))
