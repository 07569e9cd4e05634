"""The chunk policy a model's context window implies, and whether a move re-chunks the grounding data.

How the policy is derived (also printed in every plan): the usable window is the context window minus the
bundle's ``max_tokens`` (the answer) and a prompt budget (system prompt, template, question; default 1,500
tokens). Retrieved context may take an eighth of the usable window, split over ``top_k`` chunks; the result
is rounded down to a power of two and clamped to 128..2,048 tokens. The eighth leaves room for chat history
and keeps cost bounded; the clamp keeps chunks retrievable (too small loses context, too large dilutes
embeddings). A move re-chunks when the tokenizer changes or when this policy gives another size.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from modelshift.bundle.manifest import Retrieval
from modelshift.lifecycle.modelinfo import ModelFacts

DEFAULT_PROMPT_BUDGET = 1_500
MIN_CHUNK, MAX_CHUNK = 128, 2_048
RETRIEVAL_SHARE = 8  # retrieved context may use 1/RETRIEVAL_SHARE of the usable window


def policy_chunk_tokens(context_window: int, max_tokens: int, prompt_budget: int, top_k: int) -> int:
    """Chunk size (tokens) the policy gives for one context window (see the module docstring)."""
    usable = max(0, context_window - max_tokens - prompt_budget)
    per_chunk = usable // (top_k * RETRIEVAL_SHARE)
    if per_chunk < MIN_CHUNK:
        return MIN_CHUNK
    return min(MAX_CHUNK, 1 << (per_chunk.bit_length() - 1))


class RechunkDecision(BaseModel):
    """Whether re-chunking runs, why, and the chunking the candidate bundle gets."""

    model_config = ConfigDict(frozen=True)

    runs: bool
    why: str
    how: str
    tokenizer_from: str | None = None
    tokenizer_to: str | None = None
    baseline_policy_tokens: int | None = None
    target_policy_tokens: int | None = None
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None


def decide_rechunk(
    retrieval: Retrieval | None,
    max_tokens: int,
    baseline: ModelFacts,
    target: ModelFacts,
    *,
    prompt_budget: int = DEFAULT_PROMPT_BUDGET,
) -> RechunkDecision:
    """Re-chunk when the target's tokenizer differs or its context window changes the chunk policy."""
    how = (
        f"chunk = clamp(pow2_floor((context_window - max_tokens {max_tokens} - "
        f"prompt budget {prompt_budget}) "
        f"/ (top_k x {RETRIEVAL_SHARE})), {MIN_CHUNK}, {MAX_CHUNK})"
    )
    if retrieval is None:
        return RechunkDecision(runs=False, why="the bundle has no retrieval section", how=how)
    how = how.replace("top_k", f"top_k {retrieval.top_k}")
    reasons: list[str] = []
    tok_to = target.tokenizer
    if tok_to is None:
        reasons.append(
            "the target's tokenizer is unknown (re-chunk to be safe; name it in the candidate bundle)"
        )
    elif tok_to != retrieval.tokenizer:
        reasons.append(f"tokenizer changes from {retrieval.tokenizer} to {tok_to}")
    base_policy = target_policy = None
    new_chunk = retrieval.chunk_tokens
    if baseline.context_window is not None and target.context_window is not None:
        base_policy = policy_chunk_tokens(baseline.context_window, max_tokens, prompt_budget, retrieval.top_k)
        target_policy = policy_chunk_tokens(target.context_window, max_tokens, prompt_budget, retrieval.top_k)
        if base_policy != target_policy:
            reasons.append(
                f"context window {baseline.context_window} -> {target.context_window} "
                f"changes the chunk policy "
                f"from {base_policy} to {target_policy} tokens"
            )
            new_chunk = target_policy
    elif target.context_window is None:
        reasons.append("the target's context window is unknown, so the chunk policy cannot be checked")
    overlap = retrieval.overlap_tokens
    if new_chunk != retrieval.chunk_tokens:
        # keep the bundle's overlap ratio; it must stay below the chunk size
        overlap = min(new_chunk - 1, round(retrieval.overlap_tokens * new_chunk / retrieval.chunk_tokens))
    if not reasons:
        why = (
            f"tokenizer {retrieval.tokenizer} and chunk policy ({base_policy} tokens) "
            "are the same for the target"
        )
        return RechunkDecision(
            runs=False,
            why=why,
            how=how,
            tokenizer_from=retrieval.tokenizer,
            tokenizer_to=tok_to,
            baseline_policy_tokens=base_policy,
            target_policy_tokens=target_policy,
            chunk_tokens=retrieval.chunk_tokens,
            overlap_tokens=retrieval.overlap_tokens,
        )
    return RechunkDecision(
        runs=True,
        why="; ".join(reasons),
        how=how,
        tokenizer_from=retrieval.tokenizer,
        tokenizer_to=tok_to or retrieval.tokenizer,
        baseline_policy_tokens=base_policy,
        target_policy_tokens=target_policy,
        chunk_tokens=new_chunk,
        overlap_tokens=overlap,
    )
