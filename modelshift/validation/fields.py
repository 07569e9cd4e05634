"""Small plain-Python judgements the suites turn into feature columns: each says what is wrong, or None.

Feature values are sentences ("question is blank", "start is a str") rather than booleans, so the examples
in a report tell the reader what to fix without opening the file.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

_JSON_TYPES: dict[type, str] = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type with its article (``a string``, ``an object``, ...)."""
    return _JSON_TYPES.get(type(value), f"a {type(value).__name__}")


def text_problem(value: Any, name: str) -> str | None:
    """Why ``value`` is not a non-empty string (``question is blank``), or None when it is one."""
    if value is None:
        return f"{name} is missing"
    if not isinstance(value, str):
        return f"{name} is {json_type(value)}, not a string"
    return None if value.strip() else f"{name} is blank"


def id_problem(value: Any) -> tuple[str | None, str | None]:
    """``(id, None)`` for a usable id (a non-empty string or a number), else ``(None, why)``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), None
    problem = text_problem(value, "id")
    return (None, problem) if problem else (str(value).strip(), None)


def is_str_list(value: Any) -> TypeGuard[list[str]]:
    """True for a list whose items are all strings."""
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def list_problems(item: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    """Optional fields among ``keys`` that are present but not lists of strings, as one sentence."""
    problems = [
        f"{key} is not a list of strings"
        for key in keys
        if item.get(key) is not None and not is_str_list(item[key])
    ]
    return "; ".join(problems) or None


def norm_doc(name: str) -> str:
    """A document name in one form for comparing: ``./a.md`` is ``a.md``, backslashes are slashes."""
    text = str(name).strip().replace("\\", "/")
    return text[2:] if text.startswith("./") else text


def field(record: Mapping[str, Any] | Any, name: str) -> Any:
    """``record[name]`` for a mapping, else the attribute (dataclasses, pydantic models); None if absent."""
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def has_type(value: Any, kind: type | tuple[type, ...]) -> bool:
    """isinstance, except that a bool never counts as an int (JSON true is not a number)."""
    return isinstance(value, kind) and not isinstance(value, bool)


def describe_type(value: Any) -> str:
    """``missing`` or ``is a <python type>``, to complete "start ..."."""
    return "missing" if value is None else f"is a {type(value).__name__}"


def make_frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """A pandas DataFrame of ``rows`` with exactly ``columns`` (present even when there are no rows)."""
    # imported by name: pandas comes with Great Expectations but ships no type stubs
    pandas = importlib.import_module("pandas")
    return pandas.DataFrame(rows, columns=columns)
