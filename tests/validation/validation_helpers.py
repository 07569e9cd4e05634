"""Builders for the validation tests: valid chat examples, golden items, chunks, and JSONL bytes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: a JSONL line as a test gives it: an object (dumped as JSON), a raw str, or raw bytes
Line = dict[str, Any] | list[Any] | str | bytes
WriteJsonl = Callable[[Sequence[Line]], Path]


def chat_example(n: int = 0, *, answer: str = "Call the claims line.") -> dict[str, Any]:
    """A valid chat fine-tuning example; ``n`` makes it unique."""
    return {
        "messages": [
            {"role": "system", "content": "You are the claims assistant."},
            {"role": "user", "content": f"Question number {n}?"},
            {"role": "assistant", "content": answer},
        ]
    }


def golden_item(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid golden-dataset item with id ``g{n:03d}``; keyword arguments replace fields."""
    item: dict[str, Any] = {
        "id": f"g{n:03d}",
        "question": f"What is rule {n}?",
        "answer": f"Rule {n} says so.",
        "sources": ["a.md"],
        "tags": ["rules"],
    }
    item.update(overrides)
    return item


def chunk(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid chunk of document ``a.md`` with id ``c{n}``; keyword arguments replace fields."""
    row: dict[str, Any] = {
        "id": f"c{n}",
        "document": "a.md",
        "start": n * 10,
        "end": n * 10 + 10,
        "token_count": 3,
        "text": f"chunk {n} text",
    }
    row.update(overrides)
    return row


def encode_lines(lines: Sequence[Line]) -> bytes:
    """The bytes of a JSONL file with ``lines``, each ending in a newline."""
    out = b""
    for line in lines:
        if isinstance(line, bytes):
            out += line
        elif isinstance(line, str):
            out += line.encode("utf-8")
        else:
            out += json.dumps(line).encode("utf-8")
        out += b"\n"
    return out
