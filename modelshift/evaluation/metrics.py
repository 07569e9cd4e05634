"""Per-item evaluation metrics: pure functions of one answer, its reference and its retrieved context.

Each function documents its formula. None means "not applicable to this item" (no expected sources, no JSON
schema, a refusal makes no claim to ground), which the aggregation skips instead of counting as zero.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators as jsonschema_validators

from modelshift.errors import ConfigError

# SQuAD's normalisation: lowercase, drop punctuation, drop English articles, collapse whitespace.
_PUNCTUATION = set(string.punctuation) | {"\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")

#: Share of a sentence's content tokens that must appear in ONE retrieved passage for the sentence to count
#: as supported. 0.6 tolerates paraphrase of connecting words while an invented figure or name (a content
#: token absent from every passage) in a short sentence pushes it below the bar.
SUPPORT_THRESHOLD = 0.6

# Function words carry no claim; leaving them in would let any sentence look "supported".
_STOPWORD_TEXT = """
    i me my we our you your he she it its they them their this that these those is are was were be been
    being am do does did doing have has had having and or but if then else so than too very of at by for
    with about against between into through during before after above below to from up down in out on off
    over under again further once here there when where why how all any both each few more most other some
    such no nor not only own same can will just should would could may might must shall also as what which
    who whom whose s t don dont doesnt didnt isnt arent wasnt werent cant cannot wont
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

#: Refusal / "I don't know" patterns, matched case-insensitively anywhere in the answer after curly
#: apostrophes are straightened. An empty answer also counts as a refusal (the user got no answer).
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bi (?:do not|don't|dont) know\b",
    r"\bi(?:'m| am) not (?:sure|certain|able to)\b",
    r"\bi (?:cannot|can't|cant|am unable to|'m unable to|am not able to) "
    r"(?:answer|help|find|provide|say|determine|assist)\b",
    r"\bi(?:'m| am) unable to\b",
    r"\bi (?:do not|don't|dont) have (?:enough |sufficient |any )?(?:information|details|data)\b",
    r"\b(?:not enough|insufficient) information\b",
    r"\bno information (?:is )?(?:available|provided|given)\b",
    r"\b(?:not|isn't|is not) (?:mentioned|covered|provided|stated|included|specified|found) in the "
    r"(?:provided |given |available )?(?:context|documents?|sources?|passages?|information)\b",
    r"\b(?:the )?(?:provided |given )?(?:context|documents?|sources?) (?:does|do) not "
    r"(?:contain|mention|say|cover|include|provide)\b",
    r"\bi (?:could not|couldn't|cannot|can't) find\b",
    r"\bunable to (?:answer|find|determine)\b",
)
_REFUSAL_RE = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS), re.IGNORECASE)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, remove punctuation, remove articles (a/an/the), collapse spaces."""
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punct)
    return " ".join(no_articles.split())


def tokens(text: str) -> list[str]:
    """The normalised tokens of ``text`` (see :func:`normalize_answer`)."""
    return normalize_answer(text).split()


def answer_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1: ``2PR/(P+R)`` with P = common/len(pred tokens), R = common/len(reference tokens).

    ``common`` counts shared tokens with multiplicity (a bag intersection) after normalisation. When either
    side has no tokens the score is 1.0 if both are empty, else 0.0 (as SQuAD's evaluator does).
    """
    pred = tokens(prediction)
    ref = tokens(reference)
    if not pred or not ref:
        return 1.0 if pred == ref else 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred)
    recall = common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _bucket(feature: str, dims: int) -> tuple[int, float]:
    # blake2b, not hash(): Python salts str hashes per process, and an embedding must be reproducible.
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return value % dims, (1.0 if (value >> 63) & 1 else -1.0)


def local_embedding(text: str, dims: int = 256) -> list[float]:
    """A deterministic local embedding: signed feature hashing of word 1-2-grams and char 3-grams, L2-normed.

    Features come from the normalised text (:func:`normalize_answer`): each word (weight 1), each pair of
    adjacent words (weight 1) and each character trigram of ``" " + word + " "`` (weight 0.5), hashed with
    blake2b into ``dims`` buckets with a hash-derived sign. Text without tokens gives the zero vector. It is
    no semantic model, but it is stable across processes and machines and ranks paraphrases above
    unrelated text, which is what an offline evaluation without an embeddings deployment needs.
    """
    if dims < 1:
        raise ConfigError(f"local_embedding dims must be at least 1, got {dims}; use the default 256")
    vector = [0.0] * dims
    words = tokens(text)
    features: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
    features += [(f"b:{a} {b}", 1.0) for a, b in itertools.pairwise(words)]
    for word in words:
        padded = f" {word} "
        features += [(f"c:{padded[i : i + 3]}", 0.5) for i in range(len(padded) - 2)]
    for feature, weight in features:
        index, sign = _bucket(feature, dims)
        vector[index] += sign * weight
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else vector


def answer_similarity(candidate: Sequence[float], reference: Sequence[float]) -> float:
    """Cosine similarity ``a.b / (|a| |b|)`` of two embeddings, clipped to [-1, 1]; 0.0 if either is zero."""
    if len(candidate) != len(reference):
        raise ConfigError(
            f"answer_similarity got embeddings of different sizes ({len(candidate)} vs {len(reference)}); "
            "embed the answer and the reference with the same embeddings deployment"
        )
    dot = sum(a * b for a, b in zip(candidate, reference, strict=True))
    norm = math.sqrt(sum(a * a for a in candidate)) * math.sqrt(sum(b * b for b in reference))
    if norm == 0:
        return 0.0
    return max(-1.0, min(1.0, dot / norm))


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences at ``.``/``!``/``?`` followed by whitespace, and at line breaks."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def content_tokens(text: str) -> list[str]:
    """Normalised tokens of ``text`` without stopwords (:data:`STOPWORDS`): the words that carry a claim."""
    return [t for t in tokens(text) if t not in STOPWORDS]


def sentence_supported(sentence: str, passages: Sequence[str], threshold: float = SUPPORT_THRESHOLD) -> bool:
    """True when at least ``threshold`` of the sentence's distinct content tokens occur in one passage."""
    claim = set(content_tokens(sentence))
    if not claim:
        return True
    for passage in passages:
        present = claim & set(tokens(passage))
        if len(present) / len(claim) >= threshold:
            return True
    return False


def groundedness(
    answer: str, passages: Sequence[str] | None, threshold: float = SUPPORT_THRESHOLD
) -> float | None:
    """Share of the answer's sentences supported by the retrieved context (see :func:`sentence_supported`).

    Only sentences with content tokens count. None when there is no context to judge against
    (``passages is None``: the bundle retrieves nothing), when the answer is a refusal (it makes no claim),
    or when no sentence carries content. An empty passage list with a claiming answer scores 0.0.
    """
    if passages is None or refusal(answer):
        return None
    claims = [s for s in sentences(answer) if content_tokens(s)]
    if not claims:
        return None
    supported = sum(1 for s in claims if sentence_supported(s, passages, threshold))
    return supported / len(claims)


def _doc_key(name: str) -> str:
    return name.strip().replace("\\", "/").lstrip("./").lower()


def _same_document(a: str, b: str) -> bool:
    ka, kb = _doc_key(a), _doc_key(b)
    return ka == kb or ka.endswith("/" + kb) or kb.endswith("/" + ka)


def retrieval_hit(retrieved: Sequence[str], expected: Sequence[str] | None) -> bool | None:
    """True if a retrieved chunk's document is one of the item's expected ``sources``; None if it names none.

    Documents match case-insensitively on their POSIX path, or when one path ends with ``/`` + the other
    (``corpus/plans.md`` matches ``plans.md``), since datasets usually name a file and indexes its path.
    """
    if not expected:
        return None
    return any(_same_document(doc, want) for doc in retrieved for want in expected)


def format_valid(answer: str, schema: dict[str, Any] | None) -> bool | None:
    """True when ``answer`` parses as JSON and validates against ``schema``; None when there is no schema.

    The answer must be JSON as sent (no stripping of markdown code fences): that is what the app parses.
    """
    if schema is None:
        return None
    validator_cls = jsonschema_validators.validator_for(schema)
    try:
        validator_cls.check_schema(schema)
    except jsonschema_exceptions.SchemaError as exc:
        raise ConfigError(
            f"the evaluation json_schema is not a valid JSON Schema: {exc.message}; "
            "fix the file named in evaluation.json_schema"
        ) from None
    try:
        document = json.loads(answer)
    except (json.JSONDecodeError, RecursionError):
        return False
    return validator_cls(schema).is_valid(document)


def refusal(answer: str) -> bool:
    """True when the answer is empty or matches one of :data:`REFUSAL_PATTERNS` (an "I don't know")."""
    text = answer.replace("\u2019", "'").replace("\u2018", "'").strip()
    if not text:
        return True
    return _REFUSAL_RE.search(text) is not None
