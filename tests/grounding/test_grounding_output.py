"""chunks.jsonl round trip, counts, and the errors a broken or unreadable table gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshift.errors import ConfigError, DataValidationError
from modelshift.grounding.chunking import Chunker
from modelshift.grounding.output import chunk_stats, read_chunks, write_chunks


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    chunks = Chunker("o200k_base", 16, 4).chunk_text("# T\n\n" + "word " * 60, "t.md")
    path = write_chunks(chunks, tmp_path)
    assert read_chunks(path) == chunks


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([], (0, 0, 0, 0.0, 0)),
        ([5], (1, 5, 5, 5.0, 5)),
        ([3, 4, 4], (3, 11, 3, 3.7, 4)),
    ],
)
def test_stats(counts: list[int], expected: tuple[int, int, int, float, int]) -> None:
    base = Chunker("o200k_base", 16, 0).chunk_text("x", "x.md")[0]
    chunks = [base.__class__(**{**base.to_json(), "headings": (), "token_count": n}) for n in counts]
    s = chunk_stats(chunks, documents=2)
    assert s.documents == 2
    assert (s.chunks, s.tokens, s.min_tokens, s.mean_tokens, s.max_tokens) == expected


@pytest.mark.parametrize("line", ['{"id": "x"}', "not json", '{"id": 1, "document": "d", "index": "z"}'])
def test_bad_row_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "chunks.jsonl"
    path.write_text("\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"chunks\.jsonl:2: not a chunk row"):
        read_chunks(path)


def test_missing_table_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read chunk table"):
        read_chunks(tmp_path / "nope.jsonl")
