"""benchmarks/chunking.py: a deterministic, sized corpus; a tiny run reports every contender."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import pytest

from tests.grounding.conftest import REPO


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_chunking", REPO / "benchmarks" / "chunking.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("mb", "doc_kb"), [(0.2, 0), (0.2, 32), (0.01, 0)])
def test_corpus_is_deterministic_and_big_enough(bench: ModuleType, mb: float, doc_kb: float) -> None:
    docs = bench.build_corpus(mb, doc_kb)
    assert docs == bench.build_corpus(mb, doc_kb)
    size = sum(len(t.encode("utf-8")) for _, t in docs)
    assert size >= mb * 1_000_000
    assert len({n for n, _ in docs}) == len(docs)
    if doc_kb:
        assert all(len(t) >= doc_kb * 1000 for _, t in docs[:-1])


def test_copies_differ_from_the_originals(bench: ModuleType) -> None:
    docs = bench.build_corpus(0.5)
    by_name: dict[str, set[str]] = {}
    for name, text in docs:
        by_name.setdefault(name.split("/", 1)[1], set()).add(text)
    assert any(len(texts) > 1 for texts in by_name.values())


def test_tiny_run_measures_every_contender(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--mb", "0.05", "--repeat", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    names = {"raw encode", "modelshift", "langchain", "semantic-text-splitter (callback)"}
    assert names <= set(result["seconds"])
    assert result["largest_chunk_tokens"]["modelshift"] <= 512
    assert result["chunks"]["modelshift"] > 0
    assert (
        bench.main(["--mb", "0.02", "--repeat", "1", "--chunk-tokens", "128", "--overlap-tokens", "16"]) == 0
    )
    table = capsys.readouterr().out
    assert "x raw" in table and "modelshift" in table
