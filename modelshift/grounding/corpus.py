"""Grounding corpora: a folder (or one file) of .md/.txt/.html documents, loaded as text with a digest.

HTML is turned into Markdown-like text that keeps its headings (``<h2>`` becomes ``## ``) so the chunker sees
the same structure as in a Markdown file; chunk offsets then refer to that text, not to the HTML bytes.
Documents are read as strict UTF-8 (a UTF-8 BOM is dropped): a bad byte stops loading with the file and the
byte offset, because silently replaced characters would end up in the index and the prompt.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from modelshift.errors import ConfigError, DataValidationError

#: file suffixes a corpus may contain (others are ignored, so a README.rst or an image does not break it)
SUPPORTED_SUFFIXES: tuple[str, ...] = (".md", ".markdown", ".txt", ".html", ".htm")


@dataclass(frozen=True, slots=True)
class Document:
    """One corpus document: its path relative to the corpus root (POSIX form), its text and its kind."""

    path: str
    text: str
    kind: str  # "markdown" | "text" | "html"


@dataclass(frozen=True, slots=True)
class Corpus:
    """The documents of a corpus, sorted by path, and a digest over their paths and raw bytes."""

    root: Path
    documents: tuple[Document, ...]
    digest: str

    @property
    def total_chars(self) -> int:
        """Characters over all documents."""
        return sum(len(d.text) for d in self.documents)


_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "ul", "ol",
        "table", "thead", "tbody", "tr", "blockquote", "pre", "figure", "dl", "form", "hr",
    }
)  # fmt: skip
_LINE_TAGS = frozenset({"li", "dt", "dd", "br", "caption"})
_SKIP_TAGS = frozenset({"script", "style", "head", "template", "noscript", "svg"})
_HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}


class _HtmlToText(HTMLParser):
    """Collects the visible text of an HTML page; headings become Markdown ``#`` lines, blocks paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip_depth = 0
        self._in_pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _HEADING_TAGS:
            self._parts.append("\n\n" + "#" * _HEADING_TAGS[tag] + " ")
        elif tag in _BLOCK_TAGS:
            self._parts.append("\n\n")
            if tag == "pre":
                self._in_pre += 1
        elif tag in _LINE_TAGS:
            self._parts.append("\n- " if tag == "li" else "\n")
        elif tag in ("td", "th"):
            self._parts.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _HEADING_TAGS or tag in _BLOCK_TAGS:
            self._parts.append("\n\n")
            if tag == "pre":
                self._in_pre = max(0, self._in_pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        # HTML collapses whitespace outside <pre>; so do we, or source indentation would become text
        self._parts.append(data if self._in_pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        """The collected text with trailing spaces trimmed and at most one blank line in a row."""
        raw = "".join(self._parts)
        lines = [line.strip() for line in raw.split("\n")]
        out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
        return out.strip() + "\n" if out.strip() else ""


def html_to_text(html: str) -> str:
    """The visible text of an HTML document, with ``<h1>``..``<h6>`` kept as Markdown headings."""
    parser = _HtmlToText()
    parser.feed(html)
    parser.close()
    return parser.text()


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in (".md", ".markdown"):
        return "markdown"
    return "text"


def decode_document(raw: bytes, where: str) -> str:
    """Decode ``raw`` as strict UTF-8 (BOM dropped); a bad byte raises DataValidationError naming ``where``.

    Strict because replaced characters would end up in the index and in prompts.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"{where} is not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); "
            "re-save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or remove it from the corpus",
            file=where,
            offset=exc.start,
        ) from None
    return text.removeprefix("\ufeff")


def _corpus_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def load_corpus(path: Path) -> Corpus:
    """Load every .md/.txt/.html file under ``path`` (or the one file ``path``), sorted by relative path.

    Raises ConfigError when ``path`` does not exist and DataValidationError when it holds no supported
    document, a document is not UTF-8 or every document is empty.
    """
    root = Path(path)
    if not root.exists():
        raise ConfigError(
            f"corpus {root} does not exist; pass a folder of .md/.txt/.html files "
            "(the bundle's retrieval.corpus)",
            path=str(root),
        )
    files = _corpus_files(root)
    if not files:
        raise DataValidationError(
            f"corpus {root} holds no {'/'.join(SUPPORTED_SUFFIXES)} files; add documents or fix the path",
            path=str(root),
        )
    base = root.parent if root.is_file() else root
    digest = hashlib.sha256()
    documents: list[Document] = []
    for file in files:
        rel = file.relative_to(base).as_posix()
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read corpus document {file}: {exc.strerror}", path=str(file)) from exc
        digest.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(raw).digest())
        text = decode_document(raw, str(file))
        kind = _kind(file)
        if kind == "html":
            text = html_to_text(text)
        documents.append(Document(path=rel, text=text, kind=kind))
    if not any(d.text.strip() for d in documents):
        raise DataValidationError(
            f"corpus {root}: all {len(documents)} document(s) are empty; add text to ground answers on",
            path=str(root),
        )
    return Corpus(root=root, documents=tuple(documents), digest=digest.hexdigest())
