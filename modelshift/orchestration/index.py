"""A bundle's own index generation: built on demand from its corpus and retrieval settings, then reused.

The generation id depends only on the corpus digest, tokenizer and chunk sizes (see
:mod:`modelshift.grounding.index`), so the first evaluation of a bundle builds ``<home>/indexes/<app>/
<generation>.db`` and every later run (and the gateway) opens the same file. A bundle that pins
``retrieval.index_generation`` must get exactly that generation; anything else is refused, because serving a
different chunking than the one that was tested would mix two combinations.
"""

from __future__ import annotations

from pathlib import Path

from modelshift.bundle import Bundle
from modelshift.clock import Clock, utcnow
from modelshift.errors import ConfigError
from modelshift.grounding.chunking import Chunker
from modelshift.grounding.corpus import load_corpus
from modelshift.grounding.index import LocalGeneration, LocalIndexStore

CORPUS_KEY_PREFIX = "retrieval.corpus/"


def open_index(bundle: Bundle, home: Path, *, clock: Clock = utcnow) -> LocalGeneration | None:
    """The bundle's index generation (None when it retrieves nothing); built first if it does not exist."""
    retrieval = bundle.manifest.retrieval
    if retrieval is None:
        return None
    # read_bytes refuses a corpus file changed since the bundle was loaded (its digest covers them)
    for key in sorted(bundle.files):
        if key.startswith(CORPUS_KEY_PREFIX):
            bundle.read_bytes(key)
    corpus = load_corpus(bundle.root / retrieval.corpus)
    chunker = Chunker(retrieval.tokenizer, retrieval.chunk_tokens, retrieval.overlap_tokens)
    store = LocalIndexStore(home, clock)
    info = store.build(bundle.app, corpus, chunker)
    pinned = retrieval.index_generation
    if pinned is not None and pinned != info.generation:
        raise ConfigError(
            f"{bundle.yaml_path}: retrieval.index_generation is {pinned} but the corpus and chunking give "
            f"{info.generation}; set retrieval.index_generation to {info.generation} (or null) in a new "
            "bundle version"
        )
    return store.open(bundle.app, info.generation)
