"""Read a JSONL file line by line without ever failing: every problem becomes a flag on its line.

Validation must report *every* bad line with its number, so this reader never raises on content. Each
non-blank line becomes a :class:`JsonlLine` with the decoded object, or the reason it could not be decoded
(invalid UTF-8, invalid JSON, not a JSON object). A UTF-8 byte-order mark at the start of the file is
accepted (Azure OpenAI accepts training files with one). Blank lines are skipped, as JSONL readers do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelshift.errors import ConfigError

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class JsonlLine:
    """One non-blank line: its 1-based number and either ``data`` (a JSON object) or the problem."""

    number: int
    data: dict[str, Any] | None = None
    #: the line is not valid UTF-8 (says which byte and where)
    utf8_error: str | None = None
    #: the line is UTF-8 but not a JSON object (says why and where)
    json_error: str | None = None

    @property
    def where(self) -> str:
        """``line N``, as reports show it."""
        return f"line {self.number}"


@dataclass(frozen=True)
class JsonlFile:
    """The lines of one file and the sha256 of its bytes (so a report names exactly what it checked)."""

    lines: list[JsonlLine]
    sha256: str


def read_jsonl(path: Path, *, what: str) -> JsonlFile:
    """Every non-blank line of ``path``; ``what`` names the file's role in the error for a missing file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path} does not exist; check the path in the bundle or argument") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{what} {path} is a directory; point at the JSONL file inside it") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}; check its permissions") from exc
    return JsonlFile(parse_jsonl_bytes(raw), hashlib.sha256(raw).hexdigest())


def parse_jsonl_bytes(raw: bytes) -> list[JsonlLine]:
    """Split ``raw`` into lines and decode each one on its own, so one bad line does not hide the others."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    lines: list[JsonlLine] = []
    # split on \n only, as JSONL defines lines: \r\n endings leave a \r that JSON treats as whitespace,
    # and a stray \r must not shift the line numbers the report shows
    for index, chunk in enumerate(raw.split(b"\n"), start=1):
        if not chunk.strip():
            continue
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = chunk[exc.start : exc.start + 1].hex()
            lines.append(
                JsonlLine(index, utf8_error=f"byte 0x{bad} at column {exc.start + 1} is not valid UTF-8")
            )
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            lines.append(JsonlLine(index, json_error=f"invalid JSON at column {exc.colno}: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__ if value is not None else "null"
            lines.append(JsonlLine(index, json_error=f"a JSON {_json_kind(kind)}, not an object"))
            continue
        lines.append(JsonlLine(index, data=value))
    return lines


def _json_kind(python_type: str) -> str:
    return {"list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean"}.get(
        python_type, python_type
    )
