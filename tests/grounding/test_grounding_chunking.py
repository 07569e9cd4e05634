"""The structure-aware chunker: exact token counts, offsets, overlap, structure-first cuts, stable ids."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshift.errors import ConfigError, DataValidationError
from modelshift.grounding.chunking import Chunk, Chunker, chunk_id
from modelshift.grounding.corpus import load_corpus
from modelshift.grounding.tokenizers import SUPPORTED_ENCODINGS, get_encoding
from tests.grounding.conftest import corpus_dir

PARAMS = [(512, 64), (128, 16), (64, 8), (16, 4), (20, 0), (8, 7)]


def _check_document(chunker: Chunker, text: str, chunks: list[Chunk]) -> None:
    """Every invariant a user relies on, for one document's chunks."""
    enc = chunker.encoding
    if not text.strip():
        assert chunks == []
        return
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    for i, c in enumerate(chunks):
        assert c.index == i
        assert c.text == text[c.start : c.end]
        assert c.token_count == len(enc.encode(c.text, disallowed_special=()))
        assert 0 < c.token_count <= chunker.chunk_tokens
        assert c.id == chunk_id(c.document, c.start, c.end, c.text)
    for prev, nxt in itertools.pairwise(chunks):
        # no gap, progress, and the overlap never exceeds the configured tokens
        assert prev.start < nxt.start <= prev.end < nxt.end
        overlap = text[nxt.start : prev.end]
        assert len(enc.encode(overlap, disallowed_special=())) <= chunker.overlap_tokens + 1


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), PARAMS)
def test_example_corpora_counts_are_exact(encoding: str, chunk_tokens: int, overlap_tokens: int) -> None:
    chunker = Chunker(encoding, chunk_tokens, overlap_tokens)
    for app in ("claims-assistant", "hr-handbook", "support-chat"):
        for doc in load_corpus(corpus_dir(app)).documents:
            _check_document(chunker, doc.text, chunker.chunk_text(doc.text, doc.path))


_ALPHABET = st.sampled_from(
    [
        *"abcXYZ .!?/\n\r\t#-*|`'0123",
        "\n\n",
        "## ",
        "é",
        "日本語",
        "🙂",
        "\u00a0",
        "\u2028",
        "\x85",
        "\x1c",
        "\u0301",
        "<|endoftext|>",
        "s ",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.lists(_ALPHABET, max_size=300).map("".join),
    params=st.sampled_from([(16, 4), (20, 0), (8, 7), (33, 10), (64, 32)]),
    encoding=st.sampled_from(SUPPORTED_ENCODINGS),
)
def test_random_text_counts_are_exact(text: str, params: tuple[int, int], encoding: str) -> None:
    chunker = Chunker(encoding, *params)
    _check_document(chunker, text, chunker.chunk_text(text, "doc.md"))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=400), encoding=st.sampled_from(SUPPORTED_ENCODINGS))
def test_arbitrary_unicode_counts_are_exact(text: str, encoding: str) -> None:
    chunker = Chunker(encoding, 12, 3)
    _check_document(chunker, text, chunker.chunk_text(text, "doc.txt"))


_FOX = "The quick brown fox jumps over the lazy dog. "


def _doc(sections: int, paragraphs: int, sentence: str = _FOX) -> str:
    parts = ["# Guide\n\nIntro line.\n"]
    for s in range(sections):
        parts.append(f"\n## Section {s}\n")
        for p in range(paragraphs):
            parts.append("\n" + sentence * 6 + f"Paragraph {s}.{p} ends here.\n")
    return "".join(parts)


def test_cuts_prefer_headings_then_paragraphs() -> None:
    text = _doc(sections=6, paragraphs=3)
    chunker = Chunker("o200k_base", 256, 0)
    chunks = chunker.chunk_text(text, "guide.md")
    assert len(chunks) > 2
    for c in chunks[1:]:
        # every cut lands at a line start (a heading or a paragraph), never inside a sentence
        assert text[c.start - 1] == "\n"
    assert any(c.text.startswith("## Section") for c in chunks[1:])


def test_long_line_falls_back_to_sentences_then_tokens() -> None:
    sentences = "Alpha beta gamma delta. " * 80
    chunks = Chunker("o200k_base", 64, 0).chunk_text(sentences.strip() + "\n", "one-line.txt")
    assert all(c.text.startswith(" Alpha") for c in chunks[1:])
    words = "word " * 400
    chunks = Chunker("cl100k_base", 50, 5).chunk_text(words, "words.txt")
    assert len(chunks) > 8
    assert max(c.token_count for c in chunks) == 50


def test_overlap_is_in_tokens_and_consecutive_chunks_share_text() -> None:
    text = _doc(sections=3, paragraphs=4)
    enc = get_encoding("o200k_base")
    chunks = Chunker(enc, 128, 32).chunk_text(text, "guide.md")
    for prev, nxt in itertools.pairwise(chunks):
        shared = text[nxt.start : prev.end]
        assert 30 <= len(enc.encode(shared, disallowed_special=())) <= 33


def test_headings_breadcrumb() -> None:
    text = (
        "# Top\n\nintro\n\n## A\n\ntext a\n\n### A1\n\ntext a1\n\n## B\n\ntext b\n```\n# not a heading\n```\n"
    )
    chunks = Chunker("o200k_base", 6, 0).chunk_text(text, "t.md")
    crumbs = {c.text.split("\n")[0]: c.headings for c in chunks if c.text.startswith("#")}
    assert crumbs["# Top"] == ("Top",)
    assert crumbs["## A"] == ("Top", "A")
    assert crumbs["### A1"] == ("Top", "A", "A1")
    assert crumbs["## B"] == ("Top", "B")
    assert all(c.headings[-1] == "B" for c in chunks if c.start > text.index("## B"))


def test_ids_are_deterministic_and_depend_on_document_position_and_content() -> None:
    text = _doc(sections=2, paragraphs=2)
    first = Chunker("o200k_base", 64, 8).chunk_text(text, "a.md")
    again = Chunker("o200k_base", 64, 8).chunk_text(text, "a.md")
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    other = Chunker("o200k_base", 64, 8).chunk_text(text, "b.md")
    assert not {c.id for c in first} & {c.id for c in other}
    assert chunk_id("a.md", 0, 5, "hello") != chunk_id("a.md", 0, 5, "hellO")


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 0), ("   \n\n", 0), ("x", 1), ("short doc\n", 1)],
)
def test_tiny_documents(text: str, count: int) -> None:
    assert len(Chunker("o200k_base", 16, 4).chunk_text(text)) == count


def test_corpus_chunks_and_json_shape() -> None:
    corpus = load_corpus(corpus_dir("hr-handbook"))
    chunks = Chunker("cl100k_base", 256, 32).chunk_corpus(corpus)
    assert {c.document for c in chunks} == {d.path for d in corpus.documents}
    row = chunks[0].to_json()
    assert list(row) == ["id", "document", "index", "start", "end", "token_count", "text", "headings"]


@pytest.mark.parametrize(
    ("chunk_tokens", "overlap_tokens", "message"),
    [
        (0, 0, "chunk_tokens must be at least 1"),
        (64, 64, r"overlap_tokens \(64\) must be between 0 and chunk_tokens - 1 \(63\)"),
        (64, 100, "overlap_tokens"),
        (64, -1, "overlap_tokens"),
    ],
)
def test_bad_parameters(chunk_tokens: int, overlap_tokens: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Chunker("o200k_base", chunk_tokens, overlap_tokens)


def test_unknown_encoding() -> None:
    with pytest.raises(ConfigError, match="unknown tokenizer encoding 'p50k_base'"):
        Chunker("p50k_base", 64, 8)


def test_lone_surrogates_are_a_data_error() -> None:
    with pytest.raises(DataValidationError, match=r"bad\.md holds characters that are not valid Unicode"):
        Chunker("o200k_base", 16, 0).chunk_text("abc \ud800 def", "bad.md")
