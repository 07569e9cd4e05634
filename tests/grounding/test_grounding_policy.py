"""Chunk policy: size from window, top-k and prompt budget; cap; overlap; overrides; needs_rechunk."""

from __future__ import annotations

import pytest

from modelshift.bundle.manifest import Retrieval
from modelshift.errors import ConfigError
from modelshift.grounding.policy import (
    DEFAULT_CAP,
    MIN_CHUNK_TOKENS,
    ChunkPolicy,
    PromptBudget,
    derive_policy,
    needs_rechunk,
)

BUDGET = PromptBudget(system_prompt_tokens=300, max_tokens=400, question_tokens=500, safety_margin=200)
RESERVED = 1400


@pytest.mark.parametrize(
    ("window", "top_k", "chunk", "overlap"),
    [
        (128_000, 4, DEFAULT_CAP, 128),  # capped
        (RESERVED + 4 * 1024, 4, 1024, 128),  # exactly the cap
        (RESERVED + 4 * 1024 - 1, 4, 1023, 128),  # one below: floor
        (8_192, 4, 1024, 128),  # (8192 - 1400) // 4 = 1698, capped
        (RESERVED + 10 * MIN_CHUNK_TOKENS, 10, MIN_CHUNK_TOKENS, 8),  # smallest that fits
        (4_096, 8, 337, 42),
    ],
)
def test_derived_size_and_overlap(window: int, top_k: int, chunk: int, overlap: int) -> None:
    policy = derive_policy(window, top_k, BUDGET)
    expected = min(DEFAULT_CAP, (window - RESERVED) // top_k)
    assert policy.chunk_tokens == expected
    assert (policy.chunk_tokens, policy.overlap_tokens) == (chunk, overlap)
    assert policy.overlap_tokens == round(policy.chunk_tokens * 0.125)
    assert policy.reserved == RESERVED
    assert f"= {RESERVED} tokens" in policy.explanation
    assert f"= {policy.chunk_tokens}" in policy.explanation


@pytest.mark.parametrize(
    ("window", "top_k"),
    [(RESERVED + 10 * MIN_CHUNK_TOKENS - 1, 10), (RESERVED, 1), (1000, 1), (0, 4), (8192, 0)],
)
def test_window_too_small_or_bad_arguments(window: int, top_k: int) -> None:
    with pytest.raises(ConfigError):
        derive_policy(window, top_k, BUDGET)


def test_too_small_window_explains_the_budget() -> None:
    with pytest.raises(ConfigError, match=r"leaves 100 tokens for 4 chunks after 1400 reserved"):
        derive_policy(1500, 4, BUDGET)


def test_custom_cap_and_ratio() -> None:
    policy = derive_policy(128_000, 4, BUDGET, cap=512, overlap_ratio=0.25)
    assert (policy.chunk_tokens, policy.overlap_tokens) == (512, 128)
    assert "set by the cap 512" in policy.explanation
    with pytest.raises(ConfigError, match="overlap ratio"):
        derive_policy(128_000, 4, BUDGET, overlap_ratio=1.0)


def test_bundle_overrides_are_used_and_explained() -> None:
    policy = derive_policy(16_384, 4, BUDGET, chunk_tokens_override=300, overlap_tokens_override=30)
    assert (policy.chunk_tokens, policy.overlap_tokens) == (300, 30)
    assert "300 (bundle override; the policy gives 1024)" in policy.explanation
    assert "30 (bundle override; the policy gives 38)" in policy.explanation
    only_size = derive_policy(16_384, 4, BUDGET, chunk_tokens_override=400)
    assert only_size.overlap_tokens == 50


@pytest.mark.parametrize(
    ("chunk", "overlap", "message"),
    [
        (MIN_CHUNK_TOKENS - 1, None, "chunk_tokens override 63"),
        (1500, None, r"outside 64\.\.1165"),  # (6060 - 1400) // 4 = 1165
        (200, 200, "overlap_tokens override 200"),
        (200, -1, "overlap_tokens override -1"),
    ],
)
def test_overrides_that_overflow_are_rejected(chunk: int, overlap: int | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        derive_policy(6_060, 4, BUDGET, chunk_tokens_override=chunk, overlap_tokens_override=overlap)


def _retrieval(tokenizer: str = "o200k_base", chunk: int = 512, overlap: int = 64) -> Retrieval:
    return Retrieval.model_validate(
        {
            "corpus": "corpus",
            "tokenizer": tokenizer,
            "chunk_tokens": chunk,
            "overlap_tokens": overlap,
            "top_k": 4,
        }
    )


def _policy(chunk: int, overlap: int) -> ChunkPolicy:
    return ChunkPolicy(chunk, overlap, context_window=128_000, top_k=4, reserved=RESERVED, explanation="")


@pytest.mark.parametrize(
    ("current", "encoding", "policy", "runs", "reason"),
    [
        (
            _retrieval(),
            "o200k_base",
            _policy(512, 64),
            False,
            "same tokenizer (o200k_base) and chunking (512/64",
        ),
        (_retrieval("cl100k_base"), "o200k_base", _policy(512, 64), True, "from cl100k_base to o200k_base"),
        (
            _retrieval(chunk=1024, overlap=128),
            "o200k_base",
            _policy(512, 64),
            True,
            "exceed the target's 512",
        ),
        (_retrieval(), "o200k_base", _policy(1024, 64), True, "chunk_tokens 512 -> 1024"),
        (_retrieval(), "o200k_base", _policy(512, 32), True, "overlap_tokens changes 64 -> 32"),
    ],
)
def test_needs_rechunk(
    current: Retrieval, encoding: str, policy: ChunkPolicy, runs: bool, reason: str
) -> None:
    decided, why = needs_rechunk(current, encoding, policy)
    assert decided is runs
    assert reason in why


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_budget_counts_the_system_prompt_in_the_target_encoding(encoding: str) -> None:
    from modelshift.grounding.tokenizers import count_tokens

    prompt = "You are the Contoso Backup assistant. Answer only from the context. Cite the article."
    budget = PromptBudget.for_prompt(prompt, max_tokens=400, encoding=encoding)
    assert budget.system_prompt_tokens == count_tokens(prompt, encoding) > 10
    assert budget.reserved == budget.system_prompt_tokens + 512 + 400 + 256
    with pytest.raises(ConfigError, match="unknown tokenizer encoding"):
        PromptBudget.for_prompt(prompt, max_tokens=400, encoding="nope")
