"""Chunk tables on disk (``chunks.jsonl``) and the counts the CLI and the plan print about them."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelshift.errors import ConfigError, DataValidationError
from modelshift.grounding.chunking import Chunk

CHUNKS_FILE = "chunks.jsonl"


@dataclass(frozen=True, slots=True)
class ChunkStats:
    """Counts over a chunk table: documents, chunks, tokens (overlap counted in each chunk), min/mean/max."""

    documents: int
    chunks: int
    tokens: int
    min_tokens: int
    mean_tokens: float
    max_tokens: int


def chunk_stats(chunks: list[Chunk], documents: int) -> ChunkStats:
    """Counts over ``chunks`` from ``documents`` documents (zeros when there are no chunks)."""
    counts = [c.token_count for c in chunks]
    return ChunkStats(
        documents=documents,
        chunks=len(counts),
        tokens=sum(counts),
        min_tokens=min(counts, default=0),
        mean_tokens=round(sum(counts) / len(counts), 1) if counts else 0.0,
        max_tokens=max(counts, default=0),
    )


def write_chunks(chunks: Iterable[Chunk], out_dir: Path) -> Path:
    """Write ``out_dir/chunks.jsonl`` (one JSON object per chunk) via a temp file and an atomic rename.

    A reader never sees half a file; an existing chunks.jsonl is replaced only once the new one is complete.
    Raises ConfigError naming the directory when it cannot be created or written.
    """
    target = out_dir / CHUNKS_FILE
    tmp_name: str | None = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".chunks-", suffix=".tmp", dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for chunk in chunks:
                fh.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
        os.replace(tmp_name, target)
    except OSError as exc:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write {target}: {exc.strerror or exc}; choose a writable --out directory",
            path=str(out_dir),
        ) from exc
    return target


def read_chunks(path: Path) -> list[Chunk]:
    """Read a chunks.jsonl written by :func:`write_chunks`; a bad line raises DataValidationError."""
    chunks: list[Chunk] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read chunk table {path}: {exc.strerror or exc}", path=str(path)) from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            chunks.append(
                Chunk(
                    id=str(row["id"]),
                    document=str(row["document"]),
                    index=int(row["index"]),
                    start=int(row["start"]),
                    end=int(row["end"]),
                    token_count=int(row["token_count"]),
                    text=str(row["text"]),
                    headings=tuple(str(h) for h in row.get("headings", [])),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DataValidationError(
                f"{path}:{number}: not a chunk row ({exc!r}); regenerate it with `modelshift chunk`",
                path=str(path),
                line=number,
            ) from exc
    return chunks
