"""``modelshift chunk``: re-chunk a corpus alone and write ``chunks.jsonl`` (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the top-level ``chunk`` command to ``app``."""

    @app.command("chunk")
    def chunk(
        corpus: Path = typer.Argument(..., help="A folder of .md/.txt/.html files, or one such file."),
        tokenizer: str = typer.Option(
            "o200k_base", "--tokenizer", help="tiktoken encoding: o200k_base or cl100k_base."
        ),
        chunk_tokens: int = typer.Option(512, "--chunk-tokens", help="Most tokens in one chunk."),
        overlap_tokens: int = typer.Option(
            64, "--overlap-tokens", help="Tokens shared by consecutive chunks (less than --chunk-tokens)."
        ),
        out: Path = typer.Option(..., "--out", help="Directory to write chunks.jsonl into."),
        index_app: str | None = typer.Option(
            None,
            "--index",
            metavar="APP",
            help="Also write a local index generation for APP in the modelshift home (reused if it exists).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON on stdout."),
    ) -> None:
        """Chunk CORPUS with the target tokenizer and write OUT/chunks.jsonl; print the counts."""
        from modelshift.cli._common import console, handle_errors, print_json, settings
        from modelshift.clock import utcnow
        from modelshift.grounding.chunking import Chunker
        from modelshift.grounding.corpus import load_corpus
        from modelshift.grounding.index import GenerationInfo, LocalIndexStore, check_app_name
        from modelshift.grounding.output import chunk_stats, write_chunks

        with handle_errors():
            # parameters first: a typo should not cost a corpus load
            chunker = Chunker(tokenizer, chunk_tokens, overlap_tokens)
            if index_app is not None:
                check_app_name(index_app)
            loaded = load_corpus(corpus)
            chunks = chunker.chunk_corpus(loaded)
            path = write_chunks(chunks, out)
            stats = chunk_stats(chunks, len(loaded.documents))
            generation: GenerationInfo | None = None
            if index_app is not None:
                generation = LocalIndexStore(settings().home, utcnow).build(index_app, loaded, chunker)
        if as_json:
            print_json(
                {
                    "corpus": str(corpus),
                    "corpus_digest": loaded.digest,
                    "tokenizer": tokenizer,
                    "chunk_tokens": chunk_tokens,
                    "overlap_tokens": overlap_tokens,
                    "out": str(path),
                    **{k: getattr(stats, k) for k in stats.__dataclass_fields__},
                    "index_generation": generation.generation if generation else None,
                    "index_location": generation.location if generation else None,
                }
            )
            return
        console.print(
            f"{stats.documents} documents -> {stats.chunks} chunks, {stats.tokens} tokens "
            f"({tokenizer}, {chunk_tokens}/{overlap_tokens}); tokens per chunk "
            f"min {stats.min_tokens} / mean {stats.mean_tokens} / max {stats.max_tokens}",
            highlight=False,
        )
        console.print(f"wrote {path}", highlight=False, markup=False, soft_wrap=True)  # a path stays whole
        if generation is not None:
            console.print(
                f"index generation {generation.generation} for {index_app}: {generation.location}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
