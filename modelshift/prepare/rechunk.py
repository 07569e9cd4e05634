"""Re-chunk the baseline's corpus for the target: its tokenizer, the plan's chunk policy, the chunk suite,
and a new index generation written BESIDE the baseline's (never over it).

Order matters: the chunks are validated before any generation is written, so a corpus that fails the suite
leaves no generation behind. Generation ids derive from the content (corpus digest, tokenizer, sizes), so a
re-run after a crash finds the generation it built and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelshift import audit
from modelshift.bundle import Bundle
from modelshift.errors import ConfigError
from modelshift.grounding.chunking import Chunker
from modelshift.grounding.corpus import load_corpus
from modelshift.grounding.index import GenerationInfo, IndexBackend, generation_id
from modelshift.grounding.policy import DEFAULT_PROMPT_BUDGET, RechunkDecision, chunk_policy
from modelshift.grounding.tokenizers import encoding_name_for_model
from modelshift.platforms.base import ModelRef
from modelshift.prepare.candidate import Rechunked
from modelshift.prepare.data import ReportSink
from modelshift.store import Store
from modelshift.validation import ValidationReport, validate_chunks


@dataclass(frozen=True)
class RechunkSettings:
    """How the candidate's corpus is chunked: tokenizer and sizes, and the target's context window and
    prompt budget the plan derived the sizes from (None: sizes given directly, nothing to re-derive)."""

    tokenizer: str
    chunk_tokens: int
    overlap_tokens: int
    context_window: int | None = None
    prompt_budget: int = DEFAULT_PROMPT_BUDGET

    @classmethod
    def from_plan(cls, decision: RechunkDecision, target: ModelRef) -> RechunkSettings:
        """The plan's decision; its tokenizer, else the target's (by model name)."""
        if decision.chunk_tokens is None or decision.overlap_tokens is None:
            raise ConfigError(
                f"the plan's re-chunk decision for {target} names no chunk sizes ({decision.why}); "
                "plan the migration again"
            )
        tokenizer = decision.tokenizer_to or encoding_name_for_model(target.name)
        return cls(
            tokenizer,
            decision.chunk_tokens,
            decision.overlap_tokens,
            context_window=decision.context_window,
            prompt_budget=decision.prompt_budget,
        )

    def applied_to(self, bundle: Bundle) -> RechunkSettings:
        """These settings after applying the chunk policy to ``bundle`` for the plan's target window: the
        same sizes, or ConfigError when the policy now gives others than the plan explained."""
        retrieval = bundle.manifest.retrieval
        if self.context_window is None or retrieval is None:
            return self
        policy = chunk_policy(
            retrieval,
            bundle.manifest.parameters.max_tokens,
            self.context_window,
            prompt_budget=self.prompt_budget,
        )
        if (policy.chunk_tokens, policy.overlap_tokens) != (self.chunk_tokens, self.overlap_tokens):
            raise ConfigError(
                f"{bundle.yaml_path}: retrieval: the chunk policy gives {policy.chunk_tokens}/"
                f"{policy.overlap_tokens} tokens for a {self.context_window}-token window, but the plan "
                f"says {self.chunk_tokens}/{self.overlap_tokens}; plan the migration again"
            )
        return self


@dataclass(frozen=True)
class RechunkResult:
    """The generation the candidate names, the chunk suite's report, and whether it existed already."""

    generation: GenerationInfo
    report: ValidationReport
    reused: bool

    @property
    def rechunked(self) -> Rechunked:
        """The retrieval settings the candidate bundle takes."""
        g = self.generation
        return Rechunked(g.tokenizer, g.chunk_tokens, g.overlap_tokens, g.generation)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for reports and audit events."""
        g = self.generation
        return {
            "generation": g.generation,
            "tokenizer": g.tokenizer,
            "chunk_tokens": g.chunk_tokens,
            "overlap_tokens": g.overlap_tokens,
            "documents": g.documents,
            "chunks": g.chunks,
            "corpus_digest": g.corpus_digest,
            "reused": self.reused,
        }


def rechunk_corpus(
    bundle: Bundle,
    settings: RechunkSettings,
    index: IndexBackend,
    *,
    store: Store | None = None,
    migration_id: str | None = None,
    actor: str = "modelshift",
    sink: ReportSink | None = None,
) -> RechunkResult:
    """Chunk ``bundle``'s corpus with ``settings`` (the plan's chunk policy re-applied to the bundle, see
    :meth:`RechunkSettings.applied_to`), validate the chunks (DataValidationError with the report when they
    fail, and no generation written), then build or find the generation."""
    retrieval = bundle.manifest.retrieval
    if retrieval is None:
        raise ConfigError(f"{bundle.yaml_path}: retrieval: {bundle.app} has no corpus to re-chunk")
    settings = settings.applied_to(bundle)
    corpus_dir = bundle.root / retrieval.corpus
    corpus = load_corpus(corpus_dir)
    chunker = Chunker(settings.tokenizer, settings.chunk_tokens, settings.overlap_tokens)
    chunks = chunker.chunk_corpus(corpus)
    report = validate_chunks(
        chunks,
        documents=[d.path for d in corpus.documents],
        max_tokens=settings.chunk_tokens,
        encoding=settings.tokenizer,
        subject=f"{bundle.app} corpus {retrieval.corpus} ({settings.tokenizer}, "
        f"{settings.chunk_tokens}/{settings.overlap_tokens} tokens)",
    )
    subject = f"bundle:{bundle.app}@{bundle.version}"
    if sink is not None:
        sink(report)
    if store is not None:
        store.append_audit(
            audit.Reason.DATA_VALIDATED, subject, report.audit_data(), actor=actor, migration_id=migration_id
        )
    report.raise_for_failure()
    wanted = generation_id(corpus.digest, settings.tokenizer, settings.chunk_tokens, settings.overlap_tokens)
    reused = any(g.generation == wanted for g in index.list_generations(bundle.app))
    info = index.build(bundle.app, corpus, chunker)
    result = RechunkResult(generation=info, report=report, reused=reused)
    if store is not None:
        store.append_audit(
            audit.Reason.GROUNDING_RECHUNKED,
            subject,
            {**result.summary(), "baseline_generation": retrieval.index_generation},
            actor=actor,
            migration_id=migration_id,
        )
    return result
