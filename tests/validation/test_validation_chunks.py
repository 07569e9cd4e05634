"""Chunk-table suite: a good table passes; each kind of bad chunk or corpus gap fails the right check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from validation_helpers import REPO, chunk

from modelshift.grounding.tokenizers import count_tokens
from modelshift.validation import ValidationReport, validate_chunks

DOCS = ["a.md", "b.md"]
LIMIT = 100


def run(chunks: list[Any], *, documents: list[str] = DOCS, limit: int = LIMIT) -> ValidationReport:
    return validate_chunks(chunks, documents=documents, max_tokens=limit)


def good() -> list[dict[str, Any]]:
    return [chunk(0), chunk(1), chunk(2, document="b.md", start=0, end=10)]


def test_good_table_passes() -> None:
    report = run(good())
    assert report.success, report.render_text()
    assert report.failures == []
    assert report.statistics.rows == 3
    assert report.subject == "chunk table"


# (case, chunks, failed check, where of the first example or None, text in the first example's value)
BAD_TABLES: list[tuple[str, list[dict[str, Any]], str, str | None, str]] = [
    ("empty table", [], "not_empty", None, ""),
    ("oversize chunk", [*good(), chunk(3, token_count=LIMIT + 1)], "token_limit", "chunk 4 (c3)", "101"),
    ("uncovered document", [chunk(0), chunk(1)], "coverage", None, "b.md"),
    ("chunk of an unknown document", [*good(), chunk(3, document="z.md")], "known_documents", "chunk 4 (c3)",
     "z.md"),
    ("duplicate ids", [*good(), chunk(1, start=50, end=60)], "unique_ids", "chunk 2 (c1)", "c1"),
    ("start == end", [*good(), chunk(3, start=5, end=5)], "span", "chunk 4 (c3)", "0"),
    ("start > end", [*good(), chunk(3, start=9, end=5)], "span", "chunk 4 (c3)", "-4"),
    ("empty text", [*good(), chunk(3, text="  \n")], "text", "chunk 4 (c3)", "0"),
    ("missing field", [*good(), {k: v for k, v in chunk(3).items() if k != "token_count"}], "fields",
     "chunk 4 (c3)", "token_count missing"),
    ("wrong type", [*good(), chunk(3, start="0")], "fields", "chunk 4 (c3)", "start is a str"),
    ("bool is not an int", [*good(), chunk(3, end=True)], "fields", "chunk 4 (c3)", "end is a bool"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("chunks", "check", "where", "text"),
    [pytest.param(chunks, check, where, text, id=case) for case, chunks, check, where, text in BAD_TABLES],
)
def test_bad_table_fails_the_right_check(
    chunks: list[dict[str, Any]], check: str, where: str | None, text: str
) -> None:
    report = run(chunks)
    assert not report.success
    expected = [check] if chunks else ["not_empty", "coverage"]  # an empty table also covers nothing
    assert report.failed_checks() == expected, report.render_text()
    failure = report.errors[0]
    if where is not None:
        assert failure.examples[0].where == where
    if text:
        assert text in str(failure.examples[0].value)


@pytest.mark.parametrize(("tokens", "ok"), [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)])
def test_token_limit_boundary(tokens: int, ok: bool) -> None:
    report = run([*good(), chunk(3, token_count=tokens)])
    assert report.success is ok
    if not ok:
        assert report.errors[0].message == f"1 of 4 chunks have more than {LIMIT} tokens"


def test_uncovered_documents_are_all_named() -> None:
    report = run([chunk(0)], documents=["a.md", "b.md", "c.md"])
    (failure,) = report.errors
    assert failure.check == "coverage"
    assert failure.message == "corpus documents without any chunk: b.md, c.md"
    assert [e.value for e in failure.examples] == ["b.md", "c.md"]
    assert failure.unexpected_count == 2


def test_document_names_are_normalised() -> None:
    chunks = [chunk(0, document="./a.md"), chunk(1, document="sub\\b.md")]
    assert run(chunks, documents=["a.md", "sub/b.md"]).success


def test_objects_with_attributes_are_accepted() -> None:
    @dataclass
    class Chunk:
        id: str
        document: str
        start: int
        end: int
        token_count: int
        text: str

    assert run([Chunk(**chunk(0)), Chunk(**chunk(1, document="b.md"))]).success


def test_integer_ids_are_accepted() -> None:
    assert run([chunk(0, id=1), chunk(1, id=2, document="b.md")]).success


def test_several_problems_are_reported_at_once() -> None:
    chunks = [
        chunk(0, token_count=500),
        chunk(0, start=10, end=3),
        chunk(2, text=""),
        chunk(3, document="zz.md"),
    ]
    report = run(chunks, documents=["a.md", "b.md"])
    assert report.failed_checks() == [
        "unique_ids",
        "text",
        "token_limit",
        "span",
        "coverage",
        "known_documents",
    ]
    assert all(f.examples for f in report.errors)
    assert report.statistics.successful_expectations == 2  # not_empty, fields


def counted(n: int, text: str, **overrides: Any) -> dict[str, Any]:
    """A chunk whose token_count is the true o200k_base count of ``text``."""
    return chunk(n, text=text, token_count=count_tokens(text, "o200k_base"), **overrides)


def test_token_counts_match_the_target_tokenizer() -> None:
    chunks = [
        counted(0, "Deductibles apply per claim."),
        counted(1, "<|endoftext|> is text.", document="b.md"),
    ]
    report = validate_chunks(chunks, documents=DOCS, max_tokens=LIMIT, encoding="o200k_base")
    assert report.success, report.render_text()
    assert report.statistics.evaluated_expectations == 9


@pytest.mark.parametrize("delta", [-1, 1])
def test_token_count_off_by_one_is_reported(delta: int) -> None:
    actual = count_tokens("Water damage.", "o200k_base")
    chunks = [
        counted(0, "Deductibles apply per claim."),
        chunk(1, document="b.md", text="Water damage.", token_count=actual + delta),
    ]
    report = validate_chunks(chunks, documents=DOCS, max_tokens=LIMIT, encoding="o200k_base")
    assert report.failed_checks() == ["token_count_exact"]
    (failure,) = report.errors
    assert failure.examples[0].where == "chunk 2 (c1)"
    assert failure.examples[0].value == f"token_count {actual + delta}, o200k_base counts {actual}"


def test_token_counts_depend_on_the_encoding() -> None:
    text = "日本語の文章をトークンに分割します。"
    chunks = [counted(0, text), counted(1, text, document="b.md")]
    assert count_tokens(text, "cl100k_base") != count_tokens(text, "o200k_base")
    report = validate_chunks(chunks, documents=DOCS, max_tokens=LIMIT, encoding="cl100k_base")
    assert report.failed_checks() == ["token_count_exact"]
    assert report.errors[0].unexpected_count == 2


@pytest.mark.parametrize("app", ["claims-assistant", "hr-handbook", "support-chat"])
def test_the_chunkers_output_for_each_example_corpus_passes(app: str) -> None:
    from modelshift.grounding.chunking import Chunker
    from modelshift.grounding.corpus import load_corpus

    corpus = load_corpus(REPO / "bundles" / app / "shared" / "corpus")
    chunks = Chunker("o200k_base", chunk_tokens=128, overlap_tokens=16).chunk_corpus(corpus)
    report = validate_chunks(
        chunks, documents=[d.path for d in corpus.documents], max_tokens=128, encoding="o200k_base"
    )
    assert report.success, report.render_text()
    assert report.failures == []
    assert report.statistics.rows == len(chunks) > len(corpus.documents)
