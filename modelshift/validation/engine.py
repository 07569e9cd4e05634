"""Run a list of checks as one Great Expectations suite on a DataFrame and turn the result into a report.

Suites build a DataFrame of per-row features in plain Python (one row per line, chunk or item, with a
``where`` column such as ``line 7``) and describe each check as a :class:`Check`: the GX expectation to run
and the sentence a person reads when it fails. This module owns everything GX-specific: the lazy import
(``import great_expectations`` takes about 2 s, so only a validation run pays for it), an ephemeral in-memory
context per run (no files, no progress bars, no network), and reading GX's result shapes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import JsonValue

from modelshift.validation.report import (
    FailedExpectation,
    Severity,
    ValidationExample,
    ValidationReport,
    ValidationStatistics,
)

#: the column every suite frame carries to say where a row came from ("line 7", "chunk c-12")
WHERE = "where"

# GX keeps a process-wide "current context"; building one per run under a lock keeps runs from threads
# from swapping contexts under each other.
_gx_lock = threading.Lock()


@dataclass(frozen=True)
class Check:
    """One expectation of a suite, with the message template shown when it fails.

    ``build`` receives the ``great_expectations.expectations`` module (imported lazily) and returns the
    expectation. ``message`` is a ``str.format`` template over ``unexpected`` (offending rows), ``total``
    (rows checked), ``observed`` (a table check's observed value) and ``missing`` (values a set check
    missed, comma-joined).
    """

    name: str
    build: Callable[[ModuleType], Any]
    message: str
    column: str | None = None
    severity: Severity = Severity.ERROR


def gx_modules() -> tuple[ModuleType, ModuleType]:
    """``great_expectations`` and ``great_expectations.expectations``, imported on first use."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def run_checks(
    frame: Any,
    checks: Sequence[Check],
    *,
    suite: str,
    subject: str,
    max_examples: int = 5,
    digest: str | None = None,
) -> ValidationReport:
    """Validate ``frame`` (a pandas DataFrame) against ``checks`` in an ephemeral GX context."""
    gx, gxe = gx_modules()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    expectations = []
    for check in checks:
        expectation = check.build(gxe)
        # the check's name travels in meta so results map back without relying on GX's result order
        expectation.meta = {"check": check.name}
        expectations.append(expectation)
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [WHERE],
        "partial_unexpected_count": max_examples,
    }
    with _gx_lock:
        context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                progress_bars=ProgressBarsConfig(globally=False),
            ),
        )
        batch_definition = (
            context.data_sources.add_pandas("modelshift")
            .add_dataframe_asset("rows")
            .add_batch_definition_whole_dataframe("all")
        )
        gx_suite = gx.ExpectationSuite(name=suite, expectations=expectations)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(gx_suite, result_format=result_format)

    by_name = {check.name: check for check in checks}
    failures: dict[str, FailedExpectation] = {}
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        check = by_name[(config.meta or {})["check"]]
        failures[check.name] = _failure(
            check, config.type, item.result or {}, item.exception_info, max_examples
        )
    ordered = [failures[c.name] for c in checks if c.name in failures]
    ordered.sort(key=lambda f: f.severity is not Severity.ERROR)
    stats = result.statistics
    return ValidationReport(
        suite=suite,
        subject=subject,
        digest=digest,
        success=not any(f.severity is Severity.ERROR for f in ordered),
        statistics=ValidationStatistics(
            evaluated_expectations=int(stats["evaluated_expectations"]),
            successful_expectations=int(stats["successful_expectations"]),
            unsuccessful_expectations=int(stats["unsuccessful_expectations"]),
            rows=len(frame),
        ),
        failures=ordered,
    )


def _failure(
    check: Check,
    expectation_type: str,
    result: Mapping[str, Any],
    exception_info: Mapping[str, Any] | None,
    max_examples: int,
) -> FailedExpectation:
    error = _exception_message(exception_info)
    if error is not None:
        # GX could not evaluate the expectation (e.g. a column missing): our bug, but still a failure
        return FailedExpectation(
            check=check.name,
            expectation=expectation_type,
            column=check.column,
            severity=check.severity,
            message=f"could not be evaluated: {error}",
        )
    unexpected = result.get("unexpected_count")
    total = result.get("element_count")
    observed = json_safe(result.get("observed_value"))
    # GX builds the missing list from a set: sort it so reports are the same on every run
    missing = sorted((json_safe(v) for v in result.get("partial_missing_list") or []), key=str)
    examples: list[ValidationExample] = []
    column = check.column
    for row in result.get("unexpected_index_list") or []:
        if len(examples) >= max_examples:
            break
        value = row.get(column) if column else None
        examples.append(ValidationExample(where=str(row.get(WHERE)), value=json_safe(value)))
    if not examples:
        examples = [ValidationExample(value=v) for v in missing[:max_examples]]
    values = {
        "unexpected": unexpected if unexpected is not None else "?",
        "total": total if total is not None else "?",
        "observed": observed,
        "missing": ", ".join(str(v) for v in missing),
    }
    return FailedExpectation(
        check=check.name,
        expectation=expectation_type,
        column=column,
        severity=check.severity,
        message=check.message.format_map(values),
        unexpected_count=int(unexpected) if unexpected is not None else (len(missing) or None),
        element_count=int(total) if total is not None else None,
        observed_value=observed,
        examples=examples,
    )


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """The exception text GX caught, in either of its two ``exception_info`` shapes, or None."""
    if not info:
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    # shape when a metric failed: {"MetricConfigurationID(...)": {"raised_exception": True, ...}}
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message"))
    return None


def json_safe(value: Any) -> JsonValue:
    """``value`` as plain JSON: numpy scalars unwrapped, NaN to None, whole floats to int."""
    if value is None or isinstance(value, bool | str):
        return value
    if type(value).__name__ == "NAType":  # pandas.NA, without importing pandas here
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, list | tuple | dict):
        value = item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, int | bool | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)
