"""Golden datasets: JSONL items (id, question, answer, sources, tags) and their digest.

The digest is the sha256 of the file's bytes, so an evaluation record and the baseline cache name exactly
the data they were measured on; a changed byte (even whitespace) is a different dataset.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelshift.errors import ConfigError


@dataclass(frozen=True)
class DatasetItem:
    """One golden question with its reference answer and (optionally) the documents that hold it."""

    id: str
    question: str
    answer: str
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A loaded golden dataset: its items in file order, where it came from and its digest."""

    path: Path
    digest: str
    items: tuple[DatasetItem, ...]

    def __len__(self) -> int:
        return len(self.items)


def _strings(value: Any, where: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: field {field!r} must be a list of strings; fix the line")
    return tuple(value)


def _item(raw: Any, where: str) -> DatasetItem:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each line must be a JSON object with id, question and answer")
    for field in ("id", "question", "answer"):
        value = raw.get(field)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: field {field!r} is missing or not a non-empty string; add it")
    return DatasetItem(
        id=raw["id"],
        question=raw["question"],
        answer=raw["answer"],
        sources=_strings(raw.get("sources"), where, "sources"),
        tags=_strings(raw.get("tags"), where, "tags"),
    )


def parse_dataset(data: bytes, path: Path) -> Dataset:
    """Parse JSONL bytes (blank lines allowed); every problem names the file, line and field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the dataset as UTF-8") from None
    items: list[DatasetItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg}); one JSON object per line") from None
        item = _item(raw, where)
        if item.id in seen:
            raise ConfigError(
                f"{where}: id {item.id!r} already used on line {seen[item.id]}; ids must be unique"
            )
        seen[item.id] = number
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: the dataset has no items; add JSONL lines with id, question and answer")
    return Dataset(path=path, digest=hashlib.sha256(data).hexdigest(), items=tuple(items))


def load_dataset(path: Path) -> Dataset:
    """Load a golden dataset file (see :func:`parse_dataset`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the dataset ({exc.strerror}); check --dataset") from None
    return parse_dataset(data, path)
