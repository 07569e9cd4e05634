"""``modelshift chunk``: writes chunks.jsonl, prints counts (text and --json), exits 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from modelshift.cli.chunk import register
from modelshift.grounding.corpus import load_corpus
from modelshift.grounding.output import read_chunks
from modelshift.grounding.tokenizers import get_encoding
from tests.grounding.conftest import corpus_dir


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """modelshift (test app: only the chunk command)."""

    register(app)
    return app


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), ["chunk", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("tokenizer", "size", "overlap"), [("o200k_base", 512, 64), ("cl100k_base", 128, 16)]
)
def test_writes_chunks_jsonl_and_json_counts(tmp_path: Path, tokenizer: str, size: int, overlap: int) -> None:
    corpus = corpus_dir("support-chat")
    out = tmp_path / "out" / "nested"
    code, stdout, _ = _run(
        str(corpus),
        "--tokenizer",
        tokenizer,
        "--chunk-tokens",
        str(size),
        "--overlap-tokens",
        str(overlap),
        "--out",
        str(out),
        "--json",
    )
    assert code == 0
    summary = json.loads(stdout)
    rows = [json.loads(line) for line in (out / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert set(rows[0]) >= {"id", "document", "start", "end", "token_count", "text", "headings"}
    docs = {d.path: d.text for d in load_corpus(corpus).documents}
    enc = get_encoding(tokenizer)
    for row in rows:
        assert docs[row["document"]][row["start"] : row["end"]] == row["text"]
        assert row["token_count"] == len(enc.encode(row["text"])) <= size
    counts = [r["token_count"] for r in rows]
    assert summary["documents"] == len(docs) == len({r["document"] for r in rows})
    assert summary["chunks"] == len(rows)
    assert summary["tokens"] == sum(counts)
    assert (summary["min_tokens"], summary["max_tokens"]) == (min(counts), max(counts))
    assert summary["mean_tokens"] == round(sum(counts) / len(counts), 1)
    assert summary["corpus_digest"] == load_corpus(corpus).digest
    assert [c.id for c in read_chunks(out / "chunks.jsonl")] == [r["id"] for r in rows]


def test_text_output_and_rerun_replaces_the_file(tmp_path: Path) -> None:
    args = (str(corpus_dir("hr-handbook")), "--chunk-tokens", "256", "--overlap-tokens", "32")
    code, stdout, _ = _run(*args, "--out", str(tmp_path))
    assert code == 0
    assert "13 documents ->" in stdout
    assert "chunks.jsonl" in stdout
    first = (tmp_path / "chunks.jsonl").read_bytes()
    assert _run(*args, "--out", str(tmp_path))[0] == 0
    assert (tmp_path / "chunks.jsonl").read_bytes() == first  # deterministic
    assert [p.name for p in tmp_path.iterdir()] == ["chunks.jsonl"]  # no temp file left behind


def _bad_rows(tmp_path: Path) -> list[tuple[list[str], str]]:
    good = str(corpus_dir("support-chat"))
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    latin = tmp_path / "latin"
    latin.mkdir()
    (latin / "doc.md").write_bytes("r\u00e9sum\u00e9".encode("latin-1"))
    out = str(tmp_path / "out")
    return [
        ([good, "--chunk-tokens", "64", "--overlap-tokens", "64", "--out", out], "overlap_tokens (64)"),
        ([good, "--chunk-tokens", "64", "--overlap-tokens", "65", "--out", out], "overlap_tokens (65)"),
        ([good, "--chunk-tokens", "0", "--overlap-tokens", "0", "--out", out], "chunk_tokens must be"),
        ([good, "--tokenizer", "gpt2", "--out", out], "unknown tokenizer encoding 'gpt2'"),
        ([str(tmp_path / "missing"), "--out", out], "does not exist"),
        ([str(empty), "--out", out], "holds no"),
        ([str(latin), "--out", out], "doc.md is not valid UTF-8"),
        ([good, "--out", str(a_file)], "cannot write"),
        ([good, "--out", str(a_file / "sub")], "cannot write"),
    ]


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    for args, message in _bad_rows(tmp_path):
        code, stdout, stderr = _run(*args)
        assert code == 2, (args, stdout, stderr)
        assert message in " ".join(stderr.split()), (args, stderr)
    assert not (tmp_path / "out").exists()


def test_missing_out_is_a_usage_error(tmp_path: Path) -> None:
    code, _, stderr = _run(str(corpus_dir("support-chat")))
    assert code == 2
    assert "--out" in stderr


def test_index_option_writes_a_reusable_local_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelshift.clock import utcnow
    from modelshift.grounding.index import LocalIndexStore
    from modelshift.settings import get_settings

    home = tmp_path / "home"
    monkeypatch.setenv("MODELSHIFT_HOME", str(home))
    get_settings.cache_clear()
    try:
        args = (
            str(corpus_dir("claims-assistant")),
            "--out",
            str(tmp_path / "out"),
            "--index",
            "claims",
            "--json",
        )
        code, stdout, stderr = _run(*args)
        assert code == 0, stderr
        first = json.loads(stdout)
        assert first["index_generation"].startswith("gen-")
        assert first["index_location"] == str(home / "indexes" / "claims" / f"{first['index_generation']}.db")
        code, stdout, _ = _run(*args)
        assert json.loads(stdout)["index_generation"] == first["index_generation"]
        store = LocalIndexStore(home, utcnow)
        infos = store.list_generations("claims")
        assert [g.generation for g in infos] == [first["index_generation"]]
        assert infos[0].chunks == first["chunks"]
        code, _, stderr = _run(
            str(corpus_dir("claims-assistant")), "--out", str(tmp_path / "o2"), "--index", "../x"
        )
        assert code == 2 and "app name" in stderr
    finally:
        get_settings.cache_clear()
