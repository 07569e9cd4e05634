"""The chunk policy: one rule for the plan and the re-chunk (chunk size and overlap for a target model).

The prompt sent to the model holds the system prompt, the user template with the question, ``top_k``
retrieved chunks, and room for the answer (``parameters.max_tokens``). The rule, which the plan prints with
the numbers filled in and the re-chunk applies (:func:`chunk_policy`, :func:`decide_rechunk`)::

    reserved     = prompt budget (system prompt, template, question; 1,500 tokens) + max_tokens
    room         = floor((context_window - reserved) / top_k)       the most one chunk may take
    policy size  = min(cap 1,024, room)
    chunk_tokens = the bundle's retrieval.chunk_tokens while it fits the room (the bundle overrides the
                   policy), else the policy size
    overlap      = the bundle's retrieval.overlap_tokens with the bundle's size; with the policy size,
                   round(policy size x the bundle's overlap ratio)

The cap keeps chunks focused: a bigger window should retrieve more precise passages, not longer ones. A move
re-chunks the grounding data when the tokenizer changes or when the rule gives other sizes than the bundle
has. A window that cannot hold ``top_k`` chunks of :data:`MIN_CHUNK_TOKENS` next to the reserved tokens is
a :class:`~modelshift.errors.ConfigError` naming what to lower.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from modelshift.bundle.manifest import Retrieval
from modelshift.errors import ConfigError

#: tokens reserved for the system prompt, the user template and the question
DEFAULT_PROMPT_BUDGET = 1_500
DEFAULT_CAP = 1024
DEFAULT_OVERLAP_RATIO = 0.125
#: below this a chunk holds too little context to answer from
MIN_CHUNK_TOKENS = 64


@dataclass(frozen=True, slots=True)
class PromptBudget:
    """The fixed parts of a prompt, in tokens: the prompt itself and the answer."""

    prompt_tokens: int
    max_tokens: int

    @property
    def reserved(self) -> int:
        """Tokens the prompt needs besides the retrieved chunks."""
        return self.prompt_tokens + self.max_tokens


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    """Chunk size and overlap for one target, with the explanation the plan prints."""

    chunk_tokens: int
    overlap_tokens: int
    context_window: int
    top_k: int
    reserved: int
    #: the most one chunk may take: floor((context_window - reserved) / top_k)
    room: int
    #: what the rule gives without overrides: min(cap, room)
    policy_tokens: int
    explanation: str


def _room(context_window: int, top_k: int, budget: PromptBudget) -> int:
    if context_window <= 0 or top_k < 1:
        raise ConfigError(f"context_window ({context_window}) and top_k ({top_k}) must be positive")
    room = context_window - budget.reserved
    return room // top_k if room > 0 else 0


def _budget_lines(context_window: int, top_k: int, budget: PromptBudget, room: int) -> list[str]:
    return [
        f"reserved = prompt budget {budget.prompt_tokens} + max_tokens {budget.max_tokens} "
        f"= {budget.reserved} tokens",
        f"room = floor(({context_window} - {budget.reserved}) / top_k {top_k}) = {room} tokens per chunk",
    ]


def derive_policy(
    context_window: int,
    top_k: int,
    budget: PromptBudget,
    *,
    cap: int = DEFAULT_CAP,
    overlap_ratio: float = DEFAULT_OVERLAP_RATIO,
    chunk_tokens_override: int | None = None,
    overlap_tokens_override: int | None = None,
) -> ChunkPolicy:
    """The policy for a context window, with explicit overrides that must fit (see the module docstring).

    Raises ConfigError when the window cannot hold ``top_k`` chunks of MIN_CHUNK_TOKENS next to the reserved
    tokens, or when an override does not fit.
    """
    if not 0 <= overlap_ratio < 1:
        raise ConfigError(f"overlap ratio {overlap_ratio} must be in [0, 1)")
    room = _room(context_window, top_k, budget)
    if room < MIN_CHUNK_TOKENS:
        raise ConfigError(
            f"a {context_window}-token context window leaves {max(0, context_window - budget.reserved)} "
            f"tokens for {top_k} chunks "
            f"after {budget.reserved} reserved tokens (prompt budget {budget.prompt_tokens}, answer "
            f"max_tokens {budget.max_tokens}), fewer than {MIN_CHUNK_TOKENS} per chunk; lower "
            "retrieval.top_k or parameters.max_tokens, or pick a target with a larger window"
        )
    derived = min(cap, room)
    limit_note = f"the cap {cap}" if derived == cap else "the room"
    lines = _budget_lines(context_window, top_k, budget, room)
    lines.append(f"policy size = min(cap {cap}, room {room}) = {derived} (set by {limit_note})")
    chunk = derived
    if chunk_tokens_override is not None:
        if not MIN_CHUNK_TOKENS <= chunk_tokens_override <= room:
            raise ConfigError(
                f"retrieval chunk_tokens override {chunk_tokens_override} is outside "
                f"{MIN_CHUNK_TOKENS}..{room}, the most {top_k} chunks can take in a "
                f"{context_window}-token window; lower it or remove the override"
            )
        chunk = chunk_tokens_override
        lines.append(f"chunk_tokens = {chunk} (override; the policy gives {derived})")
    else:
        lines.append(f"chunk_tokens = {chunk}")
    overlap = min(chunk - 1, round(chunk * overlap_ratio))
    if overlap_tokens_override is not None:
        if not 0 <= overlap_tokens_override < chunk:
            raise ConfigError(
                f"retrieval overlap_tokens override {overlap_tokens_override} must be in 0..{chunk - 1} "
                f"(below chunk_tokens {chunk})"
            )
        lines.append(f"overlap_tokens = {overlap_tokens_override} (override; the policy gives {overlap})")
        overlap = overlap_tokens_override
    else:
        lines.append(f"overlap_tokens = round({chunk} x {overlap_ratio:g}) = {overlap}")
    return ChunkPolicy(
        chunk_tokens=chunk,
        overlap_tokens=overlap,
        context_window=context_window,
        top_k=top_k,
        reserved=budget.reserved,
        room=room,
        policy_tokens=derived,
        explanation="\n".join(lines),
    )


def chunk_policy(
    retrieval: Retrieval,
    max_tokens: int,
    context_window: int,
    *,
    prompt_budget: int = DEFAULT_PROMPT_BUDGET,
    cap: int = DEFAULT_CAP,
) -> ChunkPolicy:
    """The chunking a bundle gets on a model with ``context_window``: the bundle's sizes while they fit the
    room per chunk, else the policy size with the bundle's overlap ratio (the module docstring's rule).

    The plan and the re-chunk both call this; ConfigError when the window is too small for ``top_k`` chunks.
    """
    budget = PromptBudget(prompt_tokens=prompt_budget, max_tokens=max_tokens)
    room = _room(context_window, retrieval.top_k, budget)
    size, overlap = retrieval.chunk_tokens, retrieval.overlap_tokens
    if size <= room:
        lines = _budget_lines(context_window, retrieval.top_k, budget, room)
        lines.append(
            f"chunk_tokens = {size}, overlap_tokens = {overlap}: the bundle's sizes fit the room and "
            f"override the policy size min(cap {cap}, room {room}) = {min(cap, room)}"
        )
        return ChunkPolicy(
            chunk_tokens=size,
            overlap_tokens=overlap,
            context_window=context_window,
            top_k=retrieval.top_k,
            reserved=budget.reserved,
            room=room,
            policy_tokens=min(cap, room),
            explanation="\n".join(lines),
        )
    policy = derive_policy(context_window, retrieval.top_k, budget, cap=cap, overlap_ratio=overlap / size)
    lines = policy.explanation.split("\n")
    lines.insert(
        2, f"the bundle's chunk_tokens {size} does not fit the room {room}, so the policy size applies"
    )
    lines[-1] = (
        f"overlap_tokens = round({policy.chunk_tokens} x the bundle's ratio {overlap}/{size}) "
        f"= {policy.overlap_tokens}"
    )
    return ChunkPolicy(
        chunk_tokens=policy.chunk_tokens,
        overlap_tokens=policy.overlap_tokens,
        context_window=context_window,
        top_k=retrieval.top_k,
        reserved=budget.reserved,
        room=room,
        policy_tokens=policy.policy_tokens,
        explanation="\n".join(lines),
    )


class RechunkDecision(BaseModel):
    """Whether re-chunking runs, why, the chunking the candidate gets, and the inputs of the rule (so the
    re-chunk can apply the very rule the plan explained)."""

    model_config = ConfigDict(frozen=True)

    runs: bool
    why: str
    #: the rule with the numbers filled in, one step a line
    how: str
    tokenizer_from: str | None = None
    tokenizer_to: str | None = None
    baseline_policy_tokens: int | None = None
    target_policy_tokens: int | None = None
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None
    #: the target's context window the sizes were derived from (None: unknown, the bundle's sizes kept)
    context_window: int | None = None
    prompt_budget: int = DEFAULT_PROMPT_BUDGET


def _policy_size(retrieval: Retrieval, max_tokens: int, window: int | None, prompt_budget: int) -> int | None:
    if window is None:
        return None
    try:
        return chunk_policy(retrieval, max_tokens, window, prompt_budget=prompt_budget).policy_tokens
    except ConfigError:
        return None


def decide_rechunk(
    retrieval: Retrieval | None,
    max_tokens: int,
    *,
    baseline_window: int | None,
    target_window: int | None,
    target_tokenizer: str | None,
    prompt_budget: int = DEFAULT_PROMPT_BUDGET,
) -> RechunkDecision:
    """Re-chunk when the target's tokenizer differs (or is unknown) or the chunk policy for the target's
    window gives other sizes than the bundle has; the sizes are :func:`chunk_policy`'s."""
    if retrieval is None:
        return RechunkDecision(
            runs=False, why="the bundle has no retrieval section", how="", prompt_budget=prompt_budget
        )
    reasons: list[str] = []
    if target_tokenizer is None:
        reasons.append(
            "the target's tokenizer is unknown (re-chunk to be safe; name it in the candidate bundle)"
        )
    elif target_tokenizer != retrieval.tokenizer:
        reasons.append(f"tokenizer changes from {retrieval.tokenizer} to {target_tokenizer}")
    tokenizer_to = target_tokenizer or retrieval.tokenizer
    base_size = _policy_size(retrieval, max_tokens, baseline_window, prompt_budget)
    target_size = _policy_size(retrieval, max_tokens, target_window, prompt_budget)

    def decision(runs: bool, why: str, how: str, chunk: int | None, overlap: int | None) -> RechunkDecision:
        return RechunkDecision(
            runs=runs,
            why=why,
            how=how,
            tokenizer_from=retrieval.tokenizer,
            tokenizer_to=tokenizer_to,
            baseline_policy_tokens=base_size,
            target_policy_tokens=target_size,
            chunk_tokens=chunk,
            overlap_tokens=overlap,
            context_window=target_window,
            prompt_budget=prompt_budget,
        )

    sizes = f"{retrieval.chunk_tokens}/{retrieval.overlap_tokens} tokens"
    if target_window is None:
        how = (
            f"the target's context window is unknown, so the bundle's {sizes} are kept unchecked; "
            "name a target the catalog or the built-in table knows to check them"
        )
        chunk, overlap = retrieval.chunk_tokens, retrieval.overlap_tokens
    else:
        try:
            policy = chunk_policy(retrieval, max_tokens, target_window, prompt_budget=prompt_budget)
        except ConfigError as exc:
            return decision(True, str(exc), "", None, None)
        how, chunk, overlap = policy.explanation, policy.chunk_tokens, policy.overlap_tokens
        if (chunk, overlap) != (retrieval.chunk_tokens, retrieval.overlap_tokens):
            reasons.append(
                f"the bundle's {sizes} do not fit the target's {target_window}-token window "
                f"({policy.room} tokens per chunk for top_k {retrieval.top_k}); the policy gives "
                f"{chunk}/{overlap}"
            )
    if reasons:
        why = "; ".join(reasons)
    elif target_window is None:
        why = f"tokenizer {retrieval.tokenizer} is the same; the target's context window is unknown"
    else:
        why = f"tokenizer {retrieval.tokenizer} is the same and the bundle's {sizes} fit the target's window"
    return decision(bool(reasons), why, how, chunk, overlap)
