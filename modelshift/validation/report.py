"""The result of one data-validation suite: every failed expectation with a human message and examples.

A :class:`ValidationReport` is plain pydantic (JSON-serialisable with ``model_dump(mode="json")``), so the
same object goes to the audit chain as evidence, to a Prefect markdown artifact (:meth:`render_markdown`)
and to a terminal (:meth:`render_text`). :meth:`raise_for_failure` turns a failed report into
:class:`~modelshift.errors.DataValidationError`, with the report in the error's ``context["report"]``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from modelshift.errors import DataValidationError


class Severity(StrEnum):
    """How much a failed expectation matters: an ``error`` fails the suite, a ``warning`` is only reported."""

    ERROR = "error"
    WARNING = "warning"


class ValidationExample(BaseModel):
    """One offending value and where it is (``line 7``, ``chunk 3 (a1b2)``); None for table checks."""

    model_config = ConfigDict(frozen=True)

    where: str | None = None
    value: JsonValue = None


class FailedExpectation(BaseModel):
    """One expectation that did not hold, with the count of offending rows and up to N examples."""

    model_config = ConfigDict(frozen=True)

    #: stable name of the check in its suite, e.g. ``assistant_turn`` (use it in code, not the message)
    check: str
    #: the Great Expectations expectation type, e.g. ``expect_column_values_to_be_null``
    expectation: str
    column: str | None = None
    severity: Severity = Severity.ERROR
    #: what is wrong, for a person: "12 of 40 examples have no assistant turn"
    message: str
    unexpected_count: int | None = None
    element_count: int | None = None
    observed_value: JsonValue = None
    examples: list[ValidationExample] = Field(default_factory=list)


class ValidationStatistics(BaseModel):
    """Counts over the whole suite run, as Great Expectations reports them, plus the rows checked."""

    model_config = ConfigDict(frozen=True)

    evaluated_expectations: int
    successful_expectations: int
    unsuccessful_expectations: int
    rows: int


class ValidationReport(BaseModel):
    """The outcome of one suite on one subject (a file path or a dataset name)."""

    model_config = ConfigDict(frozen=True)

    suite: str
    subject: str
    #: sha256 of the validated file's bytes (None for in-memory tables), so evidence names exact content
    digest: str | None = None
    #: False when at least one expectation of severity ``error`` failed; warnings never fail a suite
    success: bool
    statistics: ValidationStatistics
    #: every failed expectation (errors first, then warnings), in the suite's order within each group
    failures: list[FailedExpectation] = Field(default_factory=list)

    @property
    def errors(self) -> list[FailedExpectation]:
        """The failed expectations that fail the suite."""
        return [f for f in self.failures if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[FailedExpectation]:
        """The failed expectations that are only reported (e.g. duplicate training examples)."""
        return [f for f in self.failures if f.severity is Severity.WARNING]

    def failed_checks(self) -> list[str]:
        """Names of the checks that failed with severity ``error``, in report order."""
        return [f.check for f in self.errors]

    def headline(self) -> str:
        """One line: subject, suite and verdict with counts."""
        stats = self.statistics
        verdict = "passed" if self.success else "FAILED"
        counts = [f"{stats.successful_expectations}/{stats.evaluated_expectations} expectations met"]
        counts.append(f"{stats.rows} rows")
        if self.errors:
            counts.append(f"{len(self.errors)} error(s)")
        if self.warnings:
            counts.append(f"{len(self.warnings)} warning(s)")
        return f"{self.subject}: {self.suite} {verdict} ({', '.join(counts)})"

    def audit_data(self, max_examples: int = 3) -> dict[str, JsonValue]:
        """A compact, JSON-safe summary for an audit event's ``data``: verdict, digest, each failure."""
        return {
            "suite": self.suite,
            "subject": self.subject,
            "digest": self.digest,
            "success": self.success,
            "statistics": self.statistics.model_dump(mode="json"),
            "failures": [
                {
                    "check": f.check,
                    "severity": f.severity.value,
                    "message": f.message,
                    "unexpected_count": f.unexpected_count,
                    "examples": [e.model_dump(mode="json") for e in f.examples[:max_examples]],
                }
                for f in self.failures
            ],
        }

    def render_text(self) -> str:
        """A plain-text report for a terminal or a log: the headline, then each failure with its examples."""
        lines = [self.headline()]
        for failure in self.failures:
            where = f" [{failure.column}]" if failure.column else ""
            lines.append(f"  {failure.severity.value.upper()} {failure.check}{where}: {failure.message}")
            for example in failure.examples:
                lines.append(f"      {_example_text(example)}")
            shown = len(failure.examples)
            if failure.unexpected_count is not None and failure.unexpected_count > shown > 0:
                lines.append(f"      ... and {failure.unexpected_count - shown} more")
        return "\n".join(lines)

    def render_markdown(self) -> str:
        """A markdown report (for a Prefect artifact): verdict, statistics, a table of failures, examples."""
        icon = "✅" if self.success else "❌"
        stats = self.statistics
        out = [
            f"## {icon} `{self.suite}` on `{_md_escape(self.subject)}`",
            "",
            f"**{'Passed' if self.success else 'Failed'}**: {stats.successful_expectations} of "
            f"{stats.evaluated_expectations} expectations met on {stats.rows} rows"
            f" ({len(self.errors)} error(s), {len(self.warnings)} warning(s)).",
        ]
        if self.digest:
            out.append(f"Content sha256: `{self.digest}`.")
        if not self.failures:
            return "\n".join(out) + "\n"
        out += ["", "| severity | check | column | problem | examples |", "|---|---|---|---|---|"]
        for failure in self.failures:
            examples = "<br>".join(_md_escape(_example_text(e)) for e in failure.examples) or "—"
            shown = len(failure.examples)
            if failure.unexpected_count is not None and failure.unexpected_count > shown > 0:
                examples += f"<br>… and {failure.unexpected_count - shown} more"
            out.append(
                f"| {failure.severity.value} | `{failure.check}` | {_md_escape(failure.column or '—')} "
                f"| {_md_escape(failure.message)} | {examples} |"
            )
        return "\n".join(out) + "\n"

    def raise_for_failure(self) -> None:
        """Raise DataValidationError naming the subject and the failed checks when the suite failed.

        The report itself is attached as ``error.context["report"]`` (see :func:`report_from_error`).
        """
        if self.success:
            return
        details = "; ".join(f"{f.check}: {f.message}" for f in self.errors)
        raise DataValidationError(
            f"{self.subject} failed data validation ({self.suite}): {details}. "
            "Fix the data and run the stage again; the full report lists examples of every failure.",
            report=self,
            subject=self.subject,
            suite=self.suite,
            failed_checks=self.failed_checks(),
        )


def report_from_error(error: DataValidationError) -> ValidationReport | None:
    """The report attached to a DataValidationError raised by :meth:`ValidationReport.raise_for_failure`."""
    report = error.context.get("report")
    return report if isinstance(report, ValidationReport) else None


def _example_text(example: ValidationExample) -> str:
    value = _short(example.value)
    return f"{example.where}: {value}" if example.where else value


def _short(value: JsonValue, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_escape(text: str) -> str:
    # a pipe would end the table cell and a newline the row
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
