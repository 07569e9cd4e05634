"""What changed between two bundles: manifest fields, referenced files, and prompt texts."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from modelshift.bundle.core import Bundle
from modelshift.bundle.refs import iter_refs, normalize_relpath, replace_refs


@dataclass(frozen=True)
class FieldChange:
    """One manifest field whose value differs (``None`` on one side when the field is absent or null)."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class BundleDiff:
    """Differences from bundle ``a`` to bundle ``b``."""

    a: str  # "app@version"
    b: str
    digest_a: str
    digest_b: str
    fields: list[FieldChange] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    files_added: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    prompt_diffs: dict[str, str] = field(default_factory=dict)  # logical key -> unified diff

    @property
    def identical(self) -> bool:
        """True when both bundles have the same digest (the same tested combination)."""
        return self.digest_a == self.digest_b

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data for ``--json`` output."""
        return {
            "a": {"bundle": self.a, "digest": self.digest_a},
            "b": {"bundle": self.b, "digest": self.digest_b},
            "identical": self.identical,
            "fields": [{"path": c.path, "old": c.old, "new": c.new} for c in self.fields],
            "files": {
                "changed": self.files_changed,
                "added": self.files_added,
                "removed": self.files_removed,
            },
            "prompt_diffs": self.prompt_diffs,
        }

    def render_text(self) -> str:
        """A human-readable report."""
        lines = [f"--- {self.a}  {self.digest_a}", f"+++ {self.b}  {self.digest_b}"]
        if self.identical:
            lines.append("identical: same digest")
            return "\n".join(lines)
        if self.fields:
            lines.append("")
            lines.append("manifest:")
            lines.extend(f"  {c.path}: {_show(c.old)} -> {_show(c.new)}" for c in self.fields)
        groups = (
            ("changed", self.files_changed),
            ("added", self.files_added),
            ("removed", self.files_removed),
        )
        if any(keys for _, keys in groups):
            lines.append("")
            lines.append("files:")
            for label, keys in groups:
                lines.extend(f"  {label:<8} {key}" for key in keys)
        for key, text in self.prompt_diffs.items():
            lines.append("")
            lines.append(f"prompt {key}:")
            lines.append(text.rstrip("\n"))
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "(absent)" if value is None else repr(value)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    # Lists are compared whole: canary steps [5, 25, 50, 100] -> [10, 100] reads better as one change.
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _comparable(bundle: Bundle) -> dict[str, Any]:
    canonical = bundle.manifest.canonical()
    # ./prompts/x.md and prompts/x.md are the same reference; do not report spelling as a change
    paths = {ref.key: normalize_relpath(_value_at(canonical, ref.loc)) for ref in iter_refs(canonical)}
    return _flatten(replace_refs(canonical, paths))


def _value_at(data: Any, loc: tuple[str, ...]) -> str:
    for part in loc:
        data = data[part]
    return str(data)


def _unified(key: str, old: str, new: str, a: str, b: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"{a}/{key}", f"{b}/{key}"
        )
    )


def diff_bundles(a: Bundle, b: Bundle) -> BundleDiff:
    """Field and file differences from ``a`` to ``b``, with a unified diff of each changed prompt."""
    name_a, name_b = f"{a.app}@{a.version}", f"{b.app}@{b.version}"
    fa, fb = _comparable(a), _comparable(b)
    fields = [
        FieldChange(path, fa.get(path), fb.get(path))
        for path in sorted(fa.keys() | fb.keys())
        if fa.get(path) != fb.get(path)
    ]
    changed = sorted(k for k in a.files.keys() & b.files.keys() if a.files[k].sha256 != b.files[k].sha256)
    added = sorted(b.files.keys() - a.files.keys())
    removed = sorted(a.files.keys() - b.files.keys())
    prompt_diffs: dict[str, str] = {}
    for key in sorted(a.texts.keys() | b.texts.keys()):
        old, new = a.texts.get(key, ""), b.texts.get(key, "")
        if old != new:
            prompt_diffs[key] = _unified(key, old, new, name_a, name_b)
    return BundleDiff(name_a, name_b, a.digest, b.digest, fields, changed, added, removed, prompt_diffs)
