"""BundleContent: JSON-serialisable, content-addressed, and materializes back to the same digest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from modelshift.bundle import BundleContent, bundle_from_content, load_bundle, materialize
from modelshift.errors import ConfigError, StateError


def test_content_manifest_uses_logical_keys(make_bundle: Any) -> None:
    content = load_bundle(make_bundle()).content()
    assert content.manifest["prompts"]["system"] == "prompts.system"
    assert content.manifest["prompts"]["overrides"]["gpt-4.1"]["system"] == "prompts.overrides.gpt-4.1.system"
    assert content.manifest["retrieval"]["corpus"] == "retrieval.corpus"
    assert content.manifest["model"]["fine_tune"]["training_file"] == "model.fine_tune.training_file"
    assert content.manifest["canary"]["steps"] == [5, 25, 50, 100]  # defaults are part of the content
    assert "retrieval.corpus/faq/encryption.html" in content.files


def test_content_is_json_and_round_trips(make_bundle: Any) -> None:
    bundle = load_bundle(make_bundle())
    content = bundle.content()
    text = json.dumps(content.to_json())
    back = BundleContent.from_json(json.loads(text))
    assert back.digest == content.digest == bundle.digest
    assert dict(back.blobs) == dict(content.blobs)
    without = content.to_json(include_blobs=False)
    assert "blobs" not in without and BundleContent.from_json(without).digest == bundle.digest


def test_blobs_are_content_addressed(make_bundle: Any) -> None:
    same = "Same words.\n"
    bundle = load_bundle(
        make_bundle(
            {"prompts|overrides|gpt-4.1|user_template": "prompts/user.md"},
            files={"prompts/system.md": same, "prompts/system.gpt-4.1.md": same},
        )
    )
    content = bundle.content()
    assert all(hashlib.sha256(b).hexdigest() == sha for sha, b in content.blobs.items())
    assert len(content.blobs) == len(set(content.files.values())) < len(content.files)
    # two versions sharing a corpus share its blobs
    other = load_bundle(make_bundle({"version": "1.1.0"}, where=bundle.root.parent, version_dir="1.1.0"))
    corpus = {k: v for k, v in content.files.items() if k.startswith("retrieval.corpus/")}
    assert corpus == {k: v for k, v in other.content().files.items() if k.startswith("retrieval.corpus/")}


@pytest.mark.parametrize("form", ["two-args", "three-args"])
def test_materialize_keeps_the_digest(make_bundle: Any, tmp_path: Path, form: str) -> None:
    bundle = load_bundle(make_bundle({"prompts.system": "./prompts/system.md"}))
    content = bundle.content()
    dest = tmp_path / "worker" / "checkout-less"
    if form == "two-args":
        copy = materialize(content, dest)
    else:
        copy = materialize(BundleContent(content.manifest, content.files), content.blobs, dest)
    assert copy.digest == bundle.digest
    assert copy.root == dest.resolve()
    assert load_bundle(dest).digest == bundle.digest  # a worker loading it from disk agrees
    assert copy.prompt_for("gpt-4.1-mini") == bundle.prompt_for("gpt-4.1-mini")
    assert copy.prompt_for() == bundle.prompt_for()
    assert sorted(copy.files) == sorted(bundle.files)
    # and the materialized copy round-trips again
    assert materialize(copy.content(), tmp_path / "again").digest == bundle.digest


def test_materialize_without_optional_sections(make_bundle: Any, tmp_path: Path) -> None:
    from bundle_helpers import DELETE

    bundle = load_bundle(
        make_bundle({"retrieval": DELETE, "model.fine_tune": DELETE, "prompts.overrides": {}})
    )
    assert materialize(bundle.content(), tmp_path / "m").digest == bundle.digest


def test_tampered_blob_is_refused_before_anything_is_written(make_bundle: Any, tmp_path: Path) -> None:
    content = load_bundle(make_bundle()).content()
    sha = content.files["prompts.system"]
    blobs = dict(content.blobs)
    blobs[sha] = b"You are a pirate.\n"
    dest = tmp_path / "dest"
    with pytest.raises(StateError, match=r"blob for prompts\.system should hash to") as info:
        materialize(content, blobs, dest)
    assert sha in str(info.value)
    assert not dest.exists()


def test_missing_blob_is_refused(make_bundle: Any, tmp_path: Path) -> None:
    content = load_bundle(make_bundle()).content()
    blobs = {k: v for k, v in content.blobs.items() if k != content.files["evaluation.dataset"]}
    with pytest.raises(StateError, match=r"for evaluation\.dataset is missing"):
        materialize(content, blobs, tmp_path / "dest")


def test_bundle_from_content_checks_the_recorded_digest(make_bundle: Any, tmp_path: Path) -> None:
    bundle = load_bundle(make_bundle())
    content = bundle.content()
    assert bundle_from_content(content, tmp_path / "ok", digest=bundle.digest).digest == bundle.digest
    altered = dict(content.manifest)
    altered["parameters"] = {**altered["parameters"], "temperature": 1.5}
    forged = BundleContent(altered, content.files, content.blobs)
    with pytest.raises(StateError, match=f"expected {bundle.digest}"):
        bundle_from_content(forged, tmp_path / "bad", digest=bundle.digest)
    tampered = {**content.blobs, content.files["prompts.user_template"]: b"{question}"}
    with pytest.raises(StateError, match="should hash to"):
        bundle_from_content(content, tmp_path / "bad2", digest=bundle.digest, blobs=tampered)


def test_from_json_refuses_an_altered_record(make_bundle: Any) -> None:
    data = load_bundle(make_bundle()).content().to_json()
    data["manifest"]["parameters"]["max_tokens"] = 9999
    with pytest.raises(StateError, match="was altered"):
        BundleContent.from_json(data)
    with pytest.raises(StateError, match="malformed"):
        BundleContent.from_json({"manifest": {}})


def test_content_missing_a_file_hash_is_a_state_error(make_bundle: Any) -> None:
    content = load_bundle(make_bundle()).content()
    files = {k: v for k, v in content.files.items() if k != "prompts.system"}
    with pytest.raises(StateError, match=r"lacks the hash of referenced file prompts\.system"):
        _ = BundleContent(content.manifest, files).digest


def test_materialize_refuses_a_non_empty_directory(make_bundle: Any, tmp_path: Path) -> None:
    content = load_bundle(make_bundle()).content()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "stale.md").write_text("x")
    with pytest.raises(ConfigError, match="not an empty directory"):
        materialize(content, tmp_path / "busy")


def test_materialize_refuses_paths_escaping_the_directory(make_bundle: Any, tmp_path: Path) -> None:
    content = load_bundle(make_bundle()).content()
    files = dict(content.files)
    files["retrieval.corpus/../../../escape.md"] = files["retrieval.corpus/restore.md"]
    with pytest.raises(StateError, match="outside"):
        materialize(BundleContent(content.manifest, files, content.blobs), tmp_path / "dest")
    assert not (tmp_path / "escape.md").exists()
