"""Checks of the files a bundle references: what would make the bundle unusable.

Each check takes bytes and returns ``(line, message)`` findings; the loader turns them into
``"<file>: <field.path>: line N: <message>"`` problems. Deep data-quality checks (Great Expectations) are a
separate stage; these only catch what would break loading, prompting, evaluation or a fine-tuning upload.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

Finding = tuple[int | None, str]

#: placeholders a user template may use (Python str.format syntax)
TEMPLATE_FIELDS: frozenset[str] = frozenset({"question", "context"})
#: Azure OpenAI refuses a fine-tuning training file with fewer examples than this
MIN_TRAINING_EXAMPLES = 10
_CHAT_ROLES = frozenset({"system", "user", "assistant"})


def decode_text(data: bytes) -> tuple[str | None, Finding | None]:
    """UTF-8 text (a BOM is allowed, as Azure's fine-tuning upload allows it), or a finding saying where."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, (line, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")


def template_findings(text: str) -> list[Finding]:
    """Placeholders other than {question}/{context}, unbalanced braces, or no {question} at all."""
    findings: list[Finding] = []
    names: set[str] = set()
    i, line = 0, 1
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch in "{}" and text[i : i + 2] in ("{{", "}}"):
            i += 2  # an escaped brace is literal text
            continue
        elif ch == "}":
            findings.append((line, "single '}' in template; write '}}' for a literal brace"))
        elif ch == "{":
            end = text.find("}", i + 1)
            nxt = text.find("{", i + 1)
            if end == -1 or (nxt != -1 and nxt < end):
                findings.append((line, "single '{' in template; write '{{' for a literal brace"))
            else:
                field = text[i + 1 : end]
                name = field.split("!", 1)[0].split(":", 1)[0]
                if name not in TEMPLATE_FIELDS:
                    shown = field.replace("\n", "\\n")
                    message = f"placeholder {{{shown}}} is not allowed; use only {{question}} and {{context}}"
                    findings.append((line, message))
                names.add(name)
                line += field.count("\n")
                i = end + 1
                continue
        i += 1
    if "question" not in names:
        findings.append(
            (None, "template has no {question} placeholder, so the user's question is never sent")
        )
    return findings


def _json_lines(text: str) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed object or None, error) for every non-blank line."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue  # blank lines (a trailing newline, spacing) carry no record
        try:
            yield number, json.loads(raw), None
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def golden_findings(text: str, corpus_files: Collection[str] | None) -> tuple[list[Finding], int]:
    """Findings for a golden dataset, and how many items it has.

    ``corpus_files`` are the corpus relpaths; when given, every item's ``sources`` must name one of them.
    """
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    items = 0
    for line, obj, error in _json_lines(text):
        if error is not None:
            findings.append((line, error))
            continue
        if not isinstance(obj, dict):
            findings.append((line, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        items += 1
        item_id = obj.get("id")
        if not isinstance(item_id, str) or not item_id.strip():
            findings.append((line, "id: missing or not a non-empty string"))
        elif item_id in seen:
            findings.append(
                (line, f"id: {item_id!r} repeats the id on line {seen[item_id]}; ids must be unique")
            )
        else:
            seen[item_id] = line
        for name in ("question", "answer"):
            if not _nonempty_str(obj.get(name)):
                findings.append((line, f"{name}: missing or not a non-empty string"))
        for name in ("sources", "tags"):
            value = obj.get(name)
            if value is not None and not (isinstance(value, list) and all(_nonempty_str(v) for v in value)):
                findings.append((line, f"{name}: must be a list of non-empty strings"))
        sources = obj.get("sources")
        if corpus_files is not None and isinstance(sources, list):
            for source in sources:
                if isinstance(source, str) and source not in corpus_files:
                    findings.append((line, f"sources: {source!r} is not a file of the retrieval corpus"))
    if items == 0 and not findings:
        findings.append((None, "the dataset has no items; add one JSON object per line"))
    return findings, items


def _message_findings(line: int, index: int, msg: Any) -> list[Finding]:
    where = f"messages[{index}]"
    if not isinstance(msg, dict):
        return [(line, f"{where}: expected an object with role and content")]
    out: list[Finding] = []
    role = msg.get("role")
    if role not in _CHAT_ROLES:
        out.append((line, f"{where}.role: {role!r} is not one of system, user, assistant"))
    content = msg.get("content")
    tool_call = role == "assistant" and ("tool_calls" in msg or "function_call" in msg)
    if not (isinstance(content, str | list) or (content is None and tool_call)):
        out.append((line, f"{where}.content: missing or not a string"))
    if "weight" in msg:
        if role != "assistant":
            out.append((line, f"{where}.weight: only assistant messages may carry a weight"))
        elif msg["weight"] not in (0, 1) or isinstance(msg["weight"], bool):
            out.append((line, f"{where}.weight: must be 0 or 1, got {msg['weight']!r}"))
    return out


def chat_jsonl_findings(text: str, min_examples: int) -> list[Finding]:
    """Findings for an Azure OpenAI chat fine-tuning file: one ``{"messages": [...]}`` per line."""
    findings: list[Finding] = []
    examples = 0
    for line, obj, error in _json_lines(text):
        if error is not None:
            findings.append((line, error))
            continue
        messages = obj.get("messages") if isinstance(obj, dict) else None
        if not isinstance(messages, list) or not messages:
            findings.append((line, 'expected {"messages": [...]} with at least one message'))
            continue
        examples += 1
        for index, msg in enumerate(messages):
            findings.extend(_message_findings(line, index, msg))
        if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
            findings.append((line, "messages: no assistant message, so the example teaches nothing"))
    if examples < min_examples:
        findings.append(
            (None, f"has {examples} valid example(s); Azure OpenAI fine-tuning needs at least {min_examples}")
        )
    return findings


def json_schema_findings(text: str) -> list[Finding]:
    """The answer schema must be JSON and a valid JSON Schema."""
    import jsonschema  # imported here: only bundles with a json_schema pay for it

    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        return [(exc.lineno, f"not valid JSON ({exc.msg} at column {exc.colno})")]
    if not isinstance(schema, dict):
        return [(None, f"a JSON Schema must be an object, got {type(schema).__name__}")]
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return [(None, f"not a valid JSON Schema at {where}: {exc.message}")]
    return []
