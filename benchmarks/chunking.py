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

Each time is the best of ``--repeat`` rounds (wall time, or process CPU time with ``--cpu``); a round runs
every contender once, one after the other, after a ``gc.collect()``, so a busy machine slows all of them
alike rather than whichever ran during a burst. The script prints times, ratios to the raw encode and the
speed-up of modelshift over the others, plus how many chunks each made and the largest chunk in tokens
(re-counted with the same encoding), and then the targets of issue 5 with the measured figures:
modelshift within 1.5x of the raw encode (``modelshift/raw``) and at least 5x faster than both other
splitters (``langchain/modelshift``, ``semantic/modelshift``). Nothing that counts tokens exactly can beat
one raw encode, so a splitter that is itself only ``k`` x a raw encode can be beaten by at most ``k`` x; the
script prints that bound (``langchain/raw``, ``semantic/raw``) next to each speed-up target.
"""

from __future__ import annotations

import argparse
import gc
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


def corpus_sources() -> list[str]:
    """The example apps whose corpora the generated corpus copies, in order."""
    return [c.parts[-3] for c in sorted((REPO / "bundles").glob("*/shared/corpus"))]


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


def best_of_rounds(
    repeat: int, contenders: dict[str, Callable[[], int]], clock: Callable[[], float] = time.perf_counter
) -> tuple[dict[str, float], dict[str, int]]:
    """Best time of each contender over ``repeat`` rounds (each round runs every contender once, after a
    ``gc.collect()``), and each one's last result."""
    best = dict.fromkeys(contenders, float("inf"))
    results = dict.fromkeys(contenders, 0)
    for _ in range(repeat):
        for name, fn in contenders.items():
            gc.collect()
            start = clock()
            results[name] = fn()
            best[name] = min(best[name], clock() - start)
    return best, results


def targets(times: dict[str, float]) -> list[dict[str, object]]:
    """Issue 5's targets with the measured ratios, and the bound a raw encode puts on each speed-up."""
    raw, ours = times["raw encode"], times["modelshift"]
    rows: list[dict[str, object]] = [
        {
            "target": "modelshift/raw <= 1.5",
            "measured": round(ours / raw, 2),
            "met": ours / raw <= 1.5,
            "bound": None,
        }
    ]
    for name in [k for k in times if k not in ("raw encode", "modelshift")]:
        # no exact chunker beats one raw encode, so nothing can be faster than `name` by more than name/raw
        rows.append(
            {
                "target": f"{name}/modelshift >= 5",
                "measured": round(times[name] / ours, 2),
                "met": times[name] / ours >= 5,
                "bound": round(times[name] / raw, 2),
            }
        )
    return rows


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
    times, counts = best_of_rounds(repeat, dict(contenders), time.process_time if cpu else time.perf_counter)
    largest = {
        name: max((len(enc.encode_ordinary(t)) for t in out), default=0) for name, out in outputs.items()
    }
    return {
        "sources": corpus_sources(),
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
        "targets": targets(times),
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
    sources = result["sources"]
    assert isinstance(sources, list)
    print(
        f"corpus: {result['documents']} documents, {result['megabytes']} MB, {result['tokens']} tokens "
        f"(o200k_base) from {', '.join(sources)}; chunks {result['chunk_tokens']}/{result['overlap_tokens']} "
        f"tokens; best of {result['repeat']} rounds ({result['clock']})"
    )
    print(f"{'contender':<42}{'seconds':>9}{'x raw':>8}{'chunks':>8}{'largest':>9}{'modelshift is':>16}")
    for name, sec in seconds.items():
        speed = f"{speedups[name]}x faster" if name in speedups else ""
        print(
            f"{name:<42}{sec:>9.3f}{ratios[name]:>8.2f}{chunks.get(name, ''):>8}"
            f"{largest.get(name, ''):>9}{speed:>16}"
        )
    rows = result["targets"]
    assert isinstance(rows, list)
    print(f"raw encode: {seconds['raw encode']:.3f} s; targets (issue 5):")
    for row in rows:
        line = f"  {row['target']:<58} measured {row['measured']:>6}  {'met' if row['met'] else 'NOT met'}"
        if row["bound"] is not None:
            line += f"  (bound: it is {row['bound']}x a raw encode"
            line += ", so 5x is out of reach)" if row["bound"] < 5 else ")"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
