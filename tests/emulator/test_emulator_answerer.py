"""The local answerer: quality differences between profiles, determinism, truncation, JSON mode."""

from __future__ import annotations

import json

import httpx
import pytest
from emulator_helpers import account_path, chat_url, rag_messages

from modelshift.emulator.answerer import IDK, answer_chat, count_prompt_tokens, embed, split_question
from modelshift.emulator.testing import EmulatorHandle
from modelshift.grounding.tokenizers import get_encoding

FACTS = [
    ("kb-backup", "Backups run every night at 02:00 UTC.", "When do backups run?", "02:00"),
    (
        "kb-vpn",
        "The VPN gateway requires multi-factor authentication.",
        "What does the VPN gateway require?",
        "multi",
    ),
    (
        "kb-retention",
        "Deleted mailboxes are retained for 45 days.",
        "How long are deleted mailboxes retained?",
        "45",
    ),
    ("kb-laptop", "Laptops are replaced every four years.", "How often are laptops replaced?", "four"),
    (
        "kb-printer",
        "Printer toner is ordered through the Facilities portal.",
        "Where is printer toner ordered?",
        "Facilities",
    ),
    (
        "kb-wifi",
        "Guest Wi-Fi passwords rotate every Monday.",
        "When do guest Wi-Fi passwords rotate?",
        "Monday",
    ),
    (
        "kb-expense",
        "Expense reports are due by the fifth business day.",
        "When are expense reports due?",
        "fifth",
    ),
    (
        "kb-badge",
        "Lost badges are reported to Security at extension 4400.",
        "Where are lost badges reported?",
        "4400",
    ),
]
CONTEXT = "\n\n".join(f"[{tag}] {text}" for tag, text, _, _ in FACTS)
ENC = get_encoding("o200k_base")


def _deploy(emu: EmulatorHandle, arm: httpx.Client, name: str, version: str) -> None:
    body = {
        "sku": {"name": "GlobalStandard", "capacity": 100},
        "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": version}},
    }
    assert arm.put(
        account_path("rg-support", "contoso-aoai-eus") + f"/deployments/{name}", json=body
    ).is_success


def _accuracy(emu: EmulatorHandle, data: httpx.Client, deployment: str, rounds: int) -> float:
    right = total = 0
    for r in range(rounds):
        for _, _, question, expected in FACTS:
            # vary the wording per round so each request gets its own seeded draw
            messages = rag_messages(CONTEXT, f"{question} (ticket {r})")
            resp = data.post(chat_url(emu, "contoso-aoai-eus", deployment), json={"messages": messages})
            if resp.status_code != 200:
                total += 1  # an error counts as a wrong answer, as an evaluation would score it
                continue
            right += expected in resp.json()["choices"][0]["message"]["content"]
            total += 1
    return right / total


def test_good_and_worse_profiles_are_measurably_different(
    emu: EmulatorHandle, arm: httpx.Client, data: httpx.Client
) -> None:
    _deploy(emu, arm, "cand-0806", "2024-08-06")  # the worse successor (quality 0.45, error rate 0.08)
    _deploy(emu, arm, "cand-1120", "2024-11-20")  # the good successor (quality 0.95)
    emu.advance_clock(5)
    worse = _accuracy(emu, data, "cand-0806", rounds=5)
    good = _accuracy(emu, data, "cand-1120", rounds=5)
    assert good >= 0.85
    assert worse <= 0.65
    assert good - worse >= 0.3


def test_same_request_same_answer(emu: EmulatorHandle, data: httpx.Client) -> None:
    messages = rag_messages(CONTEXT, "When do backups run?")
    url = chat_url(emu, "contoso-aoai-eus", "support-chat-4o")
    answers = {
        data.post(url, json={"messages": messages}).json()["choices"][0]["message"]["content"]
        for _ in range(5)
    }
    assert len(answers) == 1


def test_json_mode_answers_with_sources(emu: EmulatorHandle, data: httpx.Client) -> None:
    messages = rag_messages(CONTEXT, "How long are deleted mailboxes retained?", system="Reply in JSON.")
    r = data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": messages, "seed": 1})
    content = json.loads(r.json()["choices"][0]["message"]["content"])
    assert set(content) == {"answer", "sources"}
    if "45" in content["answer"]:
        assert content["sources"] == ["kb-retention"]


@pytest.mark.parametrize(
    ("quality", "picked"),
    [(1.0, "best"), (0.0, "worse")],  # boundary rows: a perfect and a useless model
)
def test_quality_bounds(quality: float, picked: str) -> None:
    messages = rag_messages(CONTEXT, "When do backups run?")
    a = answer_chat(messages, enc=ENC, quality=quality, context_window=128_000, seed="s")
    assert a.picked == picked
    assert ("02:00" in a.content) == (picked == "best")


def test_no_overlap_means_i_dont_know() -> None:
    a = answer_chat(
        rag_messages(CONTEXT, "Who painted the Mona Lisa?"),
        enc=ENC,
        quality=1.0,
        context_window=10_000,
        seed="s",
    )
    assert a.content == IDK and a.picked == "none"


def test_usage_counts_with_the_real_tokenizer() -> None:
    messages = rag_messages(CONTEXT, "When do backups run?")
    a = answer_chat(messages, enc=ENC, quality=1.0, context_window=128_000, seed="s")
    assert a.prompt_tokens == count_prompt_tokens(messages, ENC)
    assert a.completion_tokens == len(ENC.encode(a.content))
    # OpenAI's recipe: 3 per message + role + content, + 3 to prime the reply
    expected = 3 + sum(3 + len(ENC.encode(m["role"])) + len(ENC.encode(m["content"])) for m in messages)
    assert a.prompt_tokens == expected


def test_truncation_drops_oldest_context_first() -> None:
    filler = "\n\n".join(f"[old-{i}] Archive note {i} mentions nothing of interest here." for i in range(200))
    context = "[kb-backup] Backups run every night at 02:00 UTC.\n\n" + filler
    messages = rag_messages(context, "When do backups run?")
    big = answer_chat(messages, enc=ENC, quality=1.0, context_window=128_000, seed="s")
    small = answer_chat(messages, enc=ENC, quality=1.0, context_window=1_000, seed="s")
    assert "02:00" in big.content and big.dropped_context_tokens == 0
    assert small.dropped_context_tokens > 0
    assert "02:00" not in small.content  # the answer was in the oldest context, which no longer fits
    late = answer_chat(
        rag_messages(
            filler + "\n\n[kb-backup] Backups run every night at 02:00 UTC.", "When do backups run?"
        ),
        enc=ENC,
        quality=1.0,
        context_window=1_000,
        seed="s",
    )
    assert "02:00" in late.content  # the newest context survives truncation


def test_context_window_through_http(emu: EmulatorHandle, data: httpx.Client) -> None:
    # hr-35t is gpt-35-turbo 0125 with a 16k window; 4o has 128k
    filler = "\n\n".join(
        f"[old-{i}] Archive note {i} mentions nothing of interest here at all." for i in range(1500)
    )
    messages = rag_messages(
        "[kb-backup] Backups run every night at 02:00 UTC.\n\n" + filler, "When do backups run?"
    )
    small = data.post(
        chat_url(emu, "northwind-aoai-weu", "hr-35t"), json={"messages": messages, "max_tokens": 100}
    )
    big = data.post(
        chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": messages, "max_tokens": 100}
    )
    assert int(small.headers["x-modelshift-context-dropped-tokens"]) > 0
    assert int(big.headers["x-modelshift-context-dropped-tokens"]) == 0
    assert small.json()["usage"]["prompt_tokens"] > 16_385  # usage is what was sent, counted with cl100k


def test_max_tokens_cuts_the_answer() -> None:
    a = answer_chat(
        rag_messages(CONTEXT, "When do backups run?"),
        enc=ENC,
        quality=1.0,
        context_window=9999,
        seed="s",
        max_tokens=2,
    )
    assert a.completion_tokens == 2 and a.finish_reason == "length"


@pytest.mark.parametrize(
    ("messages", "question"),
    [
        ([{"role": "user", "content": "ctx line\nQuestion: what?"}], "what?"),
        ([{"role": "user", "content": "<context>facts here</context> what is it?"}], "what is it?"),
        ([{"role": "user", "content": "some context\nlast line question?"}], "last line question?"),
        ([{"role": "system", "content": "only system"}], ""),
        ([{"role": "user", "content": [{"type": "text", "text": "a\nQuestion: parts?"}]}], "parts?"),
    ],
)
def test_split_question(messages: list[dict[str, object]], question: str) -> None:
    assert split_question(messages)[0] == question


def test_embedding_is_normalised_and_deterministic() -> None:
    a, b = embed("nightly backups", 256), embed("nightly backups", 256)
    assert a == b
    assert abs(sum(x * x for x in a) - 1.0) < 1e-9
    assert abs(sum(x * x for x in embed("", 64)) - 1.0) < 1e-9
