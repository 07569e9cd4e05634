"""Fine-tuning file suite: the example bundle's files pass; each kind of bad data fails the right check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from validation_helpers import REPO, Line, WriteJsonl, chat_example, encode_lines

from modelshift.errors import ConfigError
from modelshift.grounding.tokenizers import get_encoding
from modelshift.validation import Severity, ValidationReport, validate_training_file
from modelshift.validation.chat import count_chat_tokens

LIMIT = 1000


def run(path: Path, *, limit: int = LIMIT, **kwargs: Any) -> ValidationReport:
    return validate_training_file(path, encoding="o200k_base", max_tokens_per_example=limit, **kwargs)


def good(count: int = 10) -> list[Line]:
    return [chat_example(n) for n in range(count)]


def with_messages(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages)}


USER = {"role": "user", "content": "Where do I file?"}
ANSWER = {"role": "assistant", "content": "In the app."}


@pytest.mark.parametrize("name", ["train.jsonl", "valid.jsonl"])
def test_example_bundle_files_pass(name: str) -> None:
    report = run(REPO / "bundles" / "claims-assistant" / "shared" / name, limit=16_000)
    assert report.success, report.render_text()
    assert report.failures == []
    assert report.statistics.rows >= 10
    report.raise_for_failure()  # does not raise


# (case, lines, failed check, where of the first example, text in the first example's value)
BAD_INPUTS: list[tuple[str, Sequence[Line], str, str | None, str]] = [
    ("bad JSON line", [*good(10)[:2], '{"messages": [', *good(10)[2:]], "json", "line 3", "invalid JSON"),
    ("JSON array, not object", [*good(10), "[1, 2]"], "json", "line 11", "array"),
    ("non-UTF-8 bytes", [*good(10), b'{"messages": "caf\xe9"}'], "utf8", "line 11", "0xe9"),
    ("no messages key", [*good(10), {"prompt": "x"}], "messages", "line 11", "no `messages` list"),
    ("messages not a list", [*good(10), {"messages": {"role": "user"}}], "messages", "line 11",
     "`messages` is an object, not a list"),
    ("empty messages", [*good(10), {"messages": []}], "messages", "line 11", "`messages` is empty"),
    ("messages not objects", [*good(10), {"messages": ["hi"]}], "messages", "line 11",
     "message 1 is a string, not an object"),
    ("bad role", [*good(10), with_messages({"role": "bot", "content": "x"}, USER, ANSWER)], "roles",
     "line 11", "role 'bot'"),
    ("missing role", [*good(10), with_messages({"content": "x"}, ANSWER)], "roles", "line 11", "None"),
    ("missing assistant turn", [*good(10), with_messages(USER)], "assistant_turn", "line 11", "roles: user"),
    ("empty assistant content", [*good(10), with_messages(USER, {"role": "assistant", "content": "  "})],
     "assistant_content", "line 11", "message 2"),
    ("null assistant content", [*good(10), with_messages(USER, {"role": "assistant", "content": None})],
     "assistant_content", "line 11", "message 2"),
    ("weight 2", [*good(10), with_messages(USER, {**ANSWER, "weight": 2})], "weight", "line 11", "weight 2"),
    ("weight true", [*good(10), with_messages(USER, {**ANSWER, "weight": True})], "weight", "line 11",
     "weight true"),
    ("weight on a user turn", [*good(10), with_messages({**USER, "weight": 1}, ANSWER)], "weight", "line 11",
     "'user' message"),
    ("too few examples", good(9), "min_examples", None, ""),
    ("empty file", [], "min_examples", None, ""),
    ("over-long example", [*good(10), chat_example(99, answer="word " * 1200)], "token_limit", "line 11", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "check", "where", "text"),
    [pytest.param(lines, check, where, text, id=case) for case, lines, check, where, text in BAD_INPUTS],
)
def test_bad_input_fails_the_right_check(
    write_jsonl: WriteJsonl, lines: Sequence[Line], check: str, where: str | None, text: str
) -> None:
    report = run(write_jsonl(lines))
    assert not report.success
    assert report.failed_checks() == [check], report.render_text()
    (failure,) = report.errors
    assert failure.severity is Severity.ERROR
    if where is not None:
        assert failure.unexpected_count == 1
        assert failure.examples[0].where == where
        assert text in str(failure.examples[0].value)


@pytest.mark.parametrize(
    ("count", "ok"), [(9, False), (10, True), (11, True)], ids=["9-below", "10-at", "11-above"]
)
def test_minimum_examples_boundary(write_jsonl: WriteJsonl, count: int, ok: bool) -> None:
    report = run(write_jsonl(good(count)))
    assert report.success is ok
    if not ok:
        (failure,) = report.failures
        assert failure.observed_value == count
        assert failure.message == f"the file has {count} usable examples; fine-tuning needs at least 10"


def test_minimum_examples_is_a_parameter(write_jsonl: WriteJsonl) -> None:
    assert run(write_jsonl(good(3)), min_examples=3).success
    assert not run(write_jsonl(good(3)), min_examples=4).success


@pytest.mark.parametrize(("slack", "ok"), [(-1, False), (0, True), (1, True)], ids=["over", "at", "under"])
def test_token_limit_boundary(write_jsonl: WriteJsonl, slack: int, ok: bool) -> None:
    examples = good(10)
    longest = max(count_chat_tokens(e["messages"], get_encoding("o200k_base")) for e in examples)  # type: ignore[index]
    report = run(write_jsonl(examples), limit=longest + slack)
    assert report.success is ok
    if not ok:
        (failure,) = report.failures
        assert failure.check == "token_limit"
        assert failure.examples[0].value == longest
        assert f"longer than {longest - 1} tokens (o200k_base)" in failure.message


def test_token_count_uses_the_target_tokenizer(write_jsonl: WriteJsonl) -> None:
    # Japanese text tokenizes very differently in cl100k_base and o200k_base
    path = write_jsonl(
        [chat_example(n, answer="日本語の文章をトークンに分割します。" * 20) for n in range(10)]
    )
    counts = {}
    for encoding in ("cl100k_base", "o200k_base"):
        report = validate_training_file(path, encoding=encoding, max_tokens_per_example=1)
        counts[encoding] = report.errors[0].examples[0].value
    assert counts["cl100k_base"] != counts["o200k_base"]


def test_message_names_counts(write_jsonl: WriteJsonl) -> None:
    lines: list[Line] = [*good(10), with_messages(USER), with_messages(USER)]
    (failure,) = run(write_jsonl(lines)).errors
    assert failure.message == "2 of 12 examples have no assistant turn"
    assert [e.where for e in failure.examples] == ["line 11", "line 12"]


def test_bom_is_accepted(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl(good(10))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert run(path).success


def test_crlf_and_blank_lines_are_accepted_and_line_numbers_stay_true(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl([*good(5), "", "   ", *good(10)[5:], "{broken"])
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    report = run(path)
    assert report.failed_checks() == ["json"]
    assert report.errors[0].examples[0].where == "line 13"
    assert report.statistics.rows == 11


@pytest.mark.parametrize(
    "example",
    [
        with_messages(USER, {"role": "assistant", "content": None, "tool_calls": [{"id": "t1"}]},
                      {"role": "tool", "content": "{}", "tool_call_id": "t1"}, ANSWER),
        with_messages(USER, {"role": "assistant", "content": [{"type": "text", "text": "Parts."}]}),
        with_messages(USER, {**ANSWER, "weight": 0}, USER, {**ANSWER, "content": "Again.", "weight": 1}),
        with_messages({"role": "user", "content": "Hi", "name": "ann"}, ANSWER),
    ],
    ids=["tool-call", "content-parts", "weights-0-and-1", "name"],
)  # fmt: skip
def test_valid_variants_pass(write_jsonl: WriteJsonl, example: dict[str, Any]) -> None:
    report = run(write_jsonl([*good(10), example]))
    assert report.success, report.render_text()
    assert report.failures == []


def test_duplicates_are_a_warning_not_an_error(write_jsonl: WriteJsonl) -> None:
    report = run(write_jsonl([*good(10), chat_example(3), chat_example(3)]))
    assert report.success
    assert report.failed_checks() == []
    (warning,) = report.warnings
    assert warning.check == "duplicates"
    assert warning.severity is Severity.WARNING
    assert [(e.where, e.value) for e in warning.examples] == [
        ("line 11", "same messages as line 4"),
        ("line 12", "same messages as line 4"),
    ]
    report.raise_for_failure()  # warnings never raise


def test_several_problems_are_reported_at_once(write_jsonl: WriteJsonl) -> None:
    lines: list[Line] = [
        *good(7),
        "not json",
        b'{"messages": "\xff"}',
        with_messages({"role": "robot", "content": "x"}, ANSWER),
        with_messages(USER),
        with_messages(USER, {**ANSWER, "weight": 2}),
        chat_example(0),
        chat_example(50, answer="word " * 1200),
    ]
    report = run(write_jsonl(lines))
    assert set(report.failed_checks()) == {"json", "utf8", "roles", "assistant_turn", "weight", "token_limit"}
    assert [w.check for w in report.warnings] == ["duplicates"]
    # a line is reported for its first problem only: the bad-JSON line is not also "missing messages"
    assert "messages" not in report.failed_checks()
    assert all(f.examples for f in report.failures)
    assert report.statistics.rows == 14
    assert report.statistics.unsuccessful_expectations == 7


def test_examples_are_capped_but_counted(write_jsonl: WriteJsonl) -> None:
    report = run(write_jsonl([*good(10), *[with_messages(USER)] * 8]), max_examples=3)
    (failure,) = report.errors
    assert failure.unexpected_count == 8
    assert [e.where for e in failure.examples] == ["line 11", "line 12", "line 13"]
    assert "... and 5 more" in report.render_text()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_path_is_a_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.jsonl" if kind == "missing" else tmp_path
    with pytest.raises(ConfigError, match="fine-tuning file") as info:
        run(path)
    assert str(path) in str(info.value)


def test_unknown_encoding_is_a_config_error(write_jsonl: WriteJsonl) -> None:
    with pytest.raises(ConfigError, match="unknown tokenizer encoding 'p50k'"):
        validate_training_file(write_jsonl(good()), encoding="p50k", max_tokens_per_example=10)


def test_overlap_with_the_training_file_is_a_warning(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_bytes(encode_lines(good(12)))
    shared = chat_example(5)
    reordered = {"messages": [dict(reversed(list(m.items()))) for m in chat_example(7)["messages"]]}
    valid = tmp_path / "valid.jsonl"
    valid.write_bytes(encode_lines([*[chat_example(100 + n) for n in range(10)], shared, reordered]))
    report = run(valid, overlap_with=train)
    assert report.success
    (warning,) = report.warnings
    assert warning.check == "overlap"
    assert warning.message == f"2 of 12 examples also appear in {train}"
    assert [(e.where, e.value) for e in warning.examples] == [
        ("line 11", "train.jsonl line 6"),
        ("line 12", "train.jsonl line 8"),
    ]


def test_no_overlap_check_without_a_training_file(write_jsonl: WriteJsonl) -> None:
    report = run(write_jsonl(good(10)))
    assert report.statistics.evaluated_expectations == 10


def test_overlap_with_a_missing_file_is_a_config_error(write_jsonl: WriteJsonl, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        run(write_jsonl(good(10)), overlap_with=tmp_path / "absent.jsonl")


def test_example_bundle_validation_file_does_not_overlap_its_training_file() -> None:
    shared = REPO / "bundles" / "claims-assistant" / "shared"
    report = run(shared / "valid.jsonl", limit=16_000, overlap_with=shared / "train.jsonl")
    assert report.failures == [], report.render_text()
