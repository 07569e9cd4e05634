"""The plain-Python half of validation: the never-failing JSONL reader and the chat example features."""

from __future__ import annotations

from typing import Any

import pytest

from modelshift.grounding.tokenizers import get_encoding
from modelshift.validation.chat import chat_features, count_chat_tokens
from modelshift.validation.jsonl import JsonlLine, parse_jsonl_bytes

# (case, file bytes, expected lines as (number, data, utf8_error substring, json_error substring))
READER_ROWS: list[tuple[str, bytes, list[tuple[int, Any, str | None, str | None]]]] = [
    ("empty file", b"", []),
    ("one object, no final newline", b'{"a": 1}', [(1, {"a": 1}, None, None)]),
    ("BOM at file start", b'\xef\xbb\xbf{"a": 1}\n', [(1, {"a": 1}, None, None)]),
    ("BOM on a later line", b'{"a": 1}\n\xef\xbb\xbf{"b": 2}\n', [(1, {"a": 1}, None, None),
                                                                (2, None, None, "invalid JSON")]),
    ("CRLF", b'{"a": 1}\r\n{"b": 2}\r\n', [(1, {"a": 1}, None, None), (2, {"b": 2}, None, None)]),
    ("blank lines keep numbering", b'\n  \n{"a": 1}\n', [(3, {"a": 1}, None, None)]),
    ("bad UTF-8", b'{"a": "\xc3("}\n', [(1, None, "byte 0xc3 at column 8", None)]),
    ("invalid JSON", b'{"a": }\n', [(1, None, None, "invalid JSON at column 7")]),
    ("array", b"[1]\n", [(1, None, None, "a JSON array, not an object")]),
    ("null", b"null\n", [(1, None, None, "a JSON null, not an object")]),
    ("number", b"3\n", [(1, None, None, "a JSON number, not an object")]),
    ("raw carriage return in a string", b'{"a": "x\rY"}\n{"b": 1}\n',
     [(1, None, None, "Invalid control character"), (2, {"b": 1}, None, None)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"), [pytest.param(raw, exp, id=case) for case, raw, exp in READER_ROWS]
)
def test_reader_turns_every_line_into_data_or_a_flag(
    raw: bytes, expected: list[tuple[int, Any, str | None, str | None]]
) -> None:
    lines = parse_jsonl_bytes(raw)
    assert len(lines) == len(expected)
    for line, (number, data, utf8, json_error) in zip(lines, expected, strict=True):
        assert line.number == number
        assert line.where == f"line {number}"
        assert line.data == data
        assert (line.utf8_error is None) == (utf8 is None)
        assert (line.json_error is None) == (json_error is None)
        if utf8:
            assert utf8 in str(line.utf8_error)
        if json_error:
            assert json_error in str(line.json_error)


def test_reader_line_is_immutable() -> None:
    line = JsonlLine(1, data={})
    with pytest.raises(AttributeError):
        line.number = 2  # type: ignore[misc]


def test_token_count_follows_the_published_formula() -> None:
    enc = get_encoding("o200k_base")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there", "name": "ann"},
        {"role": "assistant", "content": "Hi.", "weight": 1},
    ]

    def n(text: str) -> int:
        return len(enc.encode(text))

    expected = 3  # reply priming
    expected += 3 + n("system") + n("Be brief.")
    expected += 3 + n("user") + n("Hello there") + n("ann") + 1  # a name costs one more token
    expected += 3 + n("assistant") + n("Hi.")  # weight is not sent to the model
    assert count_chat_tokens(messages, enc) == expected


def test_token_count_treats_special_token_text_as_text() -> None:
    enc = get_encoding("cl100k_base")
    messages = [{"role": "user", "content": "<|endoftext|>"}]
    assert count_chat_tokens(messages, enc) > 7  # counted as ordinary text, not refused


def test_content_parts_count_their_text() -> None:
    enc = get_encoding("o200k_base")
    plain = [{"role": "user", "content": "Hello there"}]
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]}
    ]
    assert count_chat_tokens(parts, enc) == count_chat_tokens(plain, enc)


FEATURE_ROWS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("good", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
     {"messages_problem": None, "bad_roles": None, "missing_assistant": None, "empty_assistant": None,
      "bad_weight": None}),
    ("no messages", {"text": "x"}, {"messages_problem": "no `messages` list (the key is missing or null)",
                                     "missing_assistant": None, "tokens": None}),
    ("messages is a string", {"messages": "hi"}, {"messages_problem": "`messages` is a string, not a list"}),
    ("two bad roles", {"messages": [{"role": "bot", "content": "q"}, {"role": "", "content": "a"}]},
     {"bad_roles": "message 1: role 'bot'; message 2: role ''", "missing_assistant": "roles: bot, "}),
    ("weight 0.5", {"messages": [{"role": "assistant", "content": "a", "weight": 0.5}]},
     {"bad_weight": "message 1: weight 0.5 (only 0 or 1)"}),
    ("weight 1.0 is 1", {"messages": [{"role": "assistant", "content": "a", "weight": 1.0}]},
     {"bad_weight": None}),
    ("weight on system", {"messages": [{"role": "system", "content": "s", "weight": 0},
                                       {"role": "assistant", "content": "a"}]},
     {"bad_weight": "message 1: weight on a 'system' message (assistant only)"}),
    ("two empty assistant turns", {"messages": [{"role": "assistant", "content": ""},
                                                {"role": "assistant"}]},
     {"empty_assistant": "message 1, message 2", "missing_assistant": None}),
]  # fmt: skip


@pytest.mark.parametrize(("example", "expected"), [pytest.param(e, x, id=c) for c, e, x in FEATURE_ROWS])
def test_chat_features(example: dict[str, Any], expected: dict[str, Any]) -> None:
    features = chat_features(example, get_encoding("o200k_base"))
    for name, value in expected.items():
        assert getattr(features, name) == value, name


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    enc = get_encoding("o200k_base")
    a = chat_features({"messages": [{"role": "user", "content": "q"}]}, enc)
    b = chat_features({"messages": [{"content": "q", "role": "user"}]}, enc)
    c = chat_features({"messages": [{"role": "user", "content": "q!"}]}, enc)
    assert a.fingerprint == b.fingerprint != c.fingerprint
