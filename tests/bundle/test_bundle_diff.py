"""diff_bundles, prompt override resolution, discovery, and the example bundles in the repo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bundle_helpers import SYSTEM, SYSTEM_41, USER

from modelshift.bundle import FieldChange, diff_bundles, discover_bundles, load_bundle
from modelshift.errors import NotFoundError

REPO = Path(__file__).resolve().parents[2]


def test_prompt_change(make_bundle: Any) -> None:
    a = load_bundle(make_bundle())
    b = load_bundle(make_bundle({"version": "1.1.0"}, files={"prompts/system.md": SYSTEM + "Be brief.\n"}))
    diff = diff_bundles(a, b)
    assert not diff.identical
    assert diff.fields == [FieldChange("version", "1.0.0", "1.1.0")]
    assert diff.files_changed == ["prompts.system"]
    assert diff.files_added == diff.files_removed == []
    assert list(diff.prompt_diffs) == ["prompts.system"]
    unified = diff.prompt_diffs["prompts.system"]
    assert "--- support-chat@1.0.0/prompts.system" in unified
    assert "+++ support-chat@1.1.0/prompts.system" in unified
    assert "+Be brief.\n" in unified and "-You are" not in unified
    text = diff.render_text()
    assert "version: '1.0.0' -> '1.1.0'" in text
    assert "changed  prompts.system" in text
    assert "+Be brief." in text
    assert a.digest in text and b.digest in text


def test_parameter_change(make_bundle: Any) -> None:
    a = load_bundle(make_bundle())
    b = load_bundle(make_bundle({"parameters.temperature": 0.7, "parameters.stop": ["END"]}))
    diff = diff_bundles(a, b)
    assert diff.fields == [
        FieldChange("parameters.stop", [], ["END"]),
        FieldChange("parameters.temperature", 0.0, 0.7),
    ]
    assert diff.files_changed == [] and diff.prompt_diffs == {}
    assert "parameters.temperature: 0.0 -> 0.7" in diff.render_text()
    data = json.loads(json.dumps(diff.to_json()))
    assert data["fields"][1] == {"path": "parameters.temperature", "old": 0.0, "new": 0.7}
    assert data["identical"] is False and data["a"]["digest"] == a.digest


def test_identical_and_spelling_only(make_bundle: Any) -> None:
    a = load_bundle(make_bundle())
    b = load_bundle(make_bundle({"prompts.system": "./prompts/system.md", "canary.steps": [5, 25, 50, 100]}))
    diff = diff_bundles(a, b)
    assert diff.identical and diff.fields == [] and diff.prompt_diffs == {}
    assert diff.render_text().endswith("identical: same digest")


def test_added_and_removed_files(make_bundle: Any) -> None:
    a = load_bundle(make_bundle())
    b = load_bundle(
        make_bundle(
            {"prompts.overrides": {"gpt-5": {"system": "prompts/system.gpt-5.md"}}},
            files={"prompts/system.gpt-5.md": "Think, then answer.\n", "../shared/corpus/new.md": "New.\n"},
        )
    )
    diff = diff_bundles(a, b)
    assert diff.files_added == ["prompts.overrides.gpt-5.system", "retrieval.corpus/new.md"]
    assert diff.files_removed == ["prompts.overrides.gpt-4.1.system"]
    assert FieldChange("prompts.overrides.gpt-5.system", None, "prompts/system.gpt-5.md") in diff.fields
    assert "+Think, then answer." in diff.prompt_diffs["prompts.overrides.gpt-5.system"]
    assert "-1. Answer only" in diff.prompt_diffs["prompts.overrides.gpt-4.1.system"]
    text = diff.render_text()
    assert "added    retrieval.corpus/new.md" in text and "removed  prompts.overrides.gpt-4.1.system" in text
    assert "(absent) -> 'prompts/system.gpt-5.md'" in text


# Prompt resolution: (model name asked for, family expected; None = the default prompts)
PROMPT_ROWS = [
    ("gpt-4.1", "gpt-4.1"),
    ("gpt-4.1-mini", "gpt-4.1"),
    ("gpt-4o", "gpt-4"),
    ("gpt-4", "gpt-4"),
    ("gpt-4o-mini-2024-07-18.ft-0123456789abcdef0123456789abcdef", "gpt-4"),
    ("gpt-35-turbo", None),
    ("GPT-4.1", None),  # model names are matched case-sensitively, as Azure spells them
    ("", None),
]


@pytest.mark.parametrize(("model", "family"), PROMPT_ROWS)
def test_prompt_for_picks_the_longest_matching_family(
    make_bundle: Any, model: str, family: str | None
) -> None:
    bundle = load_bundle(
        make_bundle(
            {
                "prompts|overrides|gpt-4": {
                    "system": "prompts/system.gpt-4.md",
                    "user_template": "prompts/u4.md",
                }
            },
            files={"prompts/system.gpt-4.md": "four\n", "prompts/u4.md": "Q4: {question}\n"},
        )
    )
    prompts = bundle.prompt_for(model)
    assert prompts.family == family
    expected_system = {"gpt-4.1": SYSTEM_41, "gpt-4": "four\n", None: SYSTEM}[family]
    assert prompts.system == expected_system
    # gpt-4.1 has no user_template of its own: it keeps the default one
    assert prompts.user_template == ("Q4: {question}\n" if family == "gpt-4" else USER)


def test_prompt_for_defaults_to_the_bundle_model(make_bundle: Any) -> None:
    assert load_bundle(make_bundle({"model.name": "gpt-4.1-nano"})).prompt_for().family == "gpt-4.1"
    assert load_bundle(make_bundle()).prompt_for().family is None  # gpt-4o-mini has no override here


def test_prompt_without_user_template(make_bundle: Any) -> None:
    from bundle_helpers import DELETE

    bundle = load_bundle(make_bundle({"prompts.user_template": DELETE}))
    assert bundle.prompt_for().user_template is None
    assert bundle.prompt_for("gpt-4.1").user_template is None


def test_discover_bundles(make_bundle: Any, tmp_path: Path) -> None:
    app_a = tmp_path / "repo" / "bundles" / "alpha"
    for version in ("1.10.0", "1.2.0", "1.0.0"):
        make_bundle({"version": version}, where=app_a, version_dir=version)
    make_bundle({"app": "beta"}, where=tmp_path / "repo" / "bundles" / "beta", version_dir="2")
    (tmp_path / "repo" / "bundles" / "alpha" / "notes").mkdir()
    expected = [
        app_a / "1.0.0" / "bundle.yaml",
        app_a / "1.2.0" / "bundle.yaml",
        app_a / "1.10.0" / "bundle.yaml",
        tmp_path / "repo" / "bundles" / "beta" / "2" / "bundle.yaml",
    ]
    assert discover_bundles(tmp_path / "repo") == expected
    assert discover_bundles(tmp_path / "repo" / "bundles") == expected
    assert discover_bundles(app_a) == expected[:3]  # one app's directory
    assert discover_bundles(tmp_path / "repo" / "bundles" / "alpha" / "notes") == []
    with pytest.raises(NotFoundError, match="no such directory"):
        discover_bundles(tmp_path / "missing")


EXAMPLES = discover_bundles(REPO) if (REPO / "bundles").is_dir() else []


@pytest.mark.skipif(not EXAMPLES, reason="no example bundles in the repo yet")
@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.parent.name}@{p.parent.name}" for p in EXAMPLES])
def test_example_bundles_load(path: Path) -> None:
    bundle = load_bundle(path)
    assert (bundle.app, bundle.version) == (path.parent.parent.name, path.parent.name)
    assert bundle.prompt_for().system.strip()
