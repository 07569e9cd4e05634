"""Chunking benchmark: modelshift's structure-aware chunker against the splitters users pick today.

Run: ``python benchmarks/chunking.py [--mb 4.25] [--doc-kb 0] [--repeat 3] [--chunk-tokens 512]
[--overlap-tokens 64] [--cpu] [--json]``

The corpus is generated deterministically from the example corpora (``bundles/*/shared/corpus``): each copy
of a document gets a few words swapped by a seeded RNG, until the total passes ``--mb`` megabytes. Every
contender splits the same documents, one call per document, with the same o200k_base encoding object
(modelshift's offline build; it is registered in tiktoken's registry so that langchain's
``from_tiktoken_encoder`` picks up that very object instead of downloading one):

* ``raw encode``   one ``enc.encode_ordinary`` per document: the floor for anything that counts tokens;
* ``modelshift``   ``Chunker(...).iter_chunks``: full Chunk objects (text, offsets, ids, headings);
* ``langchain``    ``RecursiveCharacterTextSplitter.from_tiktoken_encoder(...).split_text``;
* ``semantic-text-splitter``  ``MarkdownSplitter.from_callback(len(enc.encode_ordinary(...)))``, and
  for reference its ``from_tiktoken_model("gpt-4o")`` (its own embedded Rust tiktoken, same vocabulary).

Each time is the best of ``--repeat`` runs (wall time, or process CPU time with ``--cpu``). The script
prints times, ratios to the raw encode and the speed-up of modelshift over the others, plus how many chunks
each made and the largest chunk in tokens (re-counted with the same encoding). Target (issue 5):
modelshift within 1.5x of the raw encode and at least 5x faster than both other splitters.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import tiktoken
import tiktoken.registry

from modelshift.grounding.chunking import Chunker
from modelshift.grounding.corpus import load_corpus
from modelshift.grounding.tokenizers import get_encoding

REPO = Path(__file__).resolve().parents[1]
_WORDS = re.compile(r"\b[a-z]{5,}\b")
_SWAPS = (
    "backup",
    "policy",
    "claim",
    "device",
    "manager",
    "payment",
    "account",
    "report",
    "region",
    "travel",
)

Docs = list[tuple[str, str]]


def build_corpus(megabytes: float, doc_kb: float = 0, seed: int = 5) -> Docs:
    """Example documents, copied with a few seeded word swaps per copy, until ``megabytes`` MB of text.

    With ``doc_kb`` > 0, consecutive documents are joined (blank line between) into documents of about
    ``doc_kb`` KB, like long manuals; 0 keeps the example documents' own sizes (2-6 KB).
    """
    sources: Docs = []
    for corpus in sorted((REPO / "bundles").glob("*/shared/corpus")):
        sources.extend((f"{corpus.parts[-3]}/{d.path}", d.text) for d in load_corpus(corpus).documents)
    if not sources:
        raise SystemExit("no example corpora under bundles/*/shared/corpus")
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    docs: Docs = []
    size = copy = 0
    while size < target:
        for name, text in sources:
            # swap ~1 in 12 long words so copies are not byte-identical (no contender can exploit repeats)
            varied = _WORDS.sub(lambda m: rng.choice(_SWAPS) if rng.random() < 1 / 12 else m.group(0), text)
            docs.append((f"copy{copy:03d}/{name}", varied))
            size += len(varied.encode("utf-8"))
            if size >= target:
                break
        copy += 1
    if doc_kb <= 0:
        return docs
    merged: Docs = []
    parts: list[str] = []
    for _, text in docs:
        parts.append(text)
        if sum(len(p) for p in parts) >= doc_kb * 1000:
            merged.append((f"manual{len(merged):04d}.md", "\n\n".join(parts)))
            parts = []
    if parts:
        merged.append((f"manual{len(merged):04d}.md", "\n\n".join(parts)))
    return merged


def best_of(
    repeat: int, fn: Callable[[], int], clock: Callable[[], float] = time.perf_counter
) -> tuple[float, int]:
    """Best time of ``repeat`` runs of ``fn`` on ``clock`` and the last run's result (a chunk count)."""
    best = float("inf")
    result = 0
    for _ in range(repeat):
        start = clock()
        result = fn()
        best = min(best, clock() - start)
    return best, result


def run(
    megabytes: float,
    repeat: int,
    chunk_tokens: int,
    overlap_tokens: int,
    doc_kb: float = 0,
    cpu: bool = False,
) -> dict[str, object]:
    """Run every contender on the generated corpus; return the measurements."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from semantic_text_splitter import MarkdownSplitter

    enc = get_encoding("o200k_base")
    # make tiktoken.get_encoding("o200k_base") return this same offline object (langchain calls it)
    tiktoken.registry.ENCODINGS["o200k_base"] = enc
    docs = build_corpus(megabytes, doc_kb)
    texts = [t for _, t in docs]
    total_bytes = sum(len(t.encode("utf-8")) for t in texts)

    chunker = Chunker(enc, chunk_tokens, overlap_tokens)
    langchain = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name="o200k_base", chunk_size=chunk_tokens, chunk_overlap=overlap_tokens
    )
    semantic_cb = MarkdownSplitter.from_callback(
        lambda s: len(enc.encode_ordinary(s)), chunk_tokens, overlap_tokens
    )
    semantic_rs = MarkdownSplitter.from_tiktoken_model("gpt-4o", chunk_tokens, overlap_tokens)

    outputs: dict[str, list[str]] = {}

    def raw() -> int:
        return sum(len(enc.encode_ordinary(t)) for t in texts)

    def ours() -> int:
        chunks = list(chunker.iter_chunks(docs))
        outputs["modelshift"] = [c.text for c in chunks]
        return len(chunks)

    def lang() -> int:
        out = [c for t in texts for c in langchain.split_text(t)]
        outputs["langchain"] = out
        return len(out)

    def sem_cb() -> int:
        out = [c for t in texts for c in semantic_cb.chunks(t)]
        outputs["semantic-text-splitter (callback)"] = out
        return len(out)

    def sem_rs() -> int:
        out = [c for t in texts for c in semantic_rs.chunks(t)]
        outputs["semantic-text-splitter (its tiktoken-rs)"] = out
        return len(out)

    raw()  # warm-up: encoding tables, vocab tables, page cache
    ours()
    contenders = [
        ("raw encode", raw),
        ("modelshift", ours),
        ("langchain", lang),
        ("semantic-text-splitter (callback)", sem_cb),
        ("semantic-text-splitter (its tiktoken-rs)", sem_rs),
    ]
    times: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, fn in contenders:
        times[name], counts[name] = best_of(repeat, fn, time.process_time if cpu else time.perf_counter)
    largest = {
        name: max((len(enc.encode_ordinary(t)) for t in out), default=0) for name, out in outputs.items()
    }
    return {
        "documents": len(docs),
        "megabytes": round(total_bytes / 1_000_000, 2),
        "tokens": counts["raw encode"],
        "chunk_tokens": chunk_tokens,
        "overlap_tokens": overlap_tokens,
        "repeat": repeat,
        "clock": "process CPU time" if cpu else "wall time",
        "seconds": {k: round(v, 4) for k, v in times.items()},
        "ratio_to_raw": {k: round(v / times["raw encode"], 2) for k, v in times.items()},
        "modelshift_speedup": {
            k: round(v / times["modelshift"], 1)
            for k, v in times.items()
            if k not in ("raw encode", "modelshift")
        },
        "chunks": {k: v for k, v in counts.items() if k != "raw encode"},
        "largest_chunk_tokens": largest,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--mb", type=float, default=4.25, help="corpus size in MB (default 4.25)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender; the best counts")
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--overlap-tokens", type=int, default=64)
    parser.add_argument(
        "--doc-kb", type=float, default=0, help="join documents into ~N KB ones (0: keep the examples' sizes)"
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time process CPU instead of wall time (steadier on a shared, busy machine; all are 1 thread)",
    )
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args(argv)
    result = run(args.mb, max(1, args.repeat), args.chunk_tokens, args.overlap_tokens, args.doc_kb, args.cpu)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    seconds = result["seconds"]
    ratios = result["ratio_to_raw"]
    speedups = result["modelshift_speedup"]
    chunks = result["chunks"]
    largest = result["largest_chunk_tokens"]
    assert isinstance(seconds, dict) and isinstance(ratios, dict)
    assert isinstance(speedups, dict) and isinstance(chunks, dict) and isinstance(largest, dict)
    print(
        f"corpus: {result['documents']} documents, {result['megabytes']} MB, {result['tokens']} tokens "
        f"(o200k_base); chunks {result['chunk_tokens']}/{result['overlap_tokens']} tokens; "
        f"best of {result['repeat']} ({result['clock']})"
    )
    print(f"{'contender':<42}{'seconds':>9}{'x raw':>8}{'chunks':>8}{'largest':>9}{'modelshift is':>16}")
    for name, sec in seconds.items():
        speed = f"{speedups[name]}x faster" if name in speedups else ""
        print(
            f"{name:<42}{sec:>9.3f}{ratios[name]:>8.2f}{chunks.get(name, ''):>8}"
            f"{largest.get(name, ''):>9}{speed:>16}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
