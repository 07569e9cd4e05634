"""Where a manifest names files, and the stable logical key of each reference.

The walk works on plain manifest data (a parsed ``bundle.yaml`` that may still be invalid, a canonical dump,
or stored content whose references are already logical keys), so the loader can check referenced files even
when other parts of the manifest fail schema validation.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

RefKind = Literal["file", "dir"]

#: extensions of the corpus files a retrieval corpus is made of (other files are not part of the bundle)
CORPUS_SUFFIXES: frozenset[str] = frozenset({".md", ".txt", ".html"})


@dataclass(frozen=True)
class Ref:
    """One file or directory reference in a manifest."""

    key: str  # logical key, e.g. "prompts.system" or "prompts.overrides.gpt-4.1.system"
    loc: tuple[str, ...]  # path through the manifest data to the reference
    kind: RefKind
    role: str  # what the file is for: prompt | training | validation | dataset | json_schema | corpus


def _get(data: Any, *loc: str) -> Any:
    for part in loc:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def iter_refs(data: Any) -> Iterator[Ref]:
    """Yield every reference present in ``data`` whose value is a string, in a fixed order."""
    fixed: list[tuple[tuple[str, ...], RefKind, str]] = [
        (("prompts", "system"), "file", "prompt"),
        (("prompts", "user_template"), "file", "prompt"),
        (("model", "fine_tune", "training_file"), "file", "training"),
        (("model", "fine_tune", "validation_file"), "file", "validation"),
        (("retrieval", "corpus"), "dir", "corpus"),
        (("evaluation", "dataset"), "file", "dataset"),
        (("evaluation", "json_schema"), "file", "json_schema"),
    ]
    for loc, kind, role in fixed[:2]:
        if isinstance(_get(data, *loc), str):
            yield Ref(".".join(loc), loc, kind, role)
    overrides = _get(data, "prompts", "overrides")
    if isinstance(overrides, Mapping):
        for family in sorted(k for k in overrides if isinstance(k, str)):
            for name in ("system", "user_template"):
                loc = ("prompts", "overrides", family, name)
                if isinstance(_get(data, *loc), str):
                    yield Ref(".".join(loc), loc, "file", "prompt")
    for loc, kind, role in fixed[2:]:
        if isinstance(_get(data, *loc), str):
            yield Ref(".".join(loc), loc, kind, role)


def ref_value(data: Any, ref: Ref) -> str:
    """The string stored at ``ref`` in ``data``."""
    value = _get(data, *ref.loc)
    assert isinstance(value, str), ref  # iter_refs only yields string-valued references
    return value


def replace_refs(data: Any, values: Mapping[str, Any]) -> Any:
    """A deep copy of ``data`` with each reference replaced by ``values[ref.key]``."""
    refs = {ref.loc: ref.key for ref in iter_refs(data)}

    def walk(node: Any, loc: tuple[str, ...]) -> Any:
        if loc in refs:
            return values[refs[loc]]
        if isinstance(node, Mapping):
            return {k: walk(v, (*loc, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, loc) for v in node]
        return node

    return walk(data, ())


def normalize_relpath(value: str) -> str:
    """``./prompts/x.md`` and ``prompts//x.md`` both become ``prompts/x.md``."""
    return posixpath.normpath(value)


def tree_key(dir_key: str, relpath: str) -> str:
    """The logical key of one file inside a referenced directory, e.g. ``retrieval.corpus/faq/a.md``."""
    return f"{dir_key}/{relpath}"


def is_corpus_file(relpath: str) -> bool:
    """True for the files a corpus consists of: .md/.txt/.html, not hidden, not inside hidden directories."""
    parts = relpath.split("/")
    if any(p.startswith(".") for p in parts):
        return False  # editor and OS droppings (.DS_Store, .git) must not change the digest
    return posixpath.splitext(parts[-1])[1].lower() in CORPUS_SUFFIXES


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def layout_path(ref: Ref) -> str:
    """Where :func:`materialize` puts a referenced file or directory, relative to the new bundle directory.

    Stored content keeps logical keys, not the original paths, so the layout is derived from the key alone.
    """
    match ref.loc:
        case ("prompts", "overrides", family, name):
            safe = _UNSAFE.sub("_", family).lstrip(".") or "_"
            return f"prompts/overrides/{safe}/{name}.md"
        case ("prompts", name):
            return f"prompts/{name}.md"
        case ("model", "fine_tune", "training_file"):
            return "data/training.jsonl"
        case ("model", "fine_tune", "validation_file"):
            return "data/validation.jsonl"
        case ("retrieval", "corpus"):
            return "corpus"
        case ("evaluation", "dataset"):
            return "data/golden.jsonl"
        case ("evaluation", "json_schema"):
            return "data/answer.schema.json"
    raise AssertionError(f"no layout for reference {ref.key}")  # iter_refs and this table must agree
