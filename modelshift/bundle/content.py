"""The self-contained form of a bundle for the state store, and writing it back out to disk.

:class:`BundleContent` holds the canonical manifest (each file reference replaced by its logical key),
``files`` (logical key -> sha256) and ``blobs`` (sha256 -> bytes). Blobs are content-addressed, so a store can
keep each one once however many bundles share it. The digest is a function of ``manifest`` and ``files``
alone, so it can be checked before any blob is fetched.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import yaml

from modelshift.bundle.core import Bundle
from modelshift.bundle.digest import compute_digest, sha256_hex
from modelshift.bundle.loader import BUNDLE_FILE, load_bundle
from modelshift.bundle.refs import iter_refs, layout_path, replace_refs, tree_key
from modelshift.errors import BundleValidationError, ConfigError, StateError

CONTENT_FORMAT = 1


@dataclass(frozen=True)
class BundleContent:
    """A bundle without a checkout: canonical manifest, file hashes by logical key, and blobs by hash."""

    manifest: Mapping[str, Any]
    files: Mapping[str, str]
    blobs: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def app(self) -> str:
        """The app named in the manifest."""
        return str(self.manifest["app"])

    @property
    def version(self) -> str:
        """The bundle version named in the manifest."""
        return str(self.manifest["version"])

    @property
    def digest(self) -> str:
        """The digest this content stands for (computed from manifest and file hashes; blobs not needed)."""
        try:
            return compute_digest(self.manifest, self.files)
        except KeyError as exc:
            raise StateError(
                f"bundle content {self.app}@{self.version} lacks the hash of referenced file {exc.args[0]}; "
                "re-register the bundle from its checkout"
            ) from None

    def to_json(self, *, include_blobs: bool = True) -> dict[str, Any]:
        """JSON-ready data (blobs base64-encoded); :meth:`from_json` reads it back."""
        data: dict[str, Any] = {
            "format": CONTENT_FORMAT,
            "digest": self.digest,
            "manifest": dict(self.manifest),
            "files": dict(sorted(self.files.items())),
        }
        if include_blobs:
            data["blobs"] = {
                sha: base64.b64encode(b).decode("ascii") for sha, b in sorted(self.blobs.items())
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BundleContent:
        """Inverse of :meth:`to_json`; refuses data whose recorded digest does not match its content."""
        try:
            blobs = {sha: base64.b64decode(b, validate=True) for sha, b in data.get("blobs", {}).items()}
            content = cls(manifest=data["manifest"], files=data["files"], blobs=blobs)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(
                f"stored bundle content is malformed ({exc!r}); re-register the bundle"
            ) from None
        recorded = data.get("digest")
        if recorded is not None and recorded != content.digest:
            raise StateError(
                f"stored bundle content {content.app}@{content.version} records digest {recorded} "
                f"but its manifest and files give {content.digest}; it was altered, re-register the bundle"
            )
        return content


def content_of(bundle: Bundle) -> BundleContent:
    """The :class:`BundleContent` of a loaded bundle (reads each referenced file once, checking its hash)."""
    canonical = bundle.manifest.canonical()
    manifest = replace_refs(canonical, {ref.key: ref.key for ref in iter_refs(canonical)})
    files = {key: entry.sha256 for key, entry in sorted(bundle.files.items())}
    return BundleContent(manifest=manifest, files=files, blobs=bundle.blobs())


def verify_blobs(content: BundleContent, blobs: Mapping[str, bytes]) -> None:
    """Raise :class:`StateError` unless every file of ``content`` has a blob whose sha256 matches."""
    for key, sha in sorted(content.files.items()):
        blob = blobs.get(sha)
        if blob is None:
            raise StateError(
                f"bundle {content.app}@{content.version}: blob sha256:{sha} for {key} is missing; "
                "re-register the bundle from its checkout"
            )
        actual = sha256_hex(blob)
        if actual != sha:
            raise StateError(
                f"bundle {content.app}@{content.version}: blob for {key} should hash to sha256:{sha} "
                f"but hashes to sha256:{actual}; the stored blob was altered, re-register the bundle"
            )


def _target(dest: Path, relpath: str, key: str) -> Path:
    target = (dest / relpath).resolve()
    if not target.is_relative_to(dest):
        raise StateError(f"bundle content file {key} would be written outside {dest}; refusing")
    return target


def _plan(content: BundleContent, dest: Path) -> tuple[dict[str, str], list[tuple[Path, str]]]:
    """Where each reference goes (logical key -> relpath) and which blob lands at which path."""
    layout: dict[str, str] = {}
    writes: list[tuple[Path, str]] = []
    for ref in iter_refs(content.manifest):
        relpath = stem = layout_path(ref)
        n = 1
        while relpath in layout.values():  # two override families that sanitise to the same name
            n += 1
            relpath = f"{stem}.{n}" if ref.kind == "dir" else stem.replace("/", f"-{n}/", 1)
        layout[ref.key] = relpath
        if ref.kind == "file":
            writes.append((_target(dest, relpath, ref.key), content.files[ref.key]))
            continue
        prefix = tree_key(ref.key, "")
        for key, sha in sorted(content.files.items()):
            if key.startswith(prefix):
                writes.append((_target(dest, f"{relpath}/{key[len(prefix) :]}", key), sha))
    return layout, writes


@overload
def materialize(content: BundleContent, dest_dir: Path, /) -> Bundle: ...
@overload
def materialize(content: BundleContent, blobs: Mapping[str, bytes], dest_dir: Path, /) -> Bundle: ...
def materialize(
    content: BundleContent, blobs_or_dest: Mapping[str, bytes] | Path, dest_dir: Path | None = None, /
) -> Bundle:
    """Write ``content`` out as a bundle directory and load it; the result has the SAME digest.

    Call as ``materialize(content, dest_dir)`` (blobs from ``content.blobs``) or
    ``materialize(content, blobs, dest_dir)``. ``dest_dir`` must be missing or empty. Raises
    :class:`StateError` when a blob is missing or does not match its hash.
    """
    if dest_dir is None:
        assert isinstance(blobs_or_dest, str | Path), "materialize(content, dest_dir)"
        blobs: Mapping[str, bytes] = content.blobs
        dest = Path(blobs_or_dest)
    else:
        assert not isinstance(blobs_or_dest, str | Path), "materialize(content, blobs, dest_dir)"
        blobs, dest = blobs_or_dest, Path(dest_dir)
    digest = content.digest
    verify_blobs(content, blobs)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(
            f"{dest}: exists and is not an empty directory; pick a new directory to materialize into"
        )
    dest = dest.resolve()
    layout, writes = _plan(content, dest)  # every target checked before the first byte is written
    for target, sha in writes:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blobs[sha])
    dest.mkdir(parents=True, exist_ok=True)
    manifest = replace_refs(content.manifest, layout)
    (dest / BUNDLE_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True), "utf-8")
    try:
        bundle = load_bundle(dest)
    except BundleValidationError as exc:
        raise StateError(
            f"bundle content {content.app}@{content.version} ({digest}) does not load once materialized "
            f"in {dest}: {exc.message}"
        ) from None
    if bundle.digest != digest:
        raise StateError(
            f"bundle content {content.app}@{content.version} materialized in {dest} has digest "
            f"{bundle.digest}, expected {digest}; the stored content is inconsistent, re-register the bundle"
        )
    return bundle


def bundle_from_content(
    content: BundleContent, dest_dir: Path, *, digest: str, blobs: Mapping[str, bytes] | None = None
) -> Bundle:
    """Materialize ``content`` after checking it is the bundle ``digest`` names (e.g. from the store record).

    Raises :class:`StateError` when the content's digest differs or any blob does not match its hash.
    """
    actual = content.digest
    if actual != digest:
        raise StateError(
            f"bundle content {content.app}@{content.version} has digest {actual}, expected {digest}; "
            "the stored content was altered, re-register the bundle"
        )
    return materialize(content, content.blobs if blobs is None else blobs, dest_dir)
