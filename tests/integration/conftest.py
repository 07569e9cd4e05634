"""Fixtures of the tests that start servers and workers as child processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.prefect_stack import Processes


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Start-and-always-stop for the test's servers and workers."""
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Processes(logs)
    yield running
    running.stop()
