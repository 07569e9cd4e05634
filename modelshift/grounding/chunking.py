"""The structure-aware chunker: tokenize each document once, cut at headings, paragraphs, lines, sentences.

How it stays exact and fast. tiktoken splits text with a regex into pieces and runs BPE inside each piece,
so ``encode(a + b) == encode(a) + encode(b)`` whenever no piece can span the seam and no piece before the
seam looks past it. Checking the cl100k_base and o200k_base patterns alternative by alternative, that holds
at two kinds of seams we call *safe points*:

* a line start: ``a`` ends with ``"\\n"`` and ``b`` starts with a character that is neither whitespace nor
  ``"/"`` (o200k lets punctuation swallow a following ``[\\r\\n/]*``, so ``"/"`` is excluded);
* a sentence end: ``a`` ends with ``.``, ``!`` or ``?`` and ``b`` starts with a space and a non-space
  (punctuation pieces stop at whitespace, letter pieces take at most one leading non-letter).

Headings (``# ...`` lines) and paragraph starts are line starts, so every structural cut is a safe point:
the document's token list sliced between two safe points is exactly what ``encode`` gives for that span of
text. Only cuts that are not safe points (a chunk start inside a line because of the token overlap, or a
hard cut in a line longer than a chunk) are re-encoded, and only up to the nearest safe point inside the
chunk; a chunk whose re-encoding is longer than the limit is shrunk by a token until it fits.
Token counts are those of ``encoding.encode(text, disallowed_special=())`` (special-token strings in a
document are ordinary text, as in :func:`modelshift.grounding.tokenizers.count_tokens`).
"""

from __future__ import annotations

import bisect
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tiktoken

from modelshift.errors import ConfigError, DataValidationError
from modelshift.grounding.corpus import Corpus
from modelshift.grounding.tokenizers import get_encoding

# Headings for breadcrumbs; the pattern starts with a literal so `re` can skip ahead quickly.
_HEADING = re.compile(r"\n(#{1,6})[ \t]+([^\n]*)")
_FIRST_HEADING = re.compile(r"(#{1,6})[ \t]+([^\n]*)")
_FENCE = re.compile(r"(?ms)^(```|~~~).*?^\1")
# Cut levels, best first; each match's end is a safe point (see the module docstring).
_LEVELS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\n(?=#{1,6}[ \t])"),  # a heading line
    re.compile(r"\n[ \t]*\n(?=[^\s/])"),  # a paragraph after a blank line
    re.compile(r"\n(?=[^\s/])"),  # any line (list items, table rows)
    re.compile(r"[.!?](?= \S)"),  # a sentence end inside a line
)
_SAFE = re.compile(r"\n(?=[^\s/])|[.!?](?= \S)")
# _NONES[level]: the levels below ``level`` that a heading of ``level`` clears
_NONES: tuple[list[None], ...] = tuple([None] * (6 - level) for level in range(7))

IntArray = npt.NDArray[np.int64]
_NO_OFFSETS: IntArray = np.zeros(1, dtype=np.int64)  # a one-chunk document needs none


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: ``text == document_text[start:end]`` and ``token_count == len(encode(text))``."""

    id: str
    document: str
    index: int
    start: int
    end: int
    token_count: int
    text: str
    headings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The chunk as a JSON object (one line of chunks.jsonl)."""
        return {
            "id": self.id,
            "document": self.document,
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "token_count": self.token_count,
            "text": self.text,
            "headings": list(self.headings),
        }


def chunk_id(document: str, start: int, end: int, text: str) -> str:
    """Deterministic chunk id from (document, position, content hash): 24 hex digits."""
    return hashlib.sha256(f"{document}\0{start}\0{end}\0{text}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class _VocabTables:
    nchars: npt.NDArray[np.int64]  # characters a token starts (its UTF-8 lead bytes)
    lead: npt.NDArray[np.bool_]  # the token's first byte starts a character


_tables: dict[str, _VocabTables] = {}
_tables_lock = threading.Lock()


def _vocab_tables(enc: tiktoken.Encoding) -> _VocabTables:
    with _tables_lock:
        cached = _tables.get(enc.name)
        if cached is not None:
            return cached
        size = enc.max_token_value + 1
        pieces: list[bytes] = []
        for token in range(size):
            try:
                pieces.append(enc.decode_single_token_bytes(token))
            except KeyError:  # holes in the id space (between ordinary and special tokens)
                pieces.append(b"")
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=size)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        flat = np.frombuffer(b"".join(pieces), dtype=np.uint8)
        is_lead = (flat & 0xC0) != 0x80
        cum = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(is_lead, dtype=np.int64)])
        nchars = cum[ends] - cum[starts]
        lead = np.ones(size, dtype=np.bool_)
        nonempty = lengths > 0
        lead[nonempty] = is_lead[starts[nonempty]]
        tables = _VocabTables(nchars=nchars, lead=lead)
        _tables[enc.name] = tables
        return tables


class Chunker:
    """Splits documents into chunks of at most ``chunk_tokens`` tokens overlapping by ``overlap_tokens``."""

    def __init__(self, encoding: str | tiktoken.Encoding, chunk_tokens: int, overlap_tokens: int) -> None:
        if chunk_tokens < 1:
            raise ConfigError(f"chunk_tokens must be at least 1 (got {chunk_tokens})")
        if overlap_tokens < 0 or overlap_tokens >= chunk_tokens:
            raise ConfigError(
                f"overlap_tokens ({overlap_tokens}) must be between 0 and chunk_tokens - 1 "
                f"({chunk_tokens - 1}); lower --overlap-tokens or raise --chunk-tokens"
            )
        self.encoding = get_encoding(encoding) if isinstance(encoding, str) else encoding
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self._vocab = _vocab_tables(self.encoding)

    def count(self, text: str) -> int:
        """Token count of ``text`` as this chunker measures it."""
        return len(self.encoding.encode_ordinary(text))

    def chunk_corpus(self, corpus: Corpus) -> list[Chunk]:
        """Chunks of every document of ``corpus``, in document order."""
        return list(self.iter_chunks((d.path, d.text) for d in corpus.documents))

    def iter_chunks(self, documents: Iterable[tuple[str, str]]) -> Iterator[Chunk]:
        """Chunks of each ``(name, text)`` pair, in order."""
        for name, text in documents:
            yield from self.chunk_text(text, name)

    def chunk_text(self, text: str, document: str = "") -> list[Chunk]:
        """Chunks of one document; an empty or whitespace-only document has none."""
        if not text.strip():
            return []
        return _DocumentSplit(self, text, document).run()


class _DocumentSplit:
    """The state of splitting one document (kept out of Chunker so a Chunker can be shared by threads).

    Per document: one ``encode`` and, when the document needs more than one chunk, one vectorised pass that
    turns the tokens into character offsets (a cumulative sum over a per-token character table). Every cut
    is then a ``searchsorted`` on those offsets plus a regex search in a window of the text; no loop runs
    over tokens, and nothing is re-encoded except the few tokens before the first safe point of a chunk
    that starts inside a line (the overlap).
    """

    __slots__ = (
        "_fence_starts",
        "_levels",
        "_path",
        "_scanned",
        "c",
        "document",
        "fences",
        "lead",
        "length",
        "n",
        "starts",
        "text",
        "tokens",
    )

    def __init__(self, chunker: Chunker, text: str, document: str) -> None:
        self.c = chunker
        self.text = text
        self.length = len(text)
        self.document = document
        try:
            tokens = chunker.encoding.encode_to_numpy(text, disallowed_special=())
        except UnicodeEncodeError as exc:  # lone surrogates: not text any model could be sent
            raise DataValidationError(
                f"{document or 'document'} holds characters that are not valid Unicode text "
                f"(position {exc.start}); fix its encoding",
                document=document,
            ) from None
        self.tokens = tokens
        self.n = n = int(tokens.shape[0])
        vocab = chunker._vocab
        self.lead = vocab.lead
        # char offset of each token = characters started before it; a token holding only the tail of a
        # multi-byte character shares its offset with the next token and is never a cut point. A document
        # that fits one chunk needs no offsets (its only cuts are 0 and len(text)).
        self.starts: IntArray = _NO_OFFSETS
        if n > chunker.chunk_tokens:
            starts = np.empty(n + 1, dtype=np.int64)
            starts[0] = 0
            vocab.nchars.take(tokens).cumsum(out=starts[1:])
            if int(starts[-1]) != self.length:  # pragma: no cover - would mean the tables are wrong
                raise AssertionError(f"{document}: token offsets end at {starts[-1]}, not {self.length}")
            self.starts = starts
        # one-character probes first: most documents hold no backtick or tilde at all
        has_fence = ("`" in text and "```" in text) or ("~" in text and "~~~" in text)
        self.fences = [(m.start(), m.end()) for m in _FENCE.finditer(text)] if has_fence else []
        self._fence_starts = [a for a, _ in self.fences]
        # breadcrumbs are built while chunking: chunk starts only grow, so headings are consumed in order
        self._scanned = -1  # headings whose "\n" lies before this index are applied (-1: nothing read yet)
        self._levels: list[str | None] = [None] * 7  # raw title per heading level 1..6
        self._path: tuple[str, ...] = ()

    # -- positions -------------------------------------------------------------------------------------

    def _is_lead(self, t: int) -> bool:
        return t >= self.n or bool(self.lead.item(self.tokens.item(t)))

    def _char(self, t: int) -> int:
        return int(self.starts.item(t))

    def _token_at(self, c: int) -> int | None:
        """The token that starts exactly at character ``c``, if one does."""
        starts = self.starts
        t = int(starts.searchsorted(c, side="left"))
        while t < self.n and not self._is_lead(t):
            t += 1
        return t if t <= self.n and starts.item(t) == c else None

    def _in_fence(self, c: int) -> bool:
        # fences do not overlap, so only the last one starting at or before c can hold it
        i = bisect.bisect_right(self._fence_starts, c) - 1
        return i >= 0 and c < self.fences[i][1]

    def _is_safe(self, t: int) -> bool:
        """Whether token ``t`` starts at a safe point (a seam ``encode`` splits cleanly)."""
        if t <= 0 or t >= self.n:
            return True
        c = self.starts.item(t)
        text = self.text
        prev, cur = text[c - 1], text[c]
        if prev == "\n":
            return not cur.isspace() and cur != "/"
        if prev in ".!?":
            return cur == " " and c + 1 < self.length and not text[c + 1].isspace()
        return False

    def _safe_points(self, c_from: int, c_to: int) -> list[int]:
        """Tokens at safe points strictly between characters ``c_from`` and ``c_to``."""
        out: list[int] = []
        for m in _SAFE.finditer(self.text, c_from, min(self.length, c_to + 1)):
            p = m.end()
            if c_from < p < c_to:
                t = self._token_at(p)
                if t is not None:
                    out.append(t)
        return out

    def _first_safe_point(self, c_from: int, c_to: int) -> int | None:
        """The first token at a safe point strictly between characters ``c_from`` and ``c_to``."""
        for m in _SAFE.finditer(self.text, c_from, min(self.length, c_to + 1)):
            p = m.end()
            if p >= c_to:
                return None
            if p > c_from:
                t = self._token_at(p)
                if t is not None:
                    return t
        return None

    # -- counting and cutting --------------------------------------------------------------------------

    def _encode_len(self, a: int, b: int) -> int:
        return len(self.c.encoding.encode_ordinary(self.text[self._char(a) : self._char(b)]))

    def exact_count(self, a: int, b: int) -> int:
        """Tokens of ``encode(text[start(a):start(b)])``, re-encoding only up to the nearest safe points."""
        a_safe, b_safe = self._is_safe(a), self._is_safe(b)
        if a_safe and b_safe:
            return b - a
        ca, cb = self._char(a), self._char(b)
        if b_safe:  # the common case, a chunk starting inside a line: re-encode up to its first safe point
            q = self._first_safe_point(ca, cb)
            return self._encode_len(a, b) if q is None else self._encode_len(a, q) + (b - q)
        inner = self._safe_points(ca, cb)
        if not inner:
            return self._encode_len(a, b)
        q1, ql = inner[0], inner[-1]
        head = q1 - a if a_safe else self._encode_len(a, q1)
        return head + (ql - q1) + self._encode_len(ql, b)

    def _best_cut(self, a: int) -> int:
        limit = self.c.chunk_tokens
        hi = a + limit
        lo = a + max(limit // 2, self.c.overlap_tokens + 1)
        c_lo, c_hi = self._char(lo), self._char(hi)
        text = self.text
        w_from, w_to = max(0, c_lo - 1), min(self.length, c_hi + 2)
        for level, pattern in enumerate(_LEVELS):
            best: int | None = None
            for m in pattern.finditer(text, w_from, w_to):
                p = m.end()
                if c_lo <= p <= c_hi and not (level == 0 and self.fences and self._in_fence(p)):
                    best = p
            if best is not None:
                t = self._token_at(best)
                if t is not None and lo <= t <= hi:
                    return t
        # no structure in reach: the last token in reach that starts a character
        return self._previous_lead(hi + 1)

    def _previous_lead(self, b: int) -> int:
        t = b - 1
        while t > 0 and not self._is_lead(t):
            t -= 1
        return t

    def _next_lead(self, t: int) -> int:
        while t < self.n and not self._is_lead(t):
            t += 1
        return t

    def run(self) -> list[Chunk]:
        """Cut the document into chunks."""
        limit, overlap = self.c.chunk_tokens, self.c.overlap_tokens
        n = self.n
        if n <= limit:  # one chunk: the whole document, counted by the one encode
            return [self._make(0, 0, self.length, n)]
        chunks: list[Chunk] = []
        a = prev_end = 0
        while a < n:
            b = n if n - a <= limit else self._best_cut(a)
            count = self.exact_count(a, b)
            while count > limit:
                # the re-encoded span came out longer than the document's slice of it: shrink and re-check
                b = self._previous_lead(b)
                if b <= a:  # pragma: no cover - one character longer than the limit
                    raise ConfigError(
                        f"{self.document}: one character does not fit into {limit} tokens; raise chunk_tokens"
                    )
                count = self.exact_count(a, b)
            if b <= prev_end:
                # shrinking left nothing new after the previous chunk: give up some overlap instead
                a = self._next_lead(a + 1)
                continue
            chunks.append(self._make(len(chunks), self._char(a), self._char(b), count))
            prev_end = b
            if b >= n:
                break
            a = min(self._next_lead(max(b - overlap, a + 1)), b)
        return chunks

    # -- output ----------------------------------------------------------------------------------------

    def _make(self, index: int, start: int, end: int, count: int) -> Chunk:
        body = self.text[start:end]
        document = self.document
        # positional: id, document, index, start, end, token_count, text, headings
        return Chunk(
            chunk_id(document, start, end, body),
            document,
            index,
            start,
            end,
            count,
            body,
            self._breadcrumb(start),
        )

    def _breadcrumb(self, start: int) -> tuple[str, ...]:
        """The heading path in force at ``start``. Chunk starts only grow, so the text is searched for
        headings once, in pieces: a chunk with no ``"\\n#"`` since the previous one costs one ``find``."""
        text = self.text
        if self._scanned < 0:
            first = _FIRST_HEADING.match(text)
            if first is not None:
                self._levels[len(first.group(1))] = first.group(2)
                self._path = self._heading_path()
            self._scanned = 0
        scanned = self._scanned
        if start <= scanned:
            return self._path
        # a heading applies when its "\n" is at an index <= start - 1
        if text.find("\n#", scanned, start + 1) < 0:
            self._scanned = start
            return self._path
        # matches may start up to start - 1 and run to the end of their line, which is at most the first
        # "\n" at or after start: bounding the search there neither cuts a title nor takes a later heading
        end = text.find("\n", start)
        if end < 0:
            end = self.length
        levels = self._levels
        if self.fences:
            for m in _HEADING.finditer(text, scanned, end):
                if not self._in_fence(m.start() + 1):
                    level = len(m.group(1))
                    levels[level] = m.group(2)
                    levels[level + 1 :] = _NONES[level]
        else:
            for hashes, title in _HEADING.findall(text, scanned, end):
                level = len(hashes)
                levels[level] = title
                levels[level + 1 :] = _NONES[level]
        self._scanned = end
        self._path = self._heading_path()
        return self._path

    def _heading_path(self) -> tuple[str, ...]:
        return tuple(t.strip().rstrip("#").rstrip() for t in self._levels if t is not None)
