"""Price table: defaults, lookup order, file overrides, settings, and every file error."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshift.errors import ConfigError
from modelshift.evaluation.pricing import (
    DEFAULT_PRICES,
    ModelPrice,
    PriceTable,
    load_price_table,
    price_table_from_settings,
)
from modelshift.settings import Settings

CATALOG_MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-35-turbo",
    "text-embedding-3-small",
]


@pytest.mark.parametrize("model", CATALOG_MODELS)
def test_defaults_price_every_catalog_model(model: str) -> None:
    assert PriceTable().lookup(model, "any-version") is not None


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("gpt-4o", "2024-05-13", DEFAULT_PRICES["gpt-4o@2024-05-13"]),  # version-specific key wins
        ("gpt-4o", "2024-11-20", DEFAULT_PRICES["gpt-4o"]),
        ("gpt-4o", None, DEFAULT_PRICES["gpt-4o"]),
        ("gpt-4o-mini-2024-07-18.ft-7c1f0e5a", "1", None),  # base name carries the version: no key
        ("gpt-4o-mini.ft-7c1f0e5a", "1", DEFAULT_PRICES["gpt-4o-mini"]),  # fine-tuned: priced as base
        ("my-llama", "3", None),
    ],
)
def test_lookup_order(name: str, version: str | None, expected: ModelPrice | None) -> None:
    assert PriceTable().lookup(name, version) == expected


@pytest.mark.parametrize(
    ("prompt", "completion", "expected"),
    [(1000, 1000, 0.0025 + 0.01), (0, 0, 0.0), (500, 0, 0.00125), (0, 250, 0.0025)],
)
def test_cost_formula(prompt: int, completion: int, expected: float) -> None:
    assert PriceTable().cost("gpt-4o", "2024-11-20", prompt, completion) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "prompt", "completion"), [("my-llama", 10, 10), ("gpt-4o", None, 10), ("gpt-4o", 10, None)]
)
def test_cost_unknown(name: str, prompt: int | None, completion: int | None) -> None:
    assert PriceTable().cost(name, "1", prompt, completion) is None


def test_file_overrides_and_extends_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "currency: EUR\nmodels:\n"
        "  gpt-4o: {prompt_per_1k: 0.003, completion_per_1k: 0.012}\n"
        "  my-llama@3: {prompt_per_1k: 0, completion_per_1k: 0}\n",
        encoding="utf-8",
    )
    table = load_price_table(path)
    assert table.currency == "EUR"
    assert table.lookup("gpt-4o", "2024-11-20") == ModelPrice(prompt_per_1k=0.003, completion_per_1k=0.012)
    assert table.lookup("my-llama", "3") == ModelPrice(prompt_per_1k=0, completion_per_1k=0)
    assert table.lookup("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]  # untouched defaults stay


def test_json_file_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"models": {"gpt-4.1": {"prompt_per_1k": 1, "completion_per_1k": 2}}}', encoding="utf-8")
    table = price_table_from_settings(Settings(price_table_file=path))
    assert table.cost("gpt-4.1", None, 1000, 1000) == pytest.approx(3.0)
    assert table.currency == "USD"
    assert price_table_from_settings(Settings(price_table_file=None)) == PriceTable()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        ("models: [unclosed", "not valid YAML/JSON"),
        ("- a list", "must be a mapping"),
        ("models:\n  gpt-4o: {prompt_per_1k: -1, completion_per_1k: 0}", r"models\.gpt-4o\.prompt_per_1k"),
        ("models:\n  gpt-4o: {prompt_per_1k: 1}", r"models\.gpt-4o\.completion_per_1k"),
        ("models:\n  gpt-4o: {prompt: 1, completion_per_1k: 1}", r"models\.gpt-4o"),
        ("modles: {}", "modles"),
    ],
)
def test_file_errors_name_the_file_and_field(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "prices.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_price_table(path)
    assert str(path) in str(info.value)
