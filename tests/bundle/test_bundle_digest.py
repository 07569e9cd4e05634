"""Digest claims: stable across spelling, formatting, key order, defaults, location; any byte changes it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundle_helpers import DELETE, base_manifest, default_files

from modelshift.bundle import load_bundle


def _digest(bundle_dir: Path) -> str:
    return load_bundle(bundle_dir).digest


def test_digest_format(make_bundle: Any) -> None:
    digest = _digest(make_bundle())
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    int(digest[7:], 16)


def test_digest_is_the_documented_formula(make_bundle: Any) -> None:
    """Recompute from the spec by hand: canonical JSON of the manifest with files replaced by their hashes."""
    bundle_dir = make_bundle()
    bundle = load_bundle(bundle_dir)

    def sha(rel: str) -> dict[str, str]:
        return {"sha256": hashlib.sha256((bundle_dir / rel).read_bytes()).hexdigest()}

    expected = bundle.manifest.model_dump(mode="json")
    # optional sections added after the digest was pinned are left out while unset
    assert set(expected["canary"].pop("analysis").values()) == {None}
    expected["prompts"]["system"] = sha("prompts/system.md")
    expected["prompts"]["user_template"] = sha("prompts/user.md")
    expected["prompts"]["overrides"]["gpt-4.1"]["system"] = sha("prompts/system.gpt-4.1.md")
    expected["model"]["fine_tune"]["training_file"] = sha("../shared/train.jsonl")
    expected["model"]["fine_tune"]["validation_file"] = sha("../shared/valid.jsonl")
    expected["evaluation"]["dataset"] = sha("../shared/golden.jsonl")
    expected["evaluation"]["json_schema"] = sha("../shared/answer.schema.json")
    corpus = bundle_dir / "../shared/corpus"
    expected["retrieval"]["corpus"] = {
        "tree": {
            rel: hashlib.sha256((corpus / rel).read_bytes()).hexdigest()
            for rel in ("faq/encryption.html", "restore.md", "schedules.txt")
        }
    }
    text = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert bundle.digest == "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_digest_is_pinned_across_machines_and_versions(make_bundle: Any) -> None:
    """A fixed bundle has a fixed digest; if this changes, every registered bundle's identity changes."""
    manifest = {
        "app": "pin",
        "version": "1",
        "model": {
            "platform": "openai-compatible",
            "endpoint": "http://127.0.0.1:8000/v1",
            "name": "m",
            "version": "1",
        },
        "prompts": {"system": "s.md"},
        "parameters": {"temperature": 0, "max_tokens": 1},
        "evaluation": {"dataset": "g.jsonl", "metrics": {"f1": {"greater_is_better": True}}},
    }
    files = {k: None for k in default_files()} | {
        "s.md": "sys\n",
        "g.jsonl": '{"id": "1", "question": "q", "answer": "a"}\n',
    }
    bundle_dir = make_bundle(manifest=manifest, files=files)
    assert _digest(bundle_dir) == "sha256:c82e94e266b12611d8c6c58bd89873b32ef1436d46615e46a6551adfe64363fa"


# Variants that must NOT change the digest: (id, changes to the manifest)
SAME: list[tuple[str, dict[str, Any]]] = [
    ("temperature-int", {"parameters.temperature": 0}),
    ("format-default-explicit", {"model.format": "OpenAI"}),
    ("stop-default-explicit", {"parameters.stop": []}),
    (
        "canary-defaults-explicit",
        {
            "canary": {
                "steps": [5, 25, 50, 100],
                "min_requests_per_step": 50,
                "step_duration_seconds": 60,
                "max_step_extensions": 2,
                "approval_required": False,
                "on_inconclusive": "rollback",
            }
        },
    ),
    ("canary-omitted", {"canary": DELETE}),
    ("canary-analysis-empty", {"canary.analysis": {}}),
    ("confidence-default", {"evaluation.confidence": 0.95}),
    ("zero-baseline-default", {"evaluation.metrics.answer_f1.zero_baseline": "absolute"}),
    ("null-vs-omitted", {"model.endpoint": DELETE, "retrieval.index_generation": None}),
    ("dot-slash-path", {"prompts.system": "./prompts/system.md"}),
    ("double-slash-path", {"prompts.user_template": "prompts//user.md"}),
    ("corpus-trailing-slash", {"retrieval.corpus": "../shared/corpus/"}),
    ("corpus-detour", {"retrieval.corpus": "../shared/../shared/corpus"}),
    ("dataset-via-bundle-dir", {"evaluation.dataset": "../1.0.0/../shared/golden.jsonl"}),
]


@pytest.mark.parametrize("changes", [r[1] for r in SAME], ids=[r[0] for r in SAME])
def test_digest_ignores(make_bundle: Any, changes: dict[str, Any]) -> None:
    assert _digest(make_bundle(changes)) == _digest(make_bundle())


def test_int_and_float_spellings_agree(make_bundle: Any) -> None:
    lr = "model.fine_tune.hyperparameters.learning_rate_multiplier"
    assert _digest(make_bundle({lr: 1, "parameters.top_p": 1})) == _digest(
        make_bundle({lr: 1.0, "parameters.top_p": 1.0})
    )


def test_digest_ignores_key_order_comments_and_yaml_style(make_bundle: Any) -> None:
    data = base_manifest()

    def reverse(node: Any) -> Any:
        return {k: reverse(v) for k, v in reversed(node.items())} if isinstance(node, dict) else node

    flow = "# a comment\n" + yaml.safe_dump(reverse(data), default_flow_style=True, width=60, indent=4)
    assert _digest(make_bundle(yaml_text=flow)) == _digest(make_bundle(manifest=data))


def test_digest_ignores_renamed_prompt_file(make_bundle: Any) -> None:
    renamed = make_bundle(
        {"prompts.system": "prompts/sys-v1.txt"},
        files={"prompts/sys-v1.txt": default_files()["prompts/system.md"]},
    )
    assert _digest(renamed) == _digest(make_bundle())


def test_digest_ignores_where_the_bundle_sits(make_bundle: Any, tmp_path: Path) -> None:
    bundle_dir = make_bundle()
    app_dir = bundle_dir.parent
    moved = tmp_path / "elsewhere" / "deeper" / "support-chat"
    shutil.copytree(app_dir, moved)
    assert _digest(moved / "1.0.0") == _digest(bundle_dir)
    # same digest: the same bundle, usable as a set member or dict key
    assert len({load_bundle(moved / "1.0.0"), load_bundle(bundle_dir)}) == 1


def test_digest_ignores_files_outside_the_corpus_set(make_bundle: Any) -> None:
    base = _digest(make_bundle())
    extra = {
        "../shared/corpus/.DS_Store": b"\x00\x01",
        "../shared/corpus/.git/HEAD": "ref: main\n",
        "../shared/corpus/notes.json": "{}",
        "prompts/unused.md": "not referenced",
    }
    assert _digest(make_bundle(files=extra)) == base


# Every referenced file: flipping one byte must change the digest.
REFERENCED = [
    "prompts/system.md",
    "prompts/user.md",
    "prompts/system.gpt-4.1.md",
    "../shared/corpus/restore.md",
    "../shared/corpus/faq/encryption.html",
    "../shared/golden.jsonl",
    "../shared/train.jsonl",
    "../shared/valid.jsonl",
    "../shared/answer.schema.json",
]


@pytest.mark.parametrize("rel", REFERENCED)
def test_any_byte_of_a_referenced_file_changes_the_digest(make_bundle: Any, rel: str) -> None:
    bundle_dir = make_bundle()
    before = _digest(bundle_dir)
    path = bundle_dir / rel
    path.write_bytes(path.read_bytes() + b"\n")  # one more byte, content still valid
    assert _digest(bundle_dir) != before


def test_adding_renaming_or_removing_a_corpus_file_changes_the_digest(make_bundle: Any) -> None:
    bundle_dir = make_bundle()
    corpus = bundle_dir / "../shared/corpus"
    digests = {_digest(bundle_dir)}
    (corpus / "new.md").write_text("new page\n")
    digests.add(_digest(bundle_dir))
    (corpus / "new.md").rename(corpus / "renamed.md")
    digests.add(_digest(bundle_dir))
    (corpus / "renamed.md").unlink()
    (corpus / "schedules.txt").unlink()
    digests.add(_digest(bundle_dir))
    assert len(digests) == 4


# Manifest values that must change the digest (each differs from the base bundle).
DIFFERENT: list[tuple[str, dict[str, Any]]] = [
    ("temperature", {"parameters.temperature": 0.1}),
    ("model-version", {"model.version": "2024-08-06"}),
    ("description", {"description": "other"}),
    ("top-k", {"retrieval.top_k": 5}),
    ("steps", {"canary.steps": [10, 100]}),
    ("canary-analysis-threshold", {"canary.analysis": {"latency_tolerance": 0.5}}),
    ("optional-set", {"parameters.top_p": 1.0}),
    ("override-removed", {"prompts.overrides": {}}),
    ("same-file-other-role", {"prompts.user_template": DELETE}),
]


@pytest.mark.parametrize("changes", [r[1] for r in DIFFERENT], ids=[r[0] for r in DIFFERENT])
def test_manifest_changes_change_the_digest(make_bundle: Any, changes: dict[str, Any]) -> None:
    assert _digest(make_bundle(changes)) != _digest(make_bundle())
