"""The emulator's local "models": a deterministic extractive answerer and a hashed local embedding.

The answerer reads the retrieved context inside the chat messages, scores its sentences against the
question (BM25 over sentences), and answers with the best supported one or two sentences. With probability
``1 - quality`` (seeded by a hash of deployment, model version and request content, so the same request
always gets the same answer) it answers from a worse sentence instead, which is how a weaker model version
becomes measurably worse in an evaluation. Token counts use the model's real tokenizer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import tiktoken

IDK = "I don't know."

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SOURCE_TAG = re.compile(r"^\s*\[([^\]\n]{1,64})\]\s*")
_QUESTION = re.compile(r"(?im)^\s*question\s*:\s*")
_CONTEXT_BLOCK = re.compile(r"(?is)<context>(.*?)</context>")
_STOPWORDS = frozenset(
    """
        a an and are as at be by can did do does for from has have how i if in is it its me my of on
        or our please should so than that the their them then there these they this to was we were
        what when where which who whom why will with would you your about after before into over
        under up out tell explain answer question context based only using use
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return _WORD.findall(text.lower())


def content_terms(text: str) -> list[str]:
    """Word tokens without stopwords: what a question is really about."""
    return [w for w in words(text) if w not in _STOPWORDS]


def message_text(message: dict[str, Any]) -> str:
    """The text of one chat message (string content or a list of text parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def count_prompt_tokens(messages: list[dict[str, Any]], enc: tiktoken.Encoding) -> int:
    """Prompt tokens of chat messages as OpenAI counts them (3 per message, 1 per name, 3 for the reply)."""
    total = 3
    for message in messages:
        total += 3
        total += len(enc.encode(str(message.get("role", "")), disallowed_special=()))
        total += len(enc.encode(message_text(message), disallowed_special=()))
        if message.get("name"):
            total += 1 + len(enc.encode(str(message["name"]), disallowed_special=()))
    return total


@dataclass(frozen=True)
class Sentence:
    """A sentence of the context, with the passage it came from."""

    text: str
    passage: int
    source: str
    tokens: int


@dataclass(frozen=True)
class Answer:
    """What the local model says, with token usage and how it got there."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    picked: Literal["best", "worse", "none"]
    dropped_context_tokens: int
    sources: tuple[str, ...]


def split_question(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(question, context) from chat messages: 'Question:' or <context> markers, else the last user line."""
    users = [m for m in messages if m.get("role") == "user"]
    others = [message_text(m) for m in messages if m.get("role") in ("system", "developer")]
    if not users:
        return "", "\n\n".join(others)
    last = message_text(users[-1])
    earlier = [message_text(m) for m in users[:-1]]
    block = _CONTEXT_BLOCK.search(last)
    if block:
        question = _CONTEXT_BLOCK.sub(" ", last)
        question = _QUESTION.sub("", question).strip()
        return question, "\n\n".join([*others, *earlier, block.group(1)])
    marks = list(_QUESTION.finditer(last))
    if marks:
        cut = marks[-1]
        return last[cut.end() :].strip(), "\n\n".join([*others, *earlier, last[: cut.start()]])
    lines = [ln for ln in last.splitlines() if ln.strip()]
    question = lines[-1] if lines else ""
    return question, "\n\n".join([*others, *earlier, "\n".join(lines[:-1])])


def split_sentences(context: str, enc: tiktoken.Encoding) -> list[Sentence]:
    """Passages are blank-line or line separated blocks; a leading [tag] names a passage's source."""
    out: list[Sentence] = []
    blocks = [b for b in re.split(r"\n\s*\n|\n(?=\s*\[)", context) if b.strip()]
    for index, block in enumerate(blocks):
        tag = _SOURCE_TAG.match(block)
        source = tag.group(1).strip() if tag else f"passage-{index + 1}"
        body = block[tag.end() :] if tag else block
        for piece in _SENTENCE_END.split(body.replace("\n", " ")):
            piece = piece.strip()
            if piece:
                out.append(Sentence(piece, index, source, len(enc.encode(piece, disallowed_special=()))))
    return out


def bm25(query: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """BM25 scores of each doc (a token list) for the query tokens."""
    if not docs:
        return []
    n = len(docs)
    avg = sum(len(d) for d in docs) / n or 1.0
    df = Counter(t for d in docs for t in set(d))
    scores = []
    for doc in docs:
        tf = Counter(doc)
        score = 0.0
        for term in set(query):
            if term not in tf:
                continue
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(doc) / avg))
        scores.append(score)
    return scores


def seeded_rng(*parts: str) -> random.Random:
    """A Random seeded by a stable hash of ``parts`` (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _truncate(sentences: list[Sentence], context_tokens: int, allowed: int) -> tuple[list[Sentence], int]:
    # Drop the oldest context first, as a sliding-window chat front-end would. Sentence counts miss the
    # tags and separators between them, so scale them to the context's real token count.
    ratio = context_tokens / max(1, sum(s.tokens for s in sentences))
    total = sum(s.tokens for s in sentences)
    start = 0
    while start < len(sentences) and total * ratio > max(0, allowed):
        total -= sentences[start].tokens
        start += 1
    dropped = sum(s.tokens for s in sentences[:start])
    return sentences[start:], round(dropped * ratio)


def answer_chat(
    messages: list[dict[str, Any]],
    *,
    enc: tiktoken.Encoding,
    quality: float,
    context_window: int,
    seed: str,
    max_tokens: int | None = None,
    json_mode: bool = False,
) -> Answer:
    """Answer ``messages`` extractively; deterministic for the same (seed, messages)."""
    prompt_tokens = count_prompt_tokens(messages, enc)
    question, context = split_question(messages)
    sentences = split_sentences(context, enc)
    reserve = max_tokens if max_tokens is not None else 256
    dropped = 0
    if prompt_tokens + reserve > context_window:
        context_tokens = len(enc.encode(context, disallowed_special=()))
        allowed = context_window - reserve - (prompt_tokens - context_tokens)
        sentences, dropped = _truncate(sentences, context_tokens, allowed)
    query = content_terms(question)
    scores = bm25(query, [content_terms(s.text) for s in sentences])
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    picked: Literal["best", "worse", "none"] = "none"
    chosen: list[Sentence] = []
    if ranked and scores[ranked[0]] > 0:
        rng = seeded_rng(seed, json.dumps(messages, sort_keys=True, default=str))
        best = ranked[0]
        if rng.random() >= quality and len(ranked) > 1:
            # a weaker model grounds its answer in the wrong place: prefer another passage's sentence
            others = [i for i in ranked[1:] if sentences[i].passage != sentences[best].passage] or ranked[1:]
            first = others[rng.randrange(len(others))]
            picked = "worse"
        else:
            first = best
            picked = "best"
        chosen = [sentences[first]]
        nxt = first + 1
        if (
            picked == "best"
            and nxt < len(sentences)
            and sentences[nxt].passage == sentences[first].passage
            and scores[nxt] >= 0.5 * scores[first]
        ):
            chosen.append(sentences[nxt])
    text = " ".join(s.text for s in chosen) if chosen else IDK
    sources = tuple(dict.fromkeys(s.source for s in chosen))
    content = json.dumps({"answer": text, "sources": list(sources)}) if json_mode else text
    tokens = enc.encode(content, disallowed_special=())
    finish: Literal["stop", "length"] = "stop"
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        content = enc.decode(tokens)
        finish = "length"
    return Answer(content, prompt_tokens, len(tokens), finish, picked, dropped, sources)


def embed(text: str, dims: int) -> list[float]:
    """A deterministic local embedding: hashed word unigrams/bigrams and char trigrams, L2-normalised."""
    vec = np.zeros(dims, dtype=np.float64)
    toks = words(text)
    features = [f"w:{t}" for t in toks] + [f"b:{a}_{b}" for a, b in itertools.pairwise(toks)]
    for t in toks:
        padded = f"#{t}#"
        features += [f"c:{padded[i : i + 3]}" for i in range(max(1, len(padded) - 2))]
    for feature in features or ["<empty>"]:
        h = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(h[:4], "big") % dims
        sign = 1.0 if h[4] & 1 else -1.0
        weight = 2.0 if feature.startswith("w:") else 1.0
        vec[index] += sign * weight
    norm = float(np.linalg.norm(vec))
    if norm > 0:
        vec /= norm
    return [float(x) for x in vec]
