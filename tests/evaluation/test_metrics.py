"""Per-item metric functions: F1 normalisation, embeddings and cosine, groundedness, hits, JSON, refusals."""

from __future__ import annotations

import math

import pytest

from modelshift.errors import ConfigError
from modelshift.evaluation.metrics import (
    SUPPORT_THRESHOLD,
    answer_f1,
    answer_similarity,
    format_valid,
    groundedness,
    local_embedding,
    normalize_answer,
    refusal,
    retrieval_hit,
    sentences,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat!", "cat"),
        ("  a  An the  ", ""),
        ("Paying annually: 15%, right?", "paying annually 15 right"),
        ("It\u2019s \u201cthe\u201d plan", "its plan"),
        ("theory atheist", "theory atheist"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("The Business plan pools storage.", "the business plan POOLS storage", 1.0),
        ("pools storage", "The Business plan pools storage", 2 * (1 * 0.5) / 1.5),
        ("nothing shared here", "completely different words", 0.0),
        ("", "", 1.0),  # both empty after normalisation
        ("the a an", "", 1.0),  # articles only normalise to empty
        ("", "an answer", 0.0),
        ("an answer", "", 0.0),
        # multiplicity: two "storage" in the prediction, one in the reference -> 1 common "storage"
        ("storage storage", "storage", 2 * (0.5 * 1.0) / 1.5),
        ("Annual billing: 15% off!", "annual billing 15 off", 1.0),
    ],
)
def test_answer_f1(prediction: str, reference: str, expected: float) -> None:
    assert answer_f1(prediction, reference) == pytest.approx(expected)


def test_local_embedding_is_unit_length_and_deterministic() -> None:
    vector = local_embedding("Paying annually gives a 15 percent discount.")
    assert len(vector) == 256
    assert math.sqrt(sum(v * v for v in vector)) == pytest.approx(1.0)
    assert vector == local_embedding("paying annually gives 15 percent discount")  # same normalised text


def test_local_embedding_is_pinned() -> None:
    # Pinned values: Python salts str hashes per process, so this fails if the embedding ever depends on
    # hash() or on anything else that changes between processes, machines or releases.
    expected = [0.213201, 0.213201, 0.213201, 0.213201, -0.213201, 0.426401, 0.639602, 0.426401]
    assert local_embedding("hello world", 8) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("text", "dims"), [("", 8), ("the a an ...", 8), ("one word", 4096)])
def test_local_embedding_boundaries(text: str, dims: int) -> None:
    vector = local_embedding(text, dims)
    assert len(vector) == dims
    norm = math.sqrt(sum(v * v for v in vector))
    assert norm == pytest.approx(0.0 if not normalize_answer(text) else 1.0)


def test_local_embedding_rejects_zero_dims() -> None:
    with pytest.raises(ConfigError, match="dims must be at least 1"):
        local_embedding("text", 0)


def test_similarity_ranks_paraphrase_above_unrelated() -> None:
    reference = local_embedding("Paying annually gives a 15 percent discount compared with monthly payments.")
    paraphrase = local_embedding("Annual payment gives a 15 percent discount over monthly payments.")
    unrelated = local_embedding("Restore a deleted laptop backup from the web console.")
    assert answer_similarity(paraphrase, reference) > answer_similarity(unrelated, reference) + 0.2
    assert answer_similarity(reference, reference) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1.0, 0.0], [1.0, 0.0], 1.0),
        ([1.0, 0.0], [0.0, 2.0], 0.0),
        ([1.0, 1.0], [-1.0, -1.0], -1.0),
        ([3.0, 4.0], [6.0, 8.0], 1.0),  # scale does not matter
        ([0.0, 0.0], [1.0, 0.0], 0.0),  # zero vector: no direction, no similarity
        ([], [], 0.0),
    ],
)
def test_answer_similarity(a: list[float], b: list[float], expected: float) -> None:
    assert answer_similarity(a, b) == pytest.approx(expected)


def test_answer_similarity_rejects_mismatched_sizes() -> None:
    with pytest.raises(ConfigError, match=r"different sizes \(2 vs 3\)"):
        answer_similarity([1.0, 0.0], [1.0, 0.0, 0.0])


CONTEXT = [
    "The Business plan pools storage across the whole organization. Each user adds 2 TB to the pool.",
    "Paying annually gives a 15 percent discount compared with twelve monthly payments.",
]


@pytest.mark.parametrize(
    ("answer", "passages", "expected"),
    [
        ("The Business plan pools storage across the organization.", CONTEXT, 1.0),
        # second sentence invents facts absent from every passage
        (
            "The Business plan pools storage across the organization. "
            "Refunds arrive within 90 days by cheque.",
            CONTEXT,
            0.5,
        ),
        # each sentence is supported by a different passage: support is judged per sentence
        (
            "Storage is pooled across the organization. Paying annually gives a 15 percent discount.",
            CONTEXT,
            1.0,
        ),
        ("Unicorns deliver backups by moonlight.", CONTEXT, 0.0),
        ("The plan pools storage.", [], 0.0),  # nothing retrieved: a claim cannot be supported
        ("The plan pools storage.", None, None),  # the bundle retrieves nothing: not applicable
        ("I don't know.", CONTEXT, None),  # a refusal makes no claim
        ("It is. Is it?", CONTEXT, None),  # only stopwords: no content sentence
        ("", CONTEXT, None),
    ],
)
def test_groundedness(answer: str, passages: list[str] | None, expected: float | None) -> None:
    assert groundedness(answer, passages) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    # content tokens of the sentence: business, plan, pools, storage, weekly (5); 4 of 5 appear in passage 0
    ("threshold", "supported"),
    [(0.8, True), (0.81, False), (SUPPORT_THRESHOLD, True), (1.0, False)],
)
def test_groundedness_threshold_boundary(threshold: float, supported: bool) -> None:
    score = groundedness("The Business plan pools storage weekly.", CONTEXT, threshold)
    assert score == (1.0 if supported else 0.0)


def test_sentences_split_on_terminators_and_lines() -> None:
    assert sentences("One. Two!  Three?\nFour\n\nfive 2.5 TB") == [
        "One.",
        "Two!",
        "Three?",
        "Four",
        "five 2.5 TB",
    ]


@pytest.mark.parametrize(
    ("retrieved", "expected", "hit"),
    [
        (["plans-and-pricing.md"], ["plans-and-pricing.md"], True),
        (["corpus/plans-and-pricing.md", "restore.md"], ["plans-and-pricing.md"], True),
        (["Plans-And-Pricing.MD"], ["plans-and-pricing.md"], True),
        (["./plans-and-pricing.md"], ["docs/plans-and-pricing.md"], True),
        (["restore.md"], ["plans-and-pricing.md"], False),
        (["old-plans-and-pricing.md"], ["plans-and-pricing.md"], False),  # suffix must be a path segment
        ([], ["plans-and-pricing.md"], False),
        (["restore.md"], [], None),
        (["restore.md"], None, None),
    ],
)
def test_retrieval_hit(retrieved: list[str], expected: list[str] | None, hit: bool | None) -> None:
    assert retrieval_hit(retrieved, expected) is hit


SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("answer", "schema", "valid"),
    [
        ('{"answer": "yes", "confidence": 0.9}', SCHEMA, True),
        ('{"answer": "yes"}', SCHEMA, True),
        ('{"confidence": 0.9}', SCHEMA, False),  # required key missing
        ('{"answer": 3}', SCHEMA, False),  # wrong type
        ('{"answer": "yes", "extra": 1}', SCHEMA, False),
        ('```json\n{"answer": "yes"}\n```', SCHEMA, False),  # fenced: not what the app can parse
        ("not json at all", SCHEMA, False),
        ("", SCHEMA, False),
        ("anything", None, None),  # the bundle declares no schema
    ],
)
def test_format_valid(answer: str, schema: dict[str, object] | None, valid: bool | None) -> None:
    assert format_valid(answer, schema) is valid


def test_format_valid_rejects_a_broken_schema() -> None:
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        format_valid("{}", {"type": "no-such-type"})


@pytest.mark.parametrize(
    ("answer", "is_refusal"),
    [
        ("I don't know.", True),
        ("I don\u2019t know the answer to that.", True),
        ("i do not know", True),
        ("I'm not sure which plan includes that.", True),
        ("I cannot answer that from the documents.", True),
        ("I am unable to help with billing disputes.", True),
        ("I don't have enough information to say.", True),
        ("That is not mentioned in the provided context.", True),
        ("The provided documents do not mention refunds.", True),
        ("I couldn't find anything about refunds.", True),
        ("There is insufficient information.", True),
        ("", True),
        ("   ", True),
        ("The Business plan pools storage across the organization.", False),
        ("If you don't know your password, reset it from the console.", False),
        ("We store no information about file contents.", False),
        ("Knowledge base articles are updated weekly.", False),
    ],
)
def test_refusal(answer: str, is_refusal: bool) -> None:
    assert refusal(answer) is is_refusal
