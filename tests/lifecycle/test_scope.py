"""Change scope in the seed's eight terms, and the user-extendable family table."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshift.errors import ConfigError
from modelshift.lifecycle import ChangeScope, FamilyTable, ModelPoint, classify_scope, load_families

S = ChangeScope


@pytest.mark.parametrize(
    ("current", "target", "scope"),
    [
        # the seed's own examples
        (
            ModelPoint(name="gpt-4o", version="2024-08-06"),
            ModelPoint(name="gpt-4o", version="2024-11-20"),
            S.MINOR_VERSION,
        ),
        (
            ModelPoint(name="davinci", version="1"),
            ModelPoint(name="gpt-35-turbo", version="0125"),
            S.INTERMEDIATE,
        ),
        (ModelPoint(name="gpt-3", version="1"), ModelPoint(name="gpt-4", version="0613"), S.MAJOR),
        (
            ModelPoint(name="gpt-4", version="0613"),
            ModelPoint(name="gpt-4-turbo", version="2024-04-09"),
            S.VARIANT,
        ),
        (
            ModelPoint(name="gpt-4", version="0613"),
            ModelPoint(name="gpt-4o", version="2024-11-20"),
            S.GENERATIONAL,
        ),
        (
            ModelPoint(name="gpt-4", version="0613"),
            ModelPoint(name="DeepSeek-R1", version="1"),
            S.GENERAL_MODEL_CHANGE,
        ),
        (
            ModelPoint(name="gpt-4o", version="2024-11-20", platform="azure-openai"),
            ModelPoint(name="gpt-4o", version="2024-11-20", platform="openai-compatible"),
            S.DEPLOYMENT_OPTION_CHANGE,
        ),
        # boundary and extra rows
        (
            ModelPoint(name="gpt-4o", version="2024-11-20"),
            ModelPoint(name="gpt-4o-mini", version="2024-07-18"),
            S.VARIANT,
        ),
        (
            ModelPoint(name="gpt-4", version="0613"),
            ModelPoint(name="gpt-4o-mini", version="2024-07-18"),
            S.GENERATIONAL,
        ),
        (
            ModelPoint(name="gpt-4o", version="2024-11-20"),
            ModelPoint(name="gpt-4.1", version="2025-04-14"),
            S.INTERMEDIATE,
        ),
        (
            ModelPoint(name="gpt-4o", version="2024-11-20"),
            ModelPoint(name="gpt-5", version="2025-08-07"),
            S.MAJOR,
        ),
        (
            ModelPoint(name="gpt-4o", version="2024-11-20"),
            ModelPoint(name="text-embedding-3-small", version="1"),
            S.SPECIALIZED_MODEL_CHANGE,
        ),
        (
            ModelPoint(name="gpt-4o", version="2024-11-20"),
            ModelPoint(name="o3", version="2025-04-16"),
            S.GENERAL_MODEL_CHANGE,
        ),
        (
            ModelPoint(name="gpt-4o", version="1"),
            ModelPoint(name="Llama-3.3-70B", version="1"),
            S.GENERAL_MODEL_CHANGE,
        ),
        (
            ModelPoint(name="gpt-4o", version="1"),
            ModelPoint(name="acme-brain", version="1"),
            S.GENERAL_MODEL_CHANGE,
        ),
        # a fine-tuned id belongs to its base family
        (
            ModelPoint(name="gpt-4o-mini-2024-07-18.ft-abc", version="1"),
            ModelPoint(name="gpt-4o-mini", version="2025-01-01"),
            S.MINOR_VERSION,
        ),
    ],
)
def test_scope_rows(
    current: ModelPoint, target: ModelPoint, scope: ChangeScope, families: FamilyTable
) -> None:
    decision = classify_scope(current, target, families)
    assert decision.scope == scope, decision.reason


def test_unknown_model_says_how_to_fix(families: FamilyTable) -> None:
    decision = classify_scope(ModelPoint(name="gpt-4o"), ModelPoint(name="acme-brain"), families)
    assert "MODELSHIFT_FAMILIES_FILE" in decision.reason and decision.to_family is None


def test_platform_change_with_model_change_keeps_wider_scope(families: FamilyTable) -> None:
    decision = classify_scope(
        ModelPoint(name="gpt-4", version="0613"),
        ModelPoint(name="DeepSeek-R1", platform="openai-compatible"),
        families,
    )
    assert decision.scope == S.GENERAL_MODEL_CHANGE and decision.platform_changed


def test_user_file_extends_and_overrides(tmp_path: Path) -> None:
    file = tmp_path / "families.yaml"
    file.write_text(
        "families:\n"
        "  prizedata:\n    provider: contoso\n    kind: specialized\n    line: prize\n    major: 1\n"
        "    generation: '1'\n    match: [prizedata]\n"
        "  gpt-4o-mini:\n    variant_of: gpt-4.1\n",
        encoding="utf-8",
    )
    table = load_families(file)
    assert classify_scope(ModelPoint(name="gpt-4"), ModelPoint(name="prizedata-7b"), table).scope == (
        S.SPECIALIZED_MODEL_CHANGE
    )
    # the override changed one field and kept the rest of the default entry
    assert table.families["gpt-4o-mini"].variant_of == "gpt-4.1"
    assert table.families["gpt-4o-mini"].match == ("gpt-4o-mini",)
    assert str(file) in table.sources


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("families: [1, 2]", "expected a mapping"),
        ("families:\n  x: 3\n", "families.x: expected a mapping"),
        ("other: 1\n", "unknown top-level key"),
        ("families: {a: {provider: p, line: l, major: 1, generation: '1'}}", "families.a.match"),
        (
            "families: {a: {provider: p, line: l, major: 1, generation: '1', match: [zz], variant_of: nope}}",
            "unknown family 'nope'",
        ),
        (
            "families: {a: {provider: p, line: l, major: 1, generation: '1', match: [gpt-4o]}}",
            "also claimed by family 'gpt-4o'",
        ),
        (
            "families: {a: {provider: p, line: l, major: -1, generation: '1', match: [zz]}}",
            "families.a.major",
        ),
        (
            "families: {a: {provider: p, line: l, major: 1, generation: '1', match: [zz], colour: red}}",
            "families.a.colour",
        ),
        ("families: {a: {provider: p, line: l, major: 1, generation: '1', match: ['  ']}}", "empty prefix"),
        ("families: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_family_file_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    file = tmp_path / "fam.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_families(file)
    assert expected in str(info.value) and str(file) in str(info.value)


def test_missing_family_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the model-family file"):
        load_families(tmp_path / "nope.yaml")


def test_empty_user_file_keeps_default(tmp_path: Path) -> None:
    file = tmp_path / "empty.yaml"
    file.write_text("", encoding="utf-8")
    assert load_families(file).families.keys() == load_families().families.keys()
