"""Referenced files: missing, unreadable or unusable content is reported against the right file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from bundle_helpers import DELETE, golden_lines, training_lines

from modelshift.bundle import load_bundle
from modelshift.errors import BundleValidationError, ConfigError

GOLDEN = "../shared/golden.jsonl"
TRAIN = "../shared/train.jsonl"
VALID = "../shared/valid.jsonl"
USER = "prompts/user.md"


def _problems(bundle_dir: Path) -> list[str]:
    with pytest.raises(BundleValidationError) as info:
        load_bundle(bundle_dir)
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2
    return info.value.problems


def _item(**fields: Any) -> str:
    base = {"id": "qx", "question": "q?", "answer": "a."}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not DELETE}) + "\n"


# (id, changes, files, expected "<file>: <field>: " start (file relative to the bundle dir), fragment)
ROWS: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    (
        "system-missing",
        {},
        {"prompts/system.md": None},
        "bundle.yaml: prompts.system: line ",
        "prompts/system.md: file not found",
    ),
    (
        "system-is-dir",
        {"prompts.system": "prompts"},
        {},
        "bundle.yaml: prompts.system: line ",
        "is a directory",
    ),
    (
        "system-not-utf8",
        {},
        {"prompts/system.md": b"caf\xe9\n"},
        "prompts/system.md: prompts.system: line 1: ",
        "not UTF-8",
    ),
    ("training-missing", {}, {TRAIN: None}, "bundle.yaml: model.fine_tune.training_file: line ", "not found"),
    (
        "corpus-missing",
        {"retrieval.corpus": "../shared/nope"},
        {},
        "bundle.yaml: retrieval.corpus: line ",
        "corpus directory not found",
    ),
    (
        "corpus-is-file",
        {"retrieval.corpus": GOLDEN},
        {},
        "bundle.yaml: retrieval.corpus: line ",
        "corpus must be a directory",
    ),
    (
        "corpus-no-text-files",
        {"retrieval.corpus": "../shared/empty"},
        {"../shared/empty/data.json": "{}", "../shared/empty/.hidden.md": "x"},
        "bundle.yaml: retrieval.corpus: line ",
        "no .md, .txt or .html files",
    ),
    (
        "corpus-file-not-utf8",
        {},
        {"../shared/corpus/bad.md": b"\xff\xfe"},
        "../shared/corpus/bad.md: retrieval.corpus: line 1: ",
        "not UTF-8",
    ),
    ("golden-missing", {}, {GOLDEN: None}, "bundle.yaml: evaluation.dataset: line ", "not found"),
    (
        "golden-not-json",
        {},
        {GOLDEN: golden_lines(1) + "{oops\n"},
        f"{GOLDEN}: evaluation.dataset: line 2: ",
        "not valid JSON",
    ),
    (
        "golden-not-object",
        {},
        {GOLDEN: "[1, 2]\n"},
        f"{GOLDEN}: evaluation.dataset: line 1: ",
        "expected a JSON object",
    ),
    (
        "golden-no-id",
        {},
        {GOLDEN: _item(id=DELETE)},
        f"{GOLDEN}: evaluation.dataset: line 1: ",
        "id: missing",
    ),
    (
        "golden-empty-question",
        {},
        {GOLDEN: _item(question=" ")},
        f"{GOLDEN}: evaluation.dataset: line 1: ",
        "question: missing or not a non-empty string",
    ),
    (
        "golden-no-answer",
        {},
        {GOLDEN: _item(answer=DELETE)},
        f"{GOLDEN}: evaluation.dataset: line 1: ",
        "answer: missing",
    ),
    (
        "golden-repeated-id",
        {},
        {GOLDEN: _item() + "\n" + _item()},
        f"{GOLDEN}: evaluation.dataset: line 3: ",
        "'qx' repeats the id on line 1",
    ),
    (
        "golden-source-unknown",
        {},
        {GOLDEN: _item(sources=["restore.md", "gone.md"])},
        f"{GOLDEN}: evaluation.dataset: line 1: ",
        "'gone.md' is not a file of the retrieval corpus",
    ),
    (
        "golden-tags-not-list",
        {},
        {GOLDEN: _item(tags="restore")},
        f"{GOLDEN}: evaluation.dataset: line 1: ",
        "tags: must be a list",
    ),
    ("golden-empty", {}, {GOLDEN: "\n"}, f"{GOLDEN}: evaluation.dataset: ", "has no items"),
    (
        "train-not-json",
        {},
        {TRAIN: training_lines() + "nope\n"},
        f"{TRAIN}: model.fine_tune.training_file: line 11: ",
        "not valid JSON",
    ),
    (
        "train-no-messages",
        {},
        {TRAIN: training_lines() + '{"prompt": "x"}\n'},
        f"{TRAIN}: model.fine_tune.training_file: line 11: ",
        'expected {"messages": [...]}',
    ),
    (
        "train-bad-role",
        {},
        {
            TRAIN: training_lines() + '{"messages": [{"role": "bot", "content": "x"}, '
            '{"role": "assistant", "content": "y"}]}\n'
        },
        f"{TRAIN}: model.fine_tune.training_file: line 11: ",
        "messages[0].role: 'bot' is not one of",
    ),
    (
        "train-content-missing",
        {},
        {TRAIN: training_lines() + '{"messages": [{"role": "assistant"}]}\n'},
        f"{TRAIN}: model.fine_tune.training_file: line 11: ",
        "messages[0].content: missing",
    ),
    (
        "train-weight-on-user",
        {},
        {
            TRAIN: training_lines() + '{"messages": [{"role": "user", "content": "x", '
            '"weight": 1}, {"role": "assistant", "content": "y"}]}\n'
        },
        f"{TRAIN}: model.fine_tune.training_file: line 11: ",
        "only assistant messages may carry a weight",
    ),
    (
        "train-weight-2",
        {},
        {TRAIN: training_lines() + '{"messages": [{"role": "assistant", "content": "y", "weight": 2}]}\n'},
        f"{TRAIN}: model.fine_tune.training_file: line 11: ",
        "weight: must be 0 or 1, got 2",
    ),
    (
        "train-no-assistant",
        {},
        {TRAIN: training_lines() + '{"messages": [{"role": "user", "content": "x"}]}\n'},
        f"{TRAIN}: model.fine_tune.training_file: line 11: ",
        "no assistant message",
    ),
    (
        "train-9-examples",
        {},
        {TRAIN: training_lines(9)},
        f"{TRAIN}: model.fine_tune.training_file: ",
        "has 9 valid example(s); Azure OpenAI fine-tuning needs at least 10",
    ),
    (
        "validation-empty",
        {},
        {VALID: ""},
        f"{VALID}: model.fine_tune.validation_file: ",
        "has 0 valid example(s)",
    ),
    (
        "template-unknown-placeholder",
        {},
        {USER: "Q: {question}\nName: {name}\n"},
        f"{USER}: prompts.user_template: line 2: ",
        "placeholder {name} is not allowed",
    ),
    (
        "template-attribute",
        {},
        {USER: "{question.upper}\n"},
        f"{USER}: prompts.user_template: line 1: ",
        "placeholder {question.upper} is not allowed",
    ),
    (
        "template-index",
        {},
        {USER: "{question}\n{context[0]}\n"},
        f"{USER}: prompts.user_template: line 2: ",
        "placeholder {context[0]} is not allowed",
    ),
    (
        "template-positional",
        {},
        {USER: "{question} {}\n"},
        f"{USER}: prompts.user_template: line 1: ",
        "placeholder {} is not allowed",
    ),
    (
        "template-single-open",
        {},
        {USER: '{question}\nJSON like {"a": 1\n'},
        f"{USER}: prompts.user_template: line 2: ",
        "single '{'",
    ),
    (
        "template-single-close",
        {},
        {USER: "{question} }\n"},
        f"{USER}: prompts.user_template: line 1: ",
        "single '}'",
    ),
    (
        "template-no-question",
        {},
        {USER: "Context: {context}\n"},
        f"{USER}: prompts.user_template: ",
        "no {question} placeholder",
    ),
    (
        "override-template",
        {"prompts|overrides|gpt-4.1|user_template": "prompts/user41.md"},
        {"prompts/user41.md": "{question} {answer}\n"},
        "prompts/user41.md: prompts.overrides.gpt-4.1.user_template: line 1: ",
        "placeholder {answer} is not allowed",
    ),
    (
        "schema-not-json",
        {},
        {"../shared/answer.schema.json": "{type: object}"},
        "../shared/answer.schema.json: evaluation.json_schema: line 1: ",
        "not valid JSON",
    ),
    (
        "schema-not-object",
        {},
        {"../shared/answer.schema.json": "[]"},
        "../shared/answer.schema.json: evaluation.json_schema: ",
        "must be an object",
    ),
    (
        "schema-invalid",
        {},
        {"../shared/answer.schema.json": '{"type": "objekt"}'},
        "../shared/answer.schema.json: evaluation.json_schema: ",
        "not a valid JSON Schema at type",
    ),
]


@pytest.mark.parametrize(
    ("changes", "files", "start", "fragment"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_file_problem(
    make_bundle: Any, changes: dict[str, Any], files: dict[str, Any], start: str, fragment: str
) -> None:
    bundle_dir = make_bundle(changes, files=files)
    expected_start = os.path.normpath(bundle_dir / start.split(": ", 1)[0]) + ": " + start.split(": ", 1)[1]
    problems = _problems(bundle_dir)
    matching = [p for p in problems if p.startswith(expected_start) and fragment in p]
    assert matching, (expected_start, fragment, problems)


@pytest.mark.parametrize(
    "template",
    [
        "{question}",
        "{context}\n{question}",
        "Literal {{braces}} stay: {question}",
        "{question!s:>10}",
        "{question}}}",
    ],
)
def test_valid_templates_load(make_bundle: Any, template: str) -> None:
    assert load_bundle(make_bundle(files={USER: template})).texts["prompts.user_template"] == template


def test_bom_and_blank_lines_are_accepted(make_bundle: Any) -> None:
    bundle_dir = make_bundle(files={GOLDEN: b"\xef\xbb\xbf" + golden_lines(2).replace("\n", "\n\n").encode()})
    assert load_bundle(bundle_dir).files["evaluation.dataset"].size > 0


def test_tool_call_assistant_without_content_is_valid(make_bundle: Any) -> None:
    line = {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        ]
    }
    load_bundle(make_bundle(files={TRAIN: training_lines() + json.dumps(line) + "\n"}))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(make_bundle: Any) -> None:
    bundle_dir = make_bundle()
    (bundle_dir / "prompts/system.md").chmod(0)
    problems = _problems(bundle_dir)
    assert any(
        p.startswith(f"{bundle_dir / 'prompts/system.md'}: prompts.system: cannot read") for p in problems
    )


def test_findings_per_file_are_capped(make_bundle: Any) -> None:
    problems = _problems(make_bundle(files={GOLDEN: "{oops\n" * 50}))
    golden = [p for p in problems if "golden.jsonl" in p]
    assert len(golden) == 21
    assert golden[-1].endswith("... and 30 more problem(s) in this file")


def test_every_problem_is_reported_at_once(make_bundle: Any) -> None:
    bundle_dir = make_bundle(
        {"parameters.temperature": 3, "canary.steps": [50, 25], "retrieval.overlap_tokens": 999, "extra": 1},
        files={"prompts/system.gpt-4.1.md": None, USER: "{query}", GOLDEN: _item() + _item(), TRAIN: "x\n"},
    )
    problems = _problems(bundle_dir)
    wanted = [
        "parameters.temperature",
        "canary.steps",
        "retrieval.overlap_tokens",
        ": extra:",
        "prompts.overrides.gpt-4.1.system",
        "placeholder {query}",
        "repeats the id",
        "training_file: line 1",
    ]
    for fragment in wanted:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) >= len(wanted)


# YAML-level failures: (id, bundle.yaml text, expected problem prefix after the file name)
YAML_ROWS = [
    ("syntax", "app: x\nmodel: [unclosed\n", "(syntax): line 3: not valid YAML"),
    ("tabs", "app: x\n\tversion: 1\n", "(syntax): line 2: not valid YAML"),
    ("not-mapping", "- a\n- b\n", "(top level): line 1: expected a mapping"),
    ("empty", "", "(top level): line 1: expected a mapping"),
]


@pytest.mark.parametrize(("text", "expected"), [r[1:] for r in YAML_ROWS], ids=[r[0] for r in YAML_ROWS])
def test_yaml_problems(make_bundle: Any, text: str, expected: str) -> None:
    bundle_dir = make_bundle(yaml_text=text)
    problems = _problems(bundle_dir)
    assert len(problems) == 1 and problems[0].startswith(f"{bundle_dir / 'bundle.yaml'}: {expected}"), (
        problems
    )


def test_duplicate_key_is_reported_with_both_lines(make_bundle: Any) -> None:
    text = (make_bundle() / "bundle.yaml").read_text()
    bundle_dir = make_bundle(yaml_text=text + "app: other-app\n")
    problems = _problems(bundle_dir)
    last = len(text.splitlines()) + 1
    assert (
        f"{bundle_dir / 'bundle.yaml'}: app: line {last}: key repeats the one on line 1; keep one" in problems
    )


def test_yaml_not_utf8(make_bundle: Any) -> None:
    bundle_dir = make_bundle()
    (bundle_dir / "bundle.yaml").write_bytes(b"app: caf\xe9\n")
    assert "not UTF-8" in _problems(bundle_dir)[0]


def test_missing_bundle_yaml(tmp_path: Path) -> None:
    problems = _problems(tmp_path)
    assert problems == [
        f"{tmp_path / 'bundle.yaml'}: (bundle): not found; pass a bundle directory or its bundle.yaml"
    ]


def test_unquoted_dates_stay_strings(make_bundle: Any) -> None:
    text = (make_bundle() / "bundle.yaml").read_text().replace("version: '2024-07-18'", "version: 2024-07-18")
    assert "version: 2024-07-18" in text
    assert load_bundle(make_bundle(yaml_text=text)).manifest.model.version == "2024-07-18"


def test_load_accepts_dir_or_yaml_path(make_bundle: Any) -> None:
    bundle_dir = make_bundle()
    assert load_bundle(bundle_dir).digest == load_bundle(bundle_dir / "bundle.yaml").digest
    assert load_bundle(bundle_dir).root == bundle_dir.resolve()


def test_files_cover_every_reference(make_bundle: Any) -> None:
    bundle = load_bundle(make_bundle())
    assert sorted(bundle.files) == [
        "evaluation.dataset",
        "evaluation.json_schema",
        "model.fine_tune.training_file",
        "model.fine_tune.validation_file",
        "prompts.overrides.gpt-4.1.system",
        "prompts.system",
        "prompts.user_template",
        "retrieval.corpus/faq/encryption.html",
        "retrieval.corpus/restore.md",
        "retrieval.corpus/schedules.txt",
    ]
    entry = bundle.files["prompts.system"]
    assert entry.path.read_bytes() and entry.size == len(entry.path.read_bytes())


def test_read_bytes_refuses_a_file_changed_after_load(make_bundle: Any) -> None:
    bundle_dir = make_bundle()
    bundle = load_bundle(bundle_dir)
    (bundle_dir / "prompts/system.md").write_text("changed")
    with pytest.raises(ConfigError, match=r"changed since bundle support-chat@1\.0\.0 was loaded"):
        bundle.read_bytes("prompts.system")
    # the prompt pinned at load time still goes out
    assert bundle.prompt_for().system.startswith("You are the Contoso")
