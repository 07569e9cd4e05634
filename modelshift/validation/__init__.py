"""Data validation with Great Expectations: fine-tuning files, chunk tables and golden datasets.

Great Expectations is imported lazily (inside a suite run), so importing this package is cheap.
"""

from __future__ import annotations

from modelshift.validation.report import (
    FailedExpectation,
    Severity,
    ValidationExample,
    ValidationReport,
    ValidationStatistics,
    report_from_error,
)
from modelshift.validation.suites import (
    CHUNK_SUITE,
    GOLDEN_SUITE,
    TRAINING_SUITE,
    validate_chunks,
    validate_golden_dataset,
    validate_training_file,
)

__all__ = [
    "CHUNK_SUITE",
    "GOLDEN_SUITE",
    "TRAINING_SUITE",
    "FailedExpectation",
    "Severity",
    "ValidationExample",
    "ValidationReport",
    "ValidationStatistics",
    "report_from_error",
    "validate_chunks",
    "validate_golden_dataset",
    "validate_training_file",
]
