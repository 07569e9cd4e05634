"""Chunk policy: room from window, top-k and prompt budget; cap; overlap; the bundle's sizes as overrides;
the re-chunk decision the plan makes from it."""

from __future__ import annotations

import pytest

from modelshift.bundle.manifest import Retrieval
from modelshift.errors import ConfigError
from modelshift.grounding.policy import (
    DEFAULT_CAP,
    DEFAULT_PROMPT_BUDGET,
    MIN_CHUNK_TOKENS,
    PromptBudget,
    chunk_policy,
    decide_rechunk,
    derive_policy,
)

BUDGET = PromptBudget(prompt_tokens=1000, max_tokens=400)
RESERVED = 1400


def _retrieval(
    tokenizer: str = "o200k_base", chunk: int = 512, overlap: int = 64, top_k: int = 4
) -> Retrieval:
    return Retrieval.model_validate(
        {
            "corpus": "corpus",
            "tokenizer": tokenizer,
            "chunk_tokens": chunk,
            "overlap_tokens": overlap,
            "top_k": top_k,
        }
    )


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
    room = (window - RESERVED) // top_k
    assert policy.room == room and policy.chunk_tokens == policy.policy_tokens == min(DEFAULT_CAP, room)
    assert (policy.chunk_tokens, policy.overlap_tokens) == (chunk, overlap)
    assert policy.overlap_tokens == round(policy.chunk_tokens * 0.125)
    assert policy.reserved == RESERVED
    assert f"= {RESERVED} tokens" in policy.explanation
    assert f"room = floor(({window} - {RESERVED}) / top_k {top_k}) = {room}" in policy.explanation
    assert f"chunk_tokens = {policy.chunk_tokens}" in policy.explanation


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


def test_explicit_overrides_are_used_and_explained() -> None:
    policy = derive_policy(16_384, 4, BUDGET, chunk_tokens_override=300, overlap_tokens_override=30)
    assert (policy.chunk_tokens, policy.overlap_tokens) == (300, 30)
    assert "300 (override; the policy gives 1024)" in policy.explanation
    assert "30 (override; the policy gives 38)" in policy.explanation
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


# -- the bundle's sizes against a target window ---------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "chunk", "overlap", "room", "kept"),
    [
        (128_000, 512, 64, 31_525, True),  # (128000 - 1900) // 4
        (1_900 + 4 * 512, 512, 64, 512, True),  # exactly fits
        (1_900 + 4 * 512 - 1, 512, 64, 511, False),  # one token short: the room, the bundle's ratio
        (8_000, 1024, 128, 1_525, True),
        (5_000, 1024, 128, 775, False),
    ],
)
def test_the_bundles_sizes_hold_while_they_fit(
    window: int, chunk: int, overlap: int, room: int, kept: bool
) -> None:
    retrieval = _retrieval(chunk=chunk, overlap=overlap)
    policy = chunk_policy(retrieval, 400, window)
    assert policy.room == room and policy.reserved == DEFAULT_PROMPT_BUDGET + 400
    assert policy.policy_tokens == min(DEFAULT_CAP, room)
    if kept:
        assert (policy.chunk_tokens, policy.overlap_tokens) == (retrieval.chunk_tokens, overlap)
        assert "the bundle's sizes fit the room and override the policy size" in policy.explanation
    else:
        ratio = retrieval.overlap_tokens / retrieval.chunk_tokens
        assert (policy.chunk_tokens, policy.overlap_tokens) == (room, round(room * ratio))
        assert f"does not fit the room {room}, so the policy size applies" in policy.explanation
        assert f"the bundle's ratio {overlap}/{retrieval.chunk_tokens}" in policy.explanation


def test_policy_overlap_stays_below_the_chunk() -> None:
    # a bundle overlapping 99 of 100 tokens, moved to a window with room for 64: round(64 x 0.99) = 63
    squeezed = chunk_policy(_retrieval(chunk=100, overlap=99, top_k=1), 400, 1_900 + 64)
    assert (squeezed.chunk_tokens, squeezed.overlap_tokens) == (64, 63)
    # a bundle's own small size that fits is kept even below MIN_CHUNK_TOKENS (it is the bundle's choice)
    tiny = chunk_policy(_retrieval(chunk=16, overlap=15, top_k=1), 400, 1_900 + 16)
    assert (tiny.chunk_tokens, tiny.overlap_tokens) == (16, 15)


def test_custom_prompt_budget_changes_the_room() -> None:
    policy = chunk_policy(_retrieval(chunk=1024, overlap=128), 400, 8_000, prompt_budget=4_000)
    assert policy.reserved == 4_400 and policy.room == 900 and policy.chunk_tokens == 900
    assert "reserved = prompt budget 4000 + max_tokens 400 = 4400 tokens" in policy.explanation


def test_a_window_too_small_for_top_k_chunks_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"lower retrieval\.top_k or parameters\.max_tokens"):
        chunk_policy(_retrieval(), 400, 2_100)


# -- the re-chunk decision ---------------------------------------------------------------------------------


def _decide(retrieval: Retrieval | None, target_window: int | None, tokenizer: str | None, **kw: int):  # type: ignore[no-untyped-def]
    return decide_rechunk(
        retrieval,
        400,
        baseline_window=kw.get("baseline_window", 128_000),
        target_window=target_window,
        target_tokenizer=tokenizer,
    )


@pytest.mark.parametrize(
    ("retrieval", "window", "tokenizer", "runs", "sizes", "reason"),
    [
        (_retrieval(), 128_000, "o200k_base", False, (512, 64), "the bundle's 512/64 tokens fit"),
        (_retrieval("cl100k_base"), 128_000, "o200k_base", True, (512, 64), "from cl100k_base to o200k_base"),
        (_retrieval(chunk=1024, overlap=128), 5_000, "o200k_base", True, (775, 97), "do not fit"),
        (_retrieval(), 128_000, None, True, (512, 64), "tokenizer is unknown"),
        (_retrieval(), None, "o200k_base", False, (512, 64), "context window is unknown"),
    ],
)
def test_decide_rechunk(
    retrieval: Retrieval,
    window: int | None,
    tokenizer: str | None,
    runs: bool,
    sizes: tuple[int, int],
    reason: str,
) -> None:
    decision = _decide(retrieval, window, tokenizer)
    assert decision.runs is runs and reason in decision.why
    assert (decision.chunk_tokens, decision.overlap_tokens) == sizes
    assert decision.context_window == window and decision.prompt_budget == DEFAULT_PROMPT_BUDGET
    assert decision.tokenizer_to == (tokenizer or retrieval.tokenizer)
    if window is not None:
        # the decision carries exactly the policy's explanation and numbers
        policy = chunk_policy(retrieval, 400, window)
        assert decision.how == policy.explanation
        assert decision.target_policy_tokens == policy.policy_tokens
        assert (policy.chunk_tokens, policy.overlap_tokens) == sizes


def test_decide_rechunk_without_retrieval_or_with_a_hopeless_window() -> None:
    none = _decide(None, 128_000, "o200k_base")
    assert not none.runs and none.why == "the bundle has no retrieval section"
    hopeless = _decide(_retrieval(), 2_000, "o200k_base")
    assert hopeless.runs and hopeless.chunk_tokens is None and hopeless.overlap_tokens is None
    assert "leaves 100 tokens for 4 chunks" in hopeless.why and hopeless.target_policy_tokens is None
    assert hopeless.baseline_policy_tokens == min(DEFAULT_CAP, (128_000 - 1_900) // 4)
