"""The emulator as an LLM judge: it recognises azure-ai-evaluation's judge prompts and scores them.

A chat request whose messages are one of azure-ai-evaluation's quality prompts (groundedness, relevance,
coherence, fluency, similarity; the prompty files of ``azure.ai.evaluation._evaluators``) is answered the way
those evaluators parse it: a JSON object ``{"reason": "Let's think step by step: ...", "score": 1-5,
"status": "completed"}``, or ``"status": "skipped"`` with a null score when an input is empty.

The score is a pure function of the text being judged, so the same answer always gets the same score and a
worse answer a lower one. Each is ``1 + round(4 * x)`` with ``x`` in [0, 1]:

- groundedness: ``support * topical``; ``support`` is the share of the response's content words found in
  the context, ``topical`` is ``min(1, 2 * share of the query's content words found in the response)`` (1
  without a query). An "I don't know" answer scores 3, the prompt's "nothing to be grounded".
- relevance: ``topical`` (an "I don't know" scores 1).
- coherence: ``(topical + form) / 2``; ``form`` is the share of sentences that start with a capital
  letter or a digit and end with ``.``, ``!`` or ``?``.
- fluency: ``(form + diversity) / 2``; ``diversity`` is distinct words / words of the response.
- similarity: token F1 of the response against the ground truth.

A weaker model in the emulator answers from the wrong passage more often (see :mod:`.answerer`); such an
answer shares few words with the question, so its groundedness, relevance and similarity scores drop.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import tiktoken

from modelshift.emulator.answerer import IDK, Answer, content_terms, count_prompt_tokens, message_text, words

#: how each evaluator's prompt is recognised (a phrase of its prompty file) -> evaluator name
_MARKERS: tuple[tuple[str, str], ...] = (
    ("**Groundedness** refers to", "groundedness"),
    ("**Coherence** refers to", "coherence"),
    ("**Fluency** refers to", "fluency"),
    ("You are a Relevance Evaluator", "relevance"),
    ("Equivalence, as a metric, measures the similarity", "similarity"),
)
_DATA_FIELD = re.compile(r"(?m)^(CONTEXT|QUERY|RESPONSE): ?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_REFUSAL = re.compile(r"\bi (?:do not|don't|dont) know\b", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeRequest:
    """One recognised judge prompt: which evaluator, and the texts it judges."""

    evaluator: str
    query: str = ""
    response: str = ""
    context: str = ""
    ground_truth: str = ""


def _between(text: str, start: str, end: str) -> str | None:
    i = text.rfind(start)
    if i < 0:
        return None
    j = text.find(end, i + len(start))
    return text[i + len(start) : j if j >= 0 else len(text)]


def _data_block(evaluator: str, user: str) -> JudgeRequest | None:
    block = _between(user, "\n# Data\n", "\n\n\n# Tasks")
    if block is None:
        return None
    marks = list(_DATA_FIELD.finditer(block))
    fields: dict[str, str] = {}
    for mark, nxt in zip(marks, [*marks[1:], None], strict=True):
        fields[mark.group(1).lower()] = block[mark.end() : nxt.start() if nxt else len(block)].strip()
    return JudgeRequest(
        evaluator,
        query=fields.get("query", ""),
        response=fields.get("response", ""),
        context=fields.get("context", ""),
    )


def parse_judge_prompt(messages: list[dict[str, Any]]) -> JudgeRequest | None:
    """The judge request in ``messages``, or None when they are not an azure-ai-evaluation judge prompt."""
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    if not users:
        return None
    user = users[-1]
    evaluator = next((name for marker, name in _MARKERS if marker in user), None)
    if evaluator is None:
        return None
    if evaluator == "relevance":
        block = _between(
            user, "INPUT\n=====\nCONVERSATION_HISTORY: ", "\n\nCONVERSATION_HISTORY is the full dialogue"
        )
        if block is None or "\nRESPONSE: " not in block:
            return None
        query, response = block.split("\nRESPONSE: ", 1)
        return JudgeRequest(evaluator, query=query.strip(), response=response.strip())
    if evaluator == "similarity":
        block = _between(user, "\nquestion: ", "\n\nYour output must be")
        if block is None or "\ncorrect answer:" not in block or "\npredicted answer:" not in block:
            return None
        query, rest = block.split("\ncorrect answer:", 1)
        truth, response = rest.split("\npredicted answer:", 1)
        return JudgeRequest(
            evaluator, query=query.strip(), response=response.strip(), ground_truth=truth.strip()
        )
    return _data_block(evaluator, user)


def _share(part: Iterable[str], whole: Iterable[str]) -> float | None:
    wanted = set(part)
    if not wanted:
        return None
    return len(wanted & set(whole)) / len(wanted)


def _topical(query: str, response: str) -> float:
    share = _share(content_terms(query), words(response))
    return 1.0 if share is None else min(1.0, 2.0 * share)


def _form(response: str) -> float:
    sentences = [s.strip() for s in _SENTENCE_END.split(response.strip()) if s.strip()]
    if not sentences:
        return 0.0
    good = sum(1 for s in sentences if (s[0].isupper() or s[0].isdigit()) and s[-1] in ".!?")
    return good / len(sentences)


def _f1(prediction: str, truth: str) -> float:
    pred, ref = words(prediction), words(truth)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _score(x: float) -> int:
    return 1 + round(4 * max(0.0, min(1.0, x)))


def _needs(request: JudgeRequest) -> tuple[str, ...]:
    return {
        "groundedness": ("response", "context"),
        "relevance": ("query", "response"),
        "coherence": ("query", "response"),
        "fluency": ("response",),
        "similarity": ("query", "response", "ground_truth"),
    }[request.evaluator]


def judge_verdict(request: JudgeRequest) -> dict[str, Any]:
    """The evaluator's JSON answer for ``request`` (see the module docstring for the formulas)."""
    missing = [name for name in _needs(request) if not getattr(request, name).strip()]
    if missing:
        return {
            "reason": f"{', '.join(m.upper() for m in missing)} is empty or not provided.",
            "score": None,
            "status": "skipped",
        }
    response = request.response
    refused = response.strip() == IDK or _REFUSAL.search(response) is not None
    topical = _topical(request.query, response)
    form = _form(response)
    if request.evaluator == "groundedness":
        support = _share(content_terms(response), words(request.context))
        x = (1.0 if support is None else support) * topical
        score, why = (
            (3, "the response makes no claim to ground")
            if refused
            else (
                _score(x),
                f"support {support if support is not None else 1.0:.2f} x topical {topical:.2f}",
            )
        )
    elif request.evaluator == "relevance":
        score, why = (
            (1, "the response does not answer") if refused else (_score(topical), f"topical {topical:.2f}")
        )
    elif request.evaluator == "coherence":
        score, why = _score((topical + form) / 2), f"topical {topical:.2f}, form {form:.2f}"
    elif request.evaluator == "fluency":
        tokens = words(response)
        diversity = len(set(tokens)) / len(tokens) if tokens else 0.0
        score, why = _score((form + diversity) / 2), f"form {form:.2f}, diversity {diversity:.2f}"
    else:
        f1 = _f1(response, request.ground_truth)
        score, why = _score(f1), f"token F1 {f1:.2f} against the correct answer"
    return {
        "reason": f"Let's think step by step: the emulator's {request.evaluator} judge scored {why}.",
        "score": score,
        "status": "completed",
    }


def judge_reply(messages: list[dict[str, Any]]) -> str | None:
    """The judge's reply content for ``messages``, or None when they are not a judge prompt."""
    request = parse_judge_prompt(messages)
    if request is None:
        return None
    return json.dumps(judge_verdict(request))


def judge_answer(
    messages: list[dict[str, Any]], *, enc: tiktoken.Encoding, max_tokens: int | None = None
) -> Answer | None:
    """The emulator's answer to a judge prompt (token counts by ``enc``), or None for any other chat."""
    content = judge_reply(messages)
    if content is None:
        return None
    tokens = enc.encode(content, disallowed_special=())
    finish: Literal["stop", "length"] = "stop"
    if max_tokens is not None and len(tokens) > max_tokens:
        content, finish = enc.decode(tokens[:max_tokens]), "length"
        tokens = tokens[:max_tokens]
    return Answer(content, count_prompt_tokens(messages, enc), len(tokens), finish, "none", 0, ())
