"""The data-validation suites: fine-tuning files, chunk tables and golden datasets.

Each suite builds a DataFrame of per-row features in plain Python first (a line that cannot even be parsed
becomes a row with a flag, so it is reported like any other problem) and runs a Great Expectations suite on
it (see :mod:`modelshift.validation.engine`). Every suite reports *all* its failures at once.

Decisions worth knowing:
- Duplicate fine-tuning examples are a **warning**, not an error: Azure OpenAI accepts them and repeating an
  example is a legitimate (if blunt) way to up-weight it, but accidental copies skew training, so the report
  lists them. Examples a validation file shares with its training file (``overlap_with``) are a warning too.
- A line is reported once, for its first problem: a line that is not JSON is not also "missing messages".
- Blank lines in JSONL files are skipped; the byte-order mark Azure allows at the start of a file is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from modelshift.grounding.tokenizers import get_encoding
from modelshift.validation.chat import ALLOWED_ROLES, chat_features, example_fingerprint
from modelshift.validation.engine import WHERE, Check, run_checks
from modelshift.validation.fields import (
    describe_type,
    field,
    has_type,
    id_problem,
    is_str_list,
    list_problems,
    make_frame,
    norm_doc,
    text_problem,
)
from modelshift.validation.jsonl import JsonlLine, read_jsonl
from modelshift.validation.report import Severity, ValidationReport

TRAINING_SUITE = "fine-tuning-file"
CHUNK_SUITE = "chunk-table"
GOLDEN_SUITE = "golden-dataset"

#: Azure OpenAI refuses training files with fewer examples than this
AZURE_MIN_EXAMPLES = 10

_CHUNK_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": (str, int),
    "document": str,
    "start": int,
    "end": int,
    "token_count": int,
    "text": str,
}


def validate_training_file(
    path: str | Path,
    *,
    encoding: str,
    max_tokens_per_example: int,
    min_examples: int = AZURE_MIN_EXAMPLES,
    overlap_with: str | Path | None = None,
    max_examples: int = 5,
) -> ValidationReport:
    """Check an Azure OpenAI chat fine-tuning JSONL file (training or validation) against the target model.

    ``encoding`` is the target model's tiktoken encoding (``o200k_base``, ``cl100k_base``) and
    ``max_tokens_per_example`` its per-example limit; ``max_examples`` caps the examples per failure.
    For a validation file, ``overlap_with`` names the training file: examples found in both are a warning
    (they make the validation loss look better than it is).
    A missing or unreadable file raises ConfigError; bad content never raises, it is reported.
    """
    file = Path(path)
    enc = get_encoding(encoding)
    data = read_jsonl(file, what="fine-tuning file")
    other = _fingerprints(Path(overlap_with)) if overlap_with is not None else {}
    rows: list[dict[str, Any]] = []
    first_seen: dict[str, str] = {}
    for line in data.lines:
        row = _line_row(line)
        features = chat_features(line.data, enc) if line.data is not None else None
        duplicate_of = None
        if features is not None and features.fingerprint is not None:
            duplicate_of = first_seen.get(features.fingerprint)
            if duplicate_of is None:
                first_seen[features.fingerprint] = line.where
            else:
                duplicate_of = f"same messages as {duplicate_of}"
        usable = features is not None and features.messages_problem is None
        row.update(
            messages_problem=features.messages_problem if features else None,
            bad_roles=features.bad_roles if features else None,
            missing_assistant=features.missing_assistant if features else None,
            empty_assistant=features.empty_assistant if features else None,
            bad_weight=features.bad_weight if features else None,
            tokens=features.tokens if features else None,
            duplicate_of=duplicate_of,
            also_in=other.get(features.fingerprint) if features and features.fingerprint else None,
            example=1 if usable else 0,
        )
        rows.append(row)
    roles = ", ".join(sorted(ALLOWED_ROLES))
    checks = [
        *_line_checks("lines"),
        Check(
            "messages",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="messages_problem"),
            "{unexpected} of {total} examples have no usable `messages` list (a non-empty list of objects)",
            column="messages_problem",
        ),
        Check(
            "roles",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="bad_roles"),
            "{unexpected} of {total} examples use a role other than " + roles,
            column="bad_roles",
        ),
        Check(
            "assistant_turn",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="missing_assistant"),
            "{unexpected} of {total} examples have no assistant turn",
            column="missing_assistant",
        ),
        Check(
            "assistant_content",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="empty_assistant"),
            "{unexpected} of {total} examples have an assistant turn with empty content",
            column="empty_assistant",
        ),
        Check(
            "weight",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="bad_weight"),
            "{unexpected} of {total} examples have a `weight` that is not 0/1 or is not on an assistant turn",
            column="bad_weight",
        ),
        Check(
            "token_limit",
            lambda gxe: gxe.ExpectColumnValuesToBeBetween(column="tokens", max_value=max_tokens_per_example),
            f"{{unexpected}} of {{total}} examples are longer than {max_tokens_per_example} tokens "
            f"({encoding}); shorten or split them",
            column="tokens",
        ),
        Check(
            "min_examples",
            lambda gxe: gxe.ExpectColumnSumToBeBetween(column="example", min_value=min_examples),
            f"the file has {{observed}} usable examples; fine-tuning needs at least {min_examples}",
            column="example",
        ),
        Check(
            "duplicates",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="duplicate_of"),
            "{unexpected} of {total} examples repeat an earlier example (allowed, but it up-weights them)",
            column="duplicate_of",
            severity=Severity.WARNING,
        ),
    ]
    if overlap_with is not None:
        checks.append(
            Check(
                "overlap",
                lambda gxe: gxe.ExpectColumnValuesToBeNull(column="also_in"),
                f"{{unexpected}} of {{total}} examples also appear in {overlap_with}",
                column="also_in",
                severity=Severity.WARNING,
            )
        )
    columns = [WHERE, "utf8_error", "json_error", "messages_problem", "bad_roles", "missing_assistant"]
    columns += ["empty_assistant", "bad_weight", "tokens", "duplicate_of", "also_in", "example"]
    return run_checks(
        make_frame(rows, columns),
        checks,
        suite=TRAINING_SUITE,
        subject=str(file),
        max_examples=max_examples,
        digest=data.sha256,
    )


def validate_chunks(
    chunks: Iterable[Mapping[str, Any] | Any],
    *,
    documents: Iterable[str],
    max_tokens: int,
    encoding: str | None = None,
    subject: str = "chunk table",
    max_examples: int = 5,
) -> ValidationReport:
    """Check a chunk table (dicts or objects with id, document, start, end, token_count, text).

    ``documents`` is every source document of the corpus; each must have at least one chunk, and no chunk
    may come from a document outside it. ``max_tokens`` is the chunk-size limit. With ``encoding`` (the
    target's tiktoken encoding) every ``token_count`` must also equal the count of the chunk's text.
    """
    corpus = sorted({norm_doc(d) for d in documents})
    enc = get_encoding(encoding) if encoding is not None else None
    rows: list[dict[str, Any]] = []
    for position, chunk in enumerate(chunks, start=1):
        fields = {name: field(chunk, name) for name in _CHUNK_FIELDS}
        wrong = [name for name, kind in _CHUNK_FIELDS.items() if not has_type(fields[name], kind)]
        ok = {name: value for name, value in fields.items() if name not in wrong}
        chunk_id = str(ok["id"]) if "id" in ok else None
        start, end = ok.get("start"), ok.get("end")
        text = ok.get("text")
        mismatch = None
        if enc is not None and text is not None and "token_count" in ok:
            actual = len(enc.encode(text, disallowed_special=()))
            if actual != ok["token_count"]:
                mismatch = f"token_count {ok['token_count']}, {encoding} counts {actual}"
        rows.append(
            {
                WHERE: f"chunk {position}" + (f" ({chunk_id})" if chunk_id is not None else ""),
                "bad_fields": ", ".join(f"{n} {describe_type(fields[n])}" for n in wrong) or None,
                "id": chunk_id,
                "document": norm_doc(ok["document"]) if "document" in ok else None,
                "span": end - start if start is not None and end is not None else None,
                "token_count": ok.get("token_count"),
                "text_chars": len(text.strip()) if text is not None else None,
                "token_mismatch": mismatch,
            }
        )
    checks = [
        Check(
            "not_empty",
            lambda gxe: gxe.ExpectTableRowCountToBeBetween(min_value=1),
            "the chunk table is empty; did the corpus yield any text?",
        ),
        Check(
            "fields",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="bad_fields"),
            "{unexpected} of {total} chunks have a missing field or a field of the wrong type",
            column="bad_fields",
        ),
        Check(
            "unique_ids",
            lambda gxe: gxe.ExpectColumnValuesToBeUnique(column="id"),
            "{unexpected} chunks share their id with another chunk",
            column="id",
        ),
        Check(
            "text",
            lambda gxe: gxe.ExpectColumnValuesToBeBetween(column="text_chars", min_value=1),
            "{unexpected} of {total} chunks have empty text",
            column="text_chars",
        ),
        Check(
            "token_limit",
            lambda gxe: gxe.ExpectColumnValuesToBeBetween(column="token_count", max_value=max_tokens),
            f"{{unexpected}} of {{total}} chunks have more than {max_tokens} tokens",
            column="token_count",
        ),
        Check(
            "span",
            lambda gxe: gxe.ExpectColumnValuesToBeBetween(column="span", min_value=1),
            "{unexpected} of {total} chunks do not have start < end (end - start shown)",
            column="span",
        ),
        Check(
            "coverage",
            lambda gxe: gxe.ExpectColumnDistinctValuesToContainSet(column="document", value_set=corpus),
            "corpus documents without any chunk: {missing}",
            column="document",
        ),
        Check(
            "known_documents",
            lambda gxe: gxe.ExpectColumnValuesToBeInSet(column="document", value_set=corpus),
            "{unexpected} of {total} chunks come from a document that is not in the corpus",
            column="document",
        ),
    ]
    if encoding is not None:
        checks.append(
            Check(
                "token_count_exact",
                lambda gxe: gxe.ExpectColumnValuesToBeNull(column="token_mismatch"),
                f"{{unexpected}} of {{total}} chunks have a token_count that differs from {encoding}'s count"
                " of their text; re-chunk with the target tokenizer",
                column="token_mismatch",
            )
        )
    columns = [WHERE, "bad_fields", "id", "document", "span", "token_count", "text_chars", "token_mismatch"]
    return run_checks(
        make_frame(rows, columns), checks, suite=CHUNK_SUITE, subject=subject, max_examples=max_examples
    )


def validate_golden_dataset(
    path: str | Path,
    *,
    corpus_documents: Iterable[str] | None = None,
    min_items: int = 1,
    max_examples: int = 5,
) -> ValidationReport:
    """Check a golden dataset (JSONL of id/question/answer/sources/tags) used by the evaluation gate.

    With ``corpus_documents``, every name in an item's ``sources`` must be one of them.
    A missing or unreadable file raises ConfigError; bad content never raises, it is reported.
    """
    file = Path(path)
    corpus = {norm_doc(d) for d in corpus_documents} if corpus_documents is not None else None
    rows: list[dict[str, Any]] = []
    data = read_jsonl(file, what="golden dataset")
    for line in data.lines:
        row = _line_row(line)
        row.update(id=None, id_problem=None, question_problem=None, answer_problem=None)
        row.update(type_problem=None, unknown_sources=None, item=0)
        item = line.data
        if item is not None:
            item_id, bad_id = id_problem(item.get("id"))
            sources = item.get("sources")
            row.update(
                id=item_id,
                id_problem=bad_id,
                question_problem=text_problem(item.get("question"), "question"),
                answer_problem=text_problem(item.get("answer"), "answer"),
                type_problem=list_problems(item, ("sources", "tags")),
                item=1,
            )
            if corpus is not None and is_str_list(sources):
                unknown = [s for s in sources if norm_doc(s) not in corpus]
                row["unknown_sources"] = ", ".join(unknown) or None
        rows.append(row)
    checks = [
        *_line_checks("lines"),
        Check(
            "id_present",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="id_problem"),
            "{unexpected} of {total} items have no id (a non-empty string or number)",
            column="id_problem",
        ),
        Check(
            "unique_ids",
            lambda gxe: gxe.ExpectColumnValuesToBeUnique(column="id"),
            "{unexpected} items share their id with another item",
            column="id",
        ),
        Check(
            "question",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="question_problem"),
            "{unexpected} of {total} items have an empty or missing question",
            column="question_problem",
        ),
        Check(
            "answer",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="answer_problem"),
            "{unexpected} of {total} items have an empty or missing answer",
            column="answer_problem",
        ),
        Check(
            "field_types",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="type_problem"),
            "{unexpected} of {total} items have sources or tags that are not lists of strings",
            column="type_problem",
        ),
        Check(
            "min_items",
            lambda gxe: gxe.ExpectColumnSumToBeBetween(column="item", min_value=min_items),
            f"the dataset has {{observed}} items; at least {min_items} are needed",
            column="item",
        ),
    ]
    if corpus is not None:
        checks.append(
            Check(
                "sources",
                lambda gxe: gxe.ExpectColumnValuesToBeNull(column="unknown_sources"),
                "{unexpected} of {total} items cite a source that is not in the corpus",
                column="unknown_sources",
            )
        )
    columns = [WHERE, "utf8_error", "json_error", "id", "id_problem", "question_problem", "answer_problem"]
    columns += ["type_problem", "unknown_sources", "item"]
    return run_checks(
        make_frame(rows, columns),
        checks,
        suite=GOLDEN_SUITE,
        subject=str(file),
        max_examples=max_examples,
        digest=data.sha256,
    )


def _fingerprints(path: Path) -> dict[str, str]:
    """Fingerprint -> ``<file> line N`` (first occurrence) of every example with a messages list."""
    found: dict[str, str] = {}
    for line in read_jsonl(path, what="fine-tuning file").lines:
        messages = line.data.get("messages") if line.data is not None else None
        if isinstance(messages, list) and messages:
            found.setdefault(example_fingerprint(messages), f"{path.name} {line.where}")
    return found


def _line_row(line: JsonlLine) -> dict[str, Any]:
    return {WHERE: line.where, "utf8_error": line.utf8_error, "json_error": line.json_error}


def _line_checks(unit: str) -> list[Check]:
    return [
        Check(
            "utf8",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="utf8_error"),
            f"{{unexpected}} of {{total}} {unit} are not valid UTF-8; save the file as UTF-8",
            column="utf8_error",
        ),
        Check(
            "json",
            lambda gxe: gxe.ExpectColumnValuesToBeNull(column="json_error"),
            f"{{unexpected}} of {{total}} {unit} are not a JSON object",
            column="json_error",
        ),
    ]
