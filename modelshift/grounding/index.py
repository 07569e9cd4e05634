"""Index generations: searchable chunk tables, one immutable generation per (corpus, tokenizer, chunking).

A generation id is derived from the corpus digest, the tokenizer, the chunk parameters and the chunker
version, so re-running a migration reuses the generation it built before instead of writing a second one.
The local default keeps each generation in its own SQLite file with an FTS5 (BM25) index at
``<home>/indexes/<app>/<generation>.db``. A new generation is written to a temp file next to the others and
linked into place only when complete; an existing file is never written over, so the baseline keeps
serving from its generation while the candidate's is built beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

from modelshift.clock import Clock
from modelshift.errors import ConfigError, NotFoundError, StateError
from modelshift.grounding.chunking import Chunk, Chunker
from modelshift.grounding.corpus import Corpus

#: bump when the chunker's cuts change, so old generations are not reused for new chunking
CHUNKER_VERSION = "1"
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_GENERATION = re.compile(r"^gen-[0-9a-f]{16}$")
_WORD = re.compile(r"\w+", re.UNICODE)
# Words that match nearly every chunk; dropping them keeps OR queries fast without changing BM25's ranking
# much (their IDF is near zero anyway).
_STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i", "if",
        "in", "is", "it", "my", "of", "on", "or", "so", "that", "the", "this", "to", "we", "what", "when",
        "where", "which", "who", "why", "will", "with", "you", "your",
    }
)  # fmt: skip


#: a check run on a generation's chunks before it is written; it raises (DataValidationError) to stop it
ChunkCheck = Callable[[list[Chunk]], None]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the chunk, its document and its score (higher is better)."""

    chunk_id: str
    document: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class GenerationInfo:
    """What a generation was built from and when."""

    app: str
    generation: str
    corpus_digest: str
    tokenizer: str
    chunk_tokens: int
    overlap_tokens: int
    documents: int
    chunks: int
    created_at: str
    location: str


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a query with the ``top_k`` best chunks."""

    def search(self, query: str, top_k: int) -> list[Hit]:
        """The ``top_k`` best chunks for ``query``, best first."""
        ...


class IndexBackend(Protocol):
    """Where generations live: the local SQLite store or Azure AI Search."""

    def build(
        self, app: str, corpus: Corpus, chunker: Chunker, *, validate: ChunkCheck | None = None
    ) -> GenerationInfo:
        """Chunk ``corpus`` and write its generation, or return the existing one with the same id.

        ``validate`` sees the chunks before anything is written; an error it raises stops the build.
        """
        ...

    def open(self, app: str, generation: str) -> Retriever:
        """A retriever over one generation."""
        ...

    def list_generations(self, app: str) -> list[GenerationInfo]:
        """Every generation of ``app``, oldest first."""
        ...


def generation_id(corpus_digest: str, tokenizer: str, chunk_tokens: int, overlap_tokens: int) -> str:
    """The generation id for a corpus chunked one way: ``gen-`` and 16 hex digits."""
    key = f"{corpus_digest}\0{tokenizer}\0{chunk_tokens}\0{overlap_tokens}\0chunker-{CHUNKER_VERSION}"
    return "gen-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def check_app_name(app: str) -> str:
    """``app`` if it is usable as a folder name; ConfigError otherwise."""
    if not _APP_NAME.match(app):
        raise ConfigError(
            f"app name {app!r} must be letters, digits, '.', '_' or '-' (used as a folder name)"
        )
    return app


def fts_query(query: str) -> str:
    """An FTS5 MATCH expression: the query's words (stopwords dropped), quoted, OR-ed; '' if none."""
    words: list[str] = []
    for w in _WORD.findall(query.lower()):
        if w not in _STOPWORDS and w not in words:
            words.append(w)
    return " OR ".join(f'"{w}"' for w in words)


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    document TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    headings TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, headings, tokenize = 'porter unicode61');
"""


class LocalGeneration:
    """A read-only SQLite generation; a Retriever. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            self.info = _read_info(self._db, path)
        except sqlite3.Error as exc:
            raise StateError(
                f"index generation {path} cannot be read ({exc}); delete the file and rebuild it",
                path=str(path),
            ) from exc

    def search(self, query: str, top_k: int) -> list[Hit]:
        """BM25 over chunk text (and, at a lower weight, its headings); best first."""
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (got {top_k})")
        match = fts_query(query)
        if not match:
            return []
        try:
            rows = self._db.execute(
                "SELECT c.id, c.document, c.text, bm25(chunks_fts, 1.0, 0.5) AS rank "
                "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ? ORDER BY rank, c.rowid LIMIT ?",
                (match, top_k),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StateError(
                f"search in index generation {self.path} failed: {exc}", path=str(self.path)
            ) from exc
        # FTS5's bm25() is negative (more negative = better); flip it so higher is better like Azure's score
        return [Hit(chunk_id=r[0], document=r[1], text=r[2], score=-float(r[3])) for r in rows]

    def chunks(self) -> list[Chunk]:
        """Every chunk of the generation in document order."""
        rows = self._db.execute(
            'SELECT id, document, idx, start, "end", token_count, text, headings FROM chunks ORDER BY rowid'
        ).fetchall()
        return [
            Chunk(
                id=r[0],
                document=r[1],
                index=r[2],
                start=r[3],
                end=r[4],
                token_count=r[5],
                text=r[6],
                headings=tuple(json.loads(r[7])),
            )
            for r in rows
        ]

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> LocalGeneration:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _read_info(db: sqlite3.Connection, path: Path) -> GenerationInfo:
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    try:
        return GenerationInfo(
            app=meta["app"],
            generation=meta["generation"],
            corpus_digest=meta["corpus_digest"],
            tokenizer=meta["tokenizer"],
            chunk_tokens=int(meta["chunk_tokens"]),
            overlap_tokens=int(meta["overlap_tokens"]),
            documents=int(meta["documents"]),
            chunks=int(meta["chunks"]),
            created_at=meta["created_at"],
            location=str(path),
        )
    except (KeyError, ValueError) as exc:
        raise StateError(
            f"index generation {path} has incomplete metadata ({exc!r}); delete the file and rebuild it",
            path=str(path),
        ) from exc


class LocalIndexStore:
    """Generations as SQLite FTS5 files under ``<home>/indexes/<app>/``; an IndexBackend."""

    def __init__(self, home: Path, clock: Clock) -> None:
        self.root = Path(home) / "indexes"
        self.clock = clock

    def path_for(self, app: str, generation: str) -> Path:
        """Where generation ``generation`` of ``app`` lives (whether or not it exists)."""
        if not _GENERATION.match(generation):
            raise ConfigError(f"{generation!r} is not a generation id (gen- and 16 hex digits)")
        return self.root / check_app_name(app) / f"{generation}.db"

    def build(
        self, app: str, corpus: Corpus, chunker: Chunker, *, validate: ChunkCheck | None = None
    ) -> GenerationInfo:
        """Chunk ``corpus`` and write its generation; an existing generation with the same id is reused.

        ``validate`` (e.g. the chunk-table expectation suite) sees the chunks before anything is written.
        """
        gen = generation_id(
            corpus.digest, chunker.encoding.name, chunker.chunk_tokens, chunker.overlap_tokens
        )
        path = self.path_for(app, gen)
        if path.exists():
            with LocalGeneration(path) as existing:
                return existing.info
        chunks = chunker.chunk_corpus(corpus)
        if validate is not None:
            validate(chunks)
        meta = {
            "app": app,
            "generation": gen,
            "corpus_digest": corpus.digest,
            "tokenizer": chunker.encoding.name,
            "chunk_tokens": str(chunker.chunk_tokens),
            "overlap_tokens": str(chunker.overlap_tokens),
            "chunker_version": CHUNKER_VERSION,
            "documents": str(len(corpus.documents)),
            "chunks": str(len(chunks)),
            "created_at": self.clock().isoformat(),
        }
        self._write(path, chunks, meta)
        with LocalGeneration(path) as built:
            return built.info

    def _write(self, path: Path, chunks: Sequence[Chunk], meta: dict[str, str]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create index folder {path.parent}: {exc.strerror or exc}; check MODELSHIFT_HOME",
                path=str(path.parent),
            ) from exc
        tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex}.tmp"
        try:
            db = sqlite3.connect(tmp)
            try:
                db.executescript(_SCHEMA)
                db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
                db.executemany(
                    "INSERT INTO chunks "
                    '(rowid, id, document, idx, start, "end", token_count, headings, text) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _rows(chunks),
                )
                db.executemany(
                    "INSERT INTO chunks_fts (rowid, text, headings) VALUES (?, ?, ?)",
                    ((i, c.text, " / ".join(c.headings)) for i, c in enumerate(chunks, start=1)),
                )
                db.commit()
            finally:
                db.close()
            # link, not rename: a generation that appeared meanwhile (same id, same content) is kept
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(
                f"writing index generation {path} failed ({exc}); nothing was replaced, retry the build",
                path=str(path),
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def open(self, app: str, generation: str) -> LocalGeneration:
        """The generation ``generation`` of ``app``; NotFoundError names the generations that exist."""
        path = self.path_for(app, generation)
        if not path.exists():
            known = ", ".join(g.generation for g in self.list_generations(app)) or "none"
            raise NotFoundError(
                f"index generation {generation} of {app} does not exist (known: {known}); "
                "build it with the prepare stage or `modelshift chunk`",
                app=app,
                generation=generation,
            )
        return LocalGeneration(path)

    def list_generations(self, app: str) -> list[GenerationInfo]:
        """Every complete generation of ``app``, oldest first (unfinished builds' temp files are skipped)."""
        folder = self.root / check_app_name(app)
        if not folder.is_dir():
            return []
        infos: list[GenerationInfo] = []
        for path in sorted(folder.glob("gen-*.db")):
            with LocalGeneration(path) as gen:
                infos.append(gen.info)
        return sorted(infos, key=lambda i: (i.created_at, i.generation))


def _rows(chunks: Iterable[Chunk]) -> Iterable[tuple[object, ...]]:
    for rowid, c in enumerate(chunks, start=1):
        headings = json.dumps(list(c.headings), ensure_ascii=False)
        yield (rowid, c.id, c.document, c.index, c.start, c.end, c.token_count, headings, c.text)
