"""ValidationReport: JSON round trip, markdown/text rendering, raise_for_failure; reading GX results."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from validation_helpers import WriteJsonl, chat_example

from modelshift.errors import Blame, DataValidationError
from modelshift.validation import (
    FailedExpectation,
    Severity,
    ValidationExample,
    ValidationReport,
    ValidationStatistics,
    report_from_error,
    validate_training_file,
)
from modelshift.validation.engine import WHERE, Check, json_safe, run_checks


def make_report(*failures: FailedExpectation, subject: str = "data/train.jsonl") -> ValidationReport:
    errors = [f for f in failures if f.severity is Severity.ERROR]
    return ValidationReport(
        suite="fine-tuning-file",
        subject=subject,
        success=not errors,
        statistics=ValidationStatistics(
            evaluated_expectations=5,
            successful_expectations=5 - len(failures),
            unsuccessful_expectations=len(failures),
            rows=40,
        ),
        failures=list(failures),
    )


NO_ASSISTANT = FailedExpectation(
    check="assistant_turn",
    expectation="expect_column_values_to_be_in_set",
    column="missing_assistant",
    message="12 of 40 examples have no assistant turn",
    unexpected_count=12,
    element_count=40,
    examples=[
        ValidationExample(where="line 3", value="roles: user"),
        ValidationExample(where="line 9", value="roles: system, user"),
    ],
)
PIPE = FailedExpectation(
    check="roles",
    expectation="expect_column_values_to_be_null",
    column="bad_roles",
    message="1 of 40 examples use a role other than system | user",
    unexpected_count=1,
    examples=[ValidationExample(where="line 7", value="message 1: role 'a|b'\nnext")],
)
DUPLICATE = FailedExpectation(
    check="duplicates",
    expectation="expect_column_values_to_be_null",
    column="duplicate_of",
    severity=Severity.WARNING,
    message="1 of 40 examples repeat an earlier example",
    unexpected_count=1,
    examples=[ValidationExample(where="line 8", value="same messages as line 2")],
)


def test_report_round_trips_through_json() -> None:
    report = make_report(NO_ASSISTANT, PIPE, DUPLICATE)
    data = json.loads(report.model_dump_json())
    assert data["failures"][0]["examples"][0] == {"where": "line 3", "value": "roles: user"}
    assert data["failures"][2]["severity"] == "warning"
    assert ValidationReport.model_validate(data) == report


def test_real_report_is_json_serialisable(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl([chat_example(1), chat_example(1), "{bad"])
    report = validate_training_file(path, encoding="o200k_base", max_tokens_per_example=100)
    again = ValidationReport.model_validate_json(report.model_dump_json())
    assert again == report
    assert json.loads(report.model_dump_json())["statistics"]["rows"] == 3


def test_markdown_lists_every_failure_with_examples() -> None:
    markdown = make_report(NO_ASSISTANT, PIPE, DUPLICATE).render_markdown()
    lines = markdown.splitlines()
    assert lines[0] == "## ❌ `fine-tuning-file` on `data/train.jsonl`"
    assert "2 of 5 expectations met on 40 rows (2 error(s), 1 warning(s))" in markdown
    assert "| severity | check | column | problem | examples |" in lines
    row = next(line for line in lines if "`assistant_turn`" in line)
    assert "12 of 40 examples have no assistant turn" in row
    assert "line 3: roles: user<br>line 9: roles: system, user<br>… and 10 more" in row
    # pipes and newlines in values must not break the table
    roles = next(line for line in lines if "`roles`" in line)
    assert "system \\| user" in roles
    assert "role 'a\\|b' next" in roles
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 5
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 6 for line in table)
    assert next(line for line in lines if "`duplicates`" in line).startswith("| warning |")


def test_markdown_of_a_passing_report() -> None:
    markdown = make_report().render_markdown()
    assert markdown.startswith("## ✅ `fine-tuning-file`")
    assert "**Passed**: 5 of 5 expectations met on 40 rows" in markdown
    assert "| severity |" not in markdown


def test_text_rendering() -> None:
    text = make_report(NO_ASSISTANT, DUPLICATE).render_text()
    assert text.splitlines() == [
        "data/train.jsonl: fine-tuning-file FAILED (3/5 expectations met, 40 rows, 1 error(s), 1 warning(s))",
        "  ERROR assistant_turn [missing_assistant]: 12 of 40 examples have no assistant turn",
        "      line 3: roles: user",
        "      line 9: roles: system, user",
        "      ... and 10 more",
        "  WARNING duplicates [duplicate_of]: 1 of 40 examples repeat an earlier example",
        "      line 8: same messages as line 2",
    ]


def test_long_example_values_are_shortened_in_text() -> None:
    long = FailedExpectation(
        check="json",
        expectation="expect_column_values_to_be_null",
        message="1 of 1 lines are not a JSON object",
        examples=[ValidationExample(where="line 1", value="x" * 500)],
    )
    text = make_report(long).render_text()
    assert max(len(line) for line in text.splitlines()) < 140
    assert "…" in text


def test_raise_for_failure_names_file_and_checks_and_attaches_the_report() -> None:
    report = make_report(NO_ASSISTANT, PIPE, DUPLICATE)
    with pytest.raises(DataValidationError) as info:
        report.raise_for_failure()
    error = info.value
    assert str(error).startswith("data/train.jsonl failed data validation (fine-tuning-file): ")
    assert "assistant_turn: 12 of 40 examples have no assistant turn" in str(error)
    assert "roles:" in str(error)
    assert "duplicates" not in str(error)  # a warning is not a reason to stop
    assert report_from_error(error) is report
    assert error.context["failed_checks"] == ["assistant_turn", "roles"]
    assert error.blame is Blame.DATA
    assert error.exit_code == 2
    assert not error.retryable


@pytest.mark.parametrize("failures", [(), (DUPLICATE,)], ids=["clean", "warnings-only"])
def test_raise_for_failure_is_silent_on_success(failures: tuple[FailedExpectation, ...]) -> None:
    make_report(*failures).raise_for_failure()


def test_report_from_error_without_a_report() -> None:
    assert report_from_error(DataValidationError("other")) is None


def test_errors_come_before_warnings() -> None:
    frame = pd.DataFrame({WHERE: ["line 1", "line 2"], "a": [None, "dup"], "b": [None, "bad"]})
    checks = [
        Check("warn", lambda gxe: gxe.ExpectColumnValuesToBeNull(column="a"), "{unexpected} warn", "a",
              Severity.WARNING),
        Check("err", lambda gxe: gxe.ExpectColumnValuesToBeNull(column="b"), "{unexpected} of {total}", "b"),
    ]  # fmt: skip
    report = run_checks(frame, checks, suite="s", subject="t")
    assert [f.check for f in report.failures] == ["err", "warn"]
    assert report.failures[0].message == "1 of 2"
    assert not report.success


def test_an_expectation_gx_cannot_evaluate_is_a_failure() -> None:
    frame = pd.DataFrame({WHERE: ["line 1"], "a": [1]})
    checks = [Check("ghost", lambda gxe: gxe.ExpectColumnValuesToBeNull(column="nope"), "never", "nope")]
    report = run_checks(frame, checks, suite="s", subject="t")
    (failure,) = report.failures
    assert failure.message.startswith("could not be evaluated: ")
    assert "nope" in failure.message
    assert not report.success


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        ("x", "x"),
        (3, 3),
        (3.0, 3),
        (2.5, 2.5),
        (math.nan, None),
        (np.int64(7), 7),
        (np.float64(1.5), 1.5),
        (np.bool_(False), False),
        (pd.NA, None),
        ([np.int64(1), math.nan], [1, None]),
        ({"k": np.float64(2.0)}, {"k": 2}),
        (object, "<class 'object'>"),
    ],
)
def test_json_safe(value: Any, expected: Any) -> None:
    assert json_safe(value) == expected


def test_file_reports_carry_the_sha256_of_the_bytes_checked(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl([chat_example(n) for n in range(10)])
    report = validate_training_file(path, encoding="o200k_base", max_tokens_per_example=1000)
    assert report.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"Content sha256: `{report.digest}`." in report.render_markdown()


def test_audit_data_is_compact_and_json_safe() -> None:
    report = make_report(NO_ASSISTANT, DUPLICATE).model_copy(update={"digest": "ab" * 32})
    data = report.audit_data(max_examples=1)
    assert json.loads(json.dumps(data)) == data
    assert data["digest"] == "ab" * 32
    assert data["success"] is False
    assert data["statistics"] == {
        "evaluated_expectations": 5,
        "successful_expectations": 3,
        "unsuccessful_expectations": 2,
        "rows": 40,
    }
    assert data["failures"] == [
        {
            "check": "assistant_turn",
            "severity": "error",
            "message": "12 of 40 examples have no assistant turn",
            "unexpected_count": 12,
            "examples": [{"where": "line 3", "value": "roles: user"}],
        },
        {
            "check": "duplicates",
            "severity": "warning",
            "message": "1 of 40 examples repeat an earlier example",
            "unexpected_count": 1,
            "examples": [{"where": "line 8", "value": "same messages as line 2"}],
        },
    ]
