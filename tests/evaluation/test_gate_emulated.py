"""The metrics and the gate on realistic answers: the emulator's answerer over the support-chat golden set.

No server and no network: the emulator's deterministic extractive "model" is called directly with the same
kind of prompt a bundle renders, at the quality the default scenario gives each gpt-4o version. This checks
that the gate has the power to tell versions apart at a real dataset size (62 items), and stays quiet when
nothing changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml

from modelshift.bundle.manifest import Evaluation
from modelshift.emulator.answerer import answer_chat
from modelshift.evaluation.gate import compare
from modelshift.evaluation.report import Verdict
from modelshift.evaluation.results import ItemResult, score_item
from modelshift.grounding.tokenizers import get_encoding

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
SHARED = BUNDLES / "support-chat" / "shared"
# The metrics the pure answers can measure (latency and cost come from the served deployment, not here).
GATED = ("answer_f1", "answer_similarity", "groundedness", "retrieval_hit_rate", "refusal_rate")


@dataclass(frozen=True)
class Chunk:
    document: str
    text: str


def paragraphs(document: str) -> list[Chunk]:
    text = (SHARED / "corpus" / document).read_text(encoding="utf-8")
    blocks = [b.strip() for b in text.split("\n\n")]
    return [Chunk(document, " ".join(b.split())) for b in blocks if b and not b.startswith("#")]


@cache
def golden() -> list[dict[str, object]]:
    lines = (SHARED / "golden.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def policy() -> Evaluation:
    manifest = yaml.safe_load(
        (BUNDLES / "support-chat" / "1.0.0" / "bundle.yaml").read_text(encoding="utf-8")
    )
    section = manifest["evaluation"]
    section["metrics"] = {k: v for k, v in section["metrics"].items() if k in GATED}
    return Evaluation.model_validate(section)


@cache
def run(version: str, quality: float) -> tuple[ItemResult, ...]:
    """Answer every golden item as ``gpt-4o@version`` would in the emulator, and score it."""
    enc = get_encoding("o200k_base")
    documents = sorted(p.name for p in (SHARED / "corpus").iterdir())
    results = []
    for item in golden():
        sources = [str(s) for s in item["sources"]]  # type: ignore[attr-defined]
        # retrieval: the expected document plus a distractor, as a top-k retriever would return
        distractor = documents[(documents.index(sources[0]) + 1) % len(documents)]
        chunks = [c for doc in [*sources, distractor] for c in paragraphs(doc)]
        context = "\n\n".join(f"[{c.document}] {c.text}" for c in chunks)
        messages = [
            {"role": "system", "content": "You answer questions about Contoso Backup."},
            {
                "role": "user",
                "content": f"Documentation excerpts:\n\n{context}\n\nQuestion: {item['question']}",
            },
        ]
        answer = answer_chat(
            messages,
            enc=enc,
            quality=quality,
            context_window=128000,
            seed=f"support-chat-4o/gpt-4o@{version}",
        )
        results.append(
            score_item(
                str(item["id"]),
                answer.content,
                str(item["answer"]),
                passages=chunks,
                expected_sources=sources,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
            )
        )
    return tuple(results)


def test_the_golden_set_is_big_enough_for_the_policy() -> None:
    assert len(golden()) >= policy().min_items


def test_same_version_passes() -> None:
    baseline = run("2024-05-13", 0.85)
    report = compare(baseline, baseline, policy())
    assert report.verdict is Verdict.PASS, report.render_text()


def test_worse_version_fails_on_answer_quality() -> None:
    baseline = run("2024-05-13", 0.85)
    worse = run("2024-08-06", 0.45)
    report = compare(worse, baseline, policy())
    assert report.verdict is Verdict.FAIL, report.render_text()
    failing = {r.name for r in report.failing()}
    assert "answer_f1" in failing and "answer_f1" in {r.name for r in report.vetoes()}
    assert "answer_similarity" in failing
    # the retriever did not change, so retrieval cannot be what failed
    assert "retrieval_hit_rate" not in failing


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_better_version_never_fails(seed: int) -> None:
    baseline = run("2024-05-13", 0.85)
    better = run("2024-11-20", 0.95)
    report = compare(better, baseline, policy(), seed=seed)
    assert report.verdict is not Verdict.FAIL, report.render_text()
    assert report.failing() == []
