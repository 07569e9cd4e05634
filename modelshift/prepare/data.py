"""Validate the data the prepare stage uses before using it (issue 5: Great Expectations suites).

The fine-tuning files are checked against the TARGET's tokenizer and per-example limit (the base changes,
so a file that fit the old model may not fit the new one); the golden dataset is checked against the
baseline's corpus, since the evaluation stage will ground both bundles on it. Each report is audited as
``data.validated``; a failed one raises :class:`~modelshift.errors.DataValidationError` carrying the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from modelshift import audit
from modelshift.bundle import Bundle
from modelshift.grounding.tokenizers import encoding_name_for_model
from modelshift.platforms.base import ModelRef
from modelshift.store import Store
from modelshift.validation import ValidationReport, validate_golden_dataset, validate_training_file

#: Azure OpenAI's per-example token limit of chat fine-tuning (gpt-4o-mini, gpt-4o, gpt-4.1 families)
FINE_TUNE_EXAMPLE_TOKENS: Final = 65_536

#: called with each report as soon as it exists (the task turns them into artifacts)
ReportSink = Callable[[ValidationReport], None]


def _file(bundle: Bundle, key: str) -> Path:
    return bundle.files[key].path


def _corpus_documents(bundle: Bundle) -> list[str] | None:
    prefix = "retrieval.corpus/"
    docs = [key[len(prefix) :] for key in bundle.files if key.startswith(prefix)]
    return sorted(docs) if bundle.manifest.retrieval is not None else None


def _record(
    report: ValidationReport,
    *,
    store: Store | None,
    subject: str,
    migration_id: str | None,
    actor: str,
    sink: ReportSink | None,
) -> ValidationReport:
    if sink is not None:
        sink(report)
    if store is not None:
        store.append_audit(
            audit.Reason.DATA_VALIDATED, subject, report.audit_data(), actor=actor, migration_id=migration_id
        )
    return report


def validate_fine_tune_data(
    bundle: Bundle,
    target: ModelRef,
    *,
    store: Store | None = None,
    migration_id: str | None = None,
    actor: str = "modelshift",
    sink: ReportSink | None = None,
    max_tokens_per_example: int = FINE_TUNE_EXAMPLE_TOKENS,
    encoding: str | None = None,
) -> list[ValidationReport]:
    """Check the bundle's training (and validation) file for a fine-tune on ``target``; raise
    DataValidationError (with the report) at the first file that fails, after auditing it. ``encoding``
    counts tokens for a target tiktoken does not know (a catalog model); by default the target's own."""
    ft = bundle.manifest.model.fine_tune
    if ft is None:
        return []
    encoding = encoding or encoding_name_for_model(target.name)
    reports: list[ValidationReport] = []
    keys = ["model.fine_tune.training_file"]
    if ft.validation_file is not None:
        keys.append("model.fine_tune.validation_file")
    for key in keys:
        report = validate_training_file(
            _file(bundle, key), encoding=encoding, max_tokens_per_example=max_tokens_per_example
        )
        subject = f"bundle:{bundle.app}@{bundle.version}"
        reports.append(
            _record(report, store=store, subject=subject, migration_id=migration_id, actor=actor, sink=sink)
        )
        report.raise_for_failure()
    return reports


def validate_golden_data(
    bundle: Bundle,
    *,
    store: Store | None = None,
    migration_id: str | None = None,
    actor: str = "modelshift",
    sink: ReportSink | None = None,
) -> ValidationReport:
    """Check the bundle's golden dataset (at least ``evaluation.min_items`` items, sources in its corpus);
    raise DataValidationError (with the report) when it fails, after auditing it."""
    report = validate_golden_dataset(
        _file(bundle, "evaluation.dataset"),
        corpus_documents=_corpus_documents(bundle),
        min_items=bundle.manifest.evaluation.min_items,
    )
    subject = f"bundle:{bundle.app}@{bundle.version}"
    _record(report, store=store, subject=subject, migration_id=migration_id, actor=actor, sink=sink)
    report.raise_for_failure()
    return report
