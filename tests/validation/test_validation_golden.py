"""Golden-dataset suite: the example bundles' datasets pass; each kind of bad item fails the right check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from validation_helpers import REPO, Line, WriteJsonl, golden_item

from modelshift.errors import ConfigError
from modelshift.validation import ValidationReport, validate_golden_dataset

CORPUS = ["a.md", "b.md"]
GOLDEN_FILES = sorted((REPO / "bundles").glob("*/shared/golden.jsonl"))


def run(path: Path, **kwargs: Any) -> ValidationReport:
    kwargs.setdefault("corpus_documents", CORPUS)
    return validate_golden_dataset(path, **kwargs)


def good(count: int = 3) -> list[Line]:
    return [golden_item(n) for n in range(count)]


def test_there_are_example_datasets() -> None:
    assert len(GOLDEN_FILES) >= 3


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.parent.parent.name)
def test_example_bundle_datasets_pass(path: Path) -> None:
    corpus = sorted(p.name for p in (path.parent / "corpus").iterdir())
    report = validate_golden_dataset(path, corpus_documents=corpus, min_items=30)
    assert report.success, report.render_text()
    assert report.failures == []


# (case, lines, failed check, where of the first example, text in the first example's value)
BAD_ITEMS: list[tuple[str, Sequence[Line], str, str, str]] = [
    ("bad JSON line", [*good(), '{"id": "x",'], "json", "line 4", "invalid JSON"),
    ("JSON string, not object", [*good(), '"just text"'], "json", "line 4", "string"),
    ("non-UTF-8 bytes", [*good(), b'{"id": "\xff"}'], "utf8", "line 4", "0xff"),
    ("duplicate ids", [*good(), golden_item(1)], "unique_ids", "line 2", "g001"),
    ("missing id", [*good(), golden_item(7, id=None)], "id_present", "line 4", "id is missing"),
    ("blank id", [*good(), golden_item(7, id="  ")], "id_present", "line 4", "id is blank"),
    ("boolean id", [*good(), golden_item(7, id=True)], "id_present", "line 4", "id is a boolean"),
    ("empty question", [*good(), golden_item(7, question="")], "question", "line 4", "question is blank"),
    (
        "question not a string",
        [*good(), golden_item(7, question=["a"])],
        "question",
        "line 4",
        "question is a list, not a string",
    ),
    ("missing answer", [*good(), {"id": "z", "question": "q?"}], "answer", "line 4", "answer is missing"),
    (
        "missing source",
        [*good(), golden_item(7, sources=["a.md", "gone.md"])],
        "sources",
        "line 4",
        "gone.md",
    ),
    ("sources not a list", [*good(), golden_item(7, sources="a.md")], "field_types", "line 4", "sources"),
    ("tags not strings", [*good(), golden_item(7, tags=[1])], "field_types", "line 4", "tags"),
]


@pytest.mark.parametrize(
    ("lines", "check", "where", "text"),
    [pytest.param(lines, check, where, text, id=case) for case, lines, check, where, text in BAD_ITEMS],
)
def test_bad_item_fails_the_right_check(
    write_jsonl: WriteJsonl, lines: Sequence[Line], check: str, where: str, text: str
) -> None:
    report = run(write_jsonl(lines))
    assert not report.success
    assert report.failed_checks() == [check], report.render_text()
    (failure,) = report.errors
    assert failure.examples[0].where == where
    assert text in str(failure.examples[0].value)


def test_duplicate_ids_list_every_occurrence(write_jsonl: WriteJsonl) -> None:
    (failure,) = run(write_jsonl([*good(), golden_item(1), golden_item(1)])).errors
    assert failure.message == "3 items share their id with another item"
    assert [(e.where, e.value) for e in failure.examples] == [
        ("line 2", "g001"),
        ("line 4", "g001"),
        ("line 5", "g001"),
    ]


@pytest.mark.parametrize(("count", "ok"), [(0, False), (4, False), (5, True), (6, True)])
def test_min_items_boundary(write_jsonl: WriteJsonl, count: int, ok: bool) -> None:
    report = run(write_jsonl(good(count)), min_items=5)
    assert report.success is ok
    if not ok:
        (failure,) = report.errors
        assert failure.check == "min_items"
        assert failure.message == f"the dataset has {count} items; at least 5 are needed"


def test_default_min_items_is_one(write_jsonl: WriteJsonl) -> None:
    assert run(write_jsonl(good(1))).success
    assert run(write_jsonl([])).failed_checks() == ["min_items"]


def test_sources_are_not_checked_without_a_corpus(write_jsonl: WriteJsonl) -> None:
    report = validate_golden_dataset(write_jsonl([golden_item(1, sources=["anything.md"])]))
    assert report.success
    assert report.statistics.evaluated_expectations == 8  # no "sources" expectation


def test_items_without_sources_pass_with_a_corpus(write_jsonl: WriteJsonl) -> None:
    item = golden_item(1)
    del item["sources"], item["tags"]
    assert run(write_jsonl([item])).success


def test_source_names_are_normalised(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl([golden_item(1, sources=["./a.md", "sub\\c.md"])])
    assert validate_golden_dataset(path, corpus_documents=["a.md", "sub/c.md"]).success


def test_several_problems_are_reported_at_once(write_jsonl: WriteJsonl) -> None:
    lines: list[Line] = [
        *good(2),
        "{oops",
        golden_item(0),
        golden_item(5, question=" ", answer=""),
        golden_item(6, sources=["nowhere.md"]),
    ]
    report = run(write_jsonl(lines), min_items=10)
    assert report.failed_checks() == ["json", "unique_ids", "question", "answer", "min_items", "sources"]
    assert all(f.examples for f in report.errors if f.check != "min_items")
    assert report.errors[4].observed_value == 5


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"golden dataset .*missing\.jsonl does not exist"):
        validate_golden_dataset(tmp_path / "missing.jsonl")
