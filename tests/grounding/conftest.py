"""Fixtures for the grounding tests: the example corpora shipped with the bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_APPS = ("claims-assistant", "hr-handbook", "support-chat")


def corpus_dir(app: str) -> Path:
    """The example corpus of ``app``."""
    return REPO / "bundles" / app / "shared" / "corpus"


def golden_path(app: str) -> Path:
    """The golden dataset of ``app``."""
    return REPO / "bundles" / app / "shared" / "golden.jsonl"


@pytest.fixture(params=EXAMPLE_APPS)
def example_app(request: pytest.FixtureRequest) -> str:
    """Each example app in turn."""
    return str(request.param)
