"""Importing modelshift.validation stays cheap: Great Expectations loads only when a suite runs."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import sys, modelshift.validation\n"
    "print(sorted(m for m in ('great_expectations', 'pandas', 'scipy') if m in sys.modules))\n"
)


def test_package_import_does_not_load_great_expectations() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
