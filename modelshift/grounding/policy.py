"""The chunk policy: chunk size and overlap from the target's context window, top-k and the prompt budget.

The prompt sent to the model holds the system prompt, the user's question, ``top_k`` retrieved chunks, and
room for the answer (``max_tokens``). What is left after the fixed parts and a safety margin is shared by
the ``top_k`` chunks::

    reserved     = system prompt tokens + question budget + max_tokens + safety margin
    chunk_tokens = min(cap, floor((context_window - reserved) / top_k))
    overlap      = round(chunk_tokens x overlap ratio)            (12.5 % by default)

The cap (1,024 by default) keeps chunks focused: a bigger window should retrieve more precise passages, not
longer ones. A bundle may override either number; the override is checked against the same budget so that
an override can never overflow the window. :func:`derive_policy` returns the numbers and the explanation
the plan prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelshift.bundle.manifest import Retrieval
from modelshift.errors import ConfigError
from modelshift.grounding.tokenizers import count_tokens

DEFAULT_CAP = 1024
DEFAULT_OVERLAP_RATIO = 0.125
DEFAULT_QUESTION_BUDGET = 512
DEFAULT_SAFETY_MARGIN = 256
#: below this a chunk holds too little context to answer from
MIN_CHUNK_TOKENS = 64


@dataclass(frozen=True, slots=True)
class PromptBudget:
    """The fixed parts of a prompt, in tokens of the target's tokenizer."""

    system_prompt_tokens: int
    max_tokens: int
    question_tokens: int = DEFAULT_QUESTION_BUDGET
    safety_margin: int = DEFAULT_SAFETY_MARGIN

    @classmethod
    def for_prompt(
        cls,
        system_prompt: str,
        max_tokens: int,
        encoding: str,
        *,
        question_tokens: int = DEFAULT_QUESTION_BUDGET,
        safety_margin: int = DEFAULT_SAFETY_MARGIN,
    ) -> PromptBudget:
        """The budget for ``system_prompt``, counted in the target's encoding."""
        return cls(
            system_prompt_tokens=count_tokens(system_prompt, encoding),
            max_tokens=max_tokens,
            question_tokens=question_tokens,
            safety_margin=safety_margin,
        )

    @property
    def reserved(self) -> int:
        """Tokens the prompt needs besides the retrieved chunks."""
        return self.system_prompt_tokens + self.question_tokens + self.max_tokens + self.safety_margin


@dataclass(frozen=True, slots=True)
class ChunkPolicy:
    """Chunk size and overlap for one target, with the explanation for the plan."""

    chunk_tokens: int
    overlap_tokens: int
    context_window: int
    top_k: int
    reserved: int
    explanation: str


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
    """The chunk policy for a target context window (see the module docstring for the rule).

    Raises ConfigError when the window cannot hold ``top_k`` chunks of MIN_CHUNK_TOKENS next to the fixed
    parts of the prompt, or when an override does not fit the budget.
    """
    if context_window <= 0 or top_k < 1:
        raise ConfigError(f"context_window ({context_window}) and top_k ({top_k}) must be positive")
    if not 0 <= overlap_ratio < 1:
        raise ConfigError(f"overlap ratio {overlap_ratio} must be in [0, 1)")
    reserved = budget.reserved
    room = context_window - reserved
    per_chunk = room // top_k if room > 0 else 0
    if per_chunk < MIN_CHUNK_TOKENS:
        raise ConfigError(
            f"a {context_window}-token context window leaves {max(room, 0)} tokens for {top_k} chunks "
            f"after {reserved} reserved tokens (system prompt {budget.system_prompt_tokens}, question "
            f"{budget.question_tokens}, answer {budget.max_tokens}, margin {budget.safety_margin}); "
            f"lower retrieval.top_k or parameters.max_tokens, or pick a target with a larger window"
        )
    derived = min(cap, per_chunk)
    limit_note = f"the cap {cap}" if derived == cap else f"floor({room} / top_k {top_k})"
    lines = [
        f"reserved = system prompt {budget.system_prompt_tokens} + question {budget.question_tokens} "
        f"+ max_tokens {budget.max_tokens} + margin {budget.safety_margin} = {reserved} tokens",
        f"chunk_tokens = min(cap {cap}, floor(({context_window} - {reserved}) / top_k {top_k})) = {derived} "
        f"(set by {limit_note})",
    ]
    chunk = derived
    if chunk_tokens_override is not None:
        if not MIN_CHUNK_TOKENS <= chunk_tokens_override <= per_chunk:
            raise ConfigError(
                f"retrieval chunk_tokens override {chunk_tokens_override} is outside "
                f"{MIN_CHUNK_TOKENS}..{per_chunk}, the most {top_k} chunks can take in a "
                f"{context_window}-token window; lower it or remove the override"
            )
        chunk = chunk_tokens_override
        lines.append(f"chunk_tokens = {chunk} (bundle override; the policy gives {derived})")
    overlap = round(chunk * overlap_ratio)
    if overlap_tokens_override is not None:
        if not 0 <= overlap_tokens_override < chunk:
            raise ConfigError(
                f"retrieval overlap_tokens override {overlap_tokens_override} must be in 0..{chunk - 1} "
                f"(below chunk_tokens {chunk})"
            )
        lines.append(
            f"overlap_tokens = {overlap_tokens_override} (bundle override; the policy gives {overlap})"
        )
        overlap = overlap_tokens_override
    else:
        lines.append(f"overlap_tokens = round({chunk} x {overlap_ratio:g}) = {overlap}")
    return ChunkPolicy(
        chunk_tokens=chunk,
        overlap_tokens=overlap,
        context_window=context_window,
        top_k=top_k,
        reserved=reserved,
        explanation="\n".join(lines),
    )


def needs_rechunk(current: Retrieval, target_encoding: str, target: ChunkPolicy) -> tuple[bool, str]:
    """Whether the grounding data must be re-chunked for the target, and why (one line for the plan)."""
    reasons: list[str] = []
    if current.tokenizer != target_encoding:
        reasons.append(f"the tokenizer changes from {current.tokenizer} to {target_encoding}")
    if current.chunk_tokens > target.chunk_tokens:
        reasons.append(
            f"chunks of {current.chunk_tokens} tokens exceed the target's {target.chunk_tokens} "
            f"(top_k {target.top_k} would overflow the prompt budget)"
        )
    elif current.chunk_tokens != target.chunk_tokens:
        reasons.append(
            f"the chunk policy changes chunk_tokens {current.chunk_tokens} -> {target.chunk_tokens}"
        )
    if current.overlap_tokens != target.overlap_tokens:
        reasons.append(f"overlap_tokens changes {current.overlap_tokens} -> {target.overlap_tokens}")
    if reasons:
        return True, "re-chunk: " + "; ".join(reasons)
    return False, (
        f"keep the current index: same tokenizer ({target_encoding}) and chunking "
        f"({current.chunk_tokens}/{current.overlap_tokens} tokens)"
    )
