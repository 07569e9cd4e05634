"""Fixtures for the validation tests (builders live in validation_helpers.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from validation_helpers import Line, WriteJsonl, encode_lines


@pytest.fixture
def write_jsonl(tmp_path: Path) -> WriteJsonl:
    """Write lines to a fresh ``data.jsonl`` under tmp_path and return its path."""

    def write(lines: Sequence[Line]) -> Path:
        path = tmp_path / "data.jsonl"
        path.write_bytes(encode_lines(lines))
        return path

    return write
