"""bundle.yaml schema rules: a failing row per rule (message names file, field, line); boundary rows pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bundle_helpers import DELETE

from modelshift.bundle import load_bundle
from modelshift.errors import BundleValidationError

AML = {
    "model.platform": "azure-ml",
    "model.endpoint": "support-ep",
    "model.location": DELETE,
}
COMPAT = {
    "model.platform": "openai-compatible",
    "model.endpoint": "http://127.0.0.1:8000/v1",
    "model.subscription": DELETE,
    "model.resource_group": DELETE,
    "model.account": DELETE,
    "model.location": DELETE,
    "model.deployment": DELETE,
}

# (id, changes, field path reported, fragment of the message); field None = the bundle loads
ROWS: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("app-pattern", {"app": "Support_Chat"}, "app", "should match pattern"),
    ("app-too-short", {"app": "a"}, "app", "should match pattern"),
    ("app-two-chars-ok", {"app": "ab"}, None, ""),
    ("app-63-chars-ok", {"app": "a" * 63}, None, ""),
    ("app-64-chars", {"app": "a" * 64}, "app", "should match pattern"),
    ("version-space", {"version": "1.0 0"}, "version", "should match pattern"),
    ("version-number", {"version": 1.0}, "version", 'quote the value, e.g. "1.0"'),
    ("unknown-top-key", {"colour": "blue"}, "colour", "unknown key 'colour'"),
    ("unknown-nested-key", {"model.sku.tier": "S0"}, "model.sku.tier", "allowed here: capacity, name"),
    ("platform-unknown", {"model.platform": "gcp"}, "model.platform", "must be one of azure-openai"),
    ("platform-missing", {"model.platform": DELETE}, "model.platform", "must be one of"),
    ("aoai-needs-subscription", {"model.subscription": DELETE}, "model.subscription", "required"),
    ("aoai-needs-resource-group", {"model.resource_group": DELETE}, "model.resource_group", "required"),
    ("aoai-needs-account", {"model.account": DELETE}, "model.account", "required"),
    ("aoai-needs-location", {"model.location": DELETE}, "model.location", "required"),
    ("aoai-needs-deployment", {"model.deployment": DELETE}, "model.deployment", "required"),
    (
        "subscription-not-guid",
        {"model.subscription": "my-sub"},
        "model.subscription",
        "not a subscription id",
    ),
    ("aml-ok", AML, None, ""),
    ("aml-needs-endpoint", {**AML, "model.endpoint": DELETE}, "model.endpoint", "required"),
    ("aml-needs-workspace", {**AML, "model.account": DELETE}, "model.account", "required"),
    ("compat-ok", COMPAT, None, ""),
    ("compat-needs-endpoint", {**COMPAT, "model.endpoint": DELETE}, "model.endpoint", "required"),
    ("compat-endpoint-not-url", {**COMPAT, "model.endpoint": "127.0.0.1:8000"}, "model.endpoint", "http(s)"),
    ("model-name-missing", {"model.name": DELETE}, "model.name", "required"),
    ("model-version-date-ok", {"model.version": "2024-07-18"}, None, ""),
    ("sku-capacity-zero", {"model.sku.capacity": 0}, "model.sku.capacity", "greater than or equal to 1"),
    ("sku-capacity-string", {"model.sku.capacity": "50"}, "model.sku.capacity", "valid integer"),
    ("suffix-40-ok", {"model.fine_tune.suffix": "s" * 40}, None, ""),
    ("suffix-41", {"model.fine_tune.suffix": "s" * 41}, "model.fine_tune.suffix", "pattern"),
    ("suffix-bad-char", {"model.fine_tune.suffix": "a.b"}, "model.fine_tune.suffix", "pattern"),
    (
        "epochs-zero",
        {"model.fine_tune.hyperparameters.n_epochs": 0},
        "model.fine_tune.hyperparameters.n_epochs",
        "greater than or equal to 1",
    ),
    (
        "lr-zero",
        {"model.fine_tune.hyperparameters.learning_rate_multiplier": 0},
        "model.fine_tune.hyperparameters.learning_rate_multiplier",
        "greater than 0",
    ),
    (
        "training-file-missing-key",
        {"model.fine_tune.training_file": DELETE},
        "model.fine_tune.training_file",
        "required",
    ),
    ("system-absolute", {"prompts.system": "/etc/system.md"}, "prompts.system", "is absolute"),
    ("system-backslash", {"prompts.system": "prompts\\system.md"}, "prompts.system", "backslashes"),
    ("system-empty", {"prompts.system": " "}, "prompts.system", "path is empty"),
    ("prompts-system-missing", {"prompts.system": DELETE}, "prompts.system", "required"),
    (
        "override-needs-system",
        {"prompts|overrides|gpt-4.1|system": DELETE},
        "prompts.overrides.gpt-4.1.system",
        "required",
    ),
    ("temperature-0-int-ok", {"parameters.temperature": 0}, None, ""),
    ("temperature-2-ok", {"parameters.temperature": 2}, None, ""),
    (
        "temperature-above-2",
        {"parameters.temperature": 2.01},
        "parameters.temperature",
        "less than or equal to 2",
    ),
    (
        "temperature-negative",
        {"parameters.temperature": -0.1},
        "parameters.temperature",
        "greater than or equal",
    ),
    ("temperature-missing", {"parameters.temperature": DELETE}, "parameters.temperature", "required"),
    ("top-p-above-1", {"parameters.top_p": 1.01}, "parameters.top_p", "less than or equal to 1"),
    ("max-tokens-zero", {"parameters.max_tokens": 0}, "parameters.max_tokens", "greater than or equal to 1"),
    ("max-tokens-string", {"parameters.max_tokens": "400"}, "parameters.max_tokens", "valid integer"),
    ("stop-4-ok", {"parameters.stop": ["a", "b", "c", "d"]}, None, ""),
    ("stop-5", {"parameters.stop": ["a", "b", "c", "d", "e"]}, "parameters.stop", "at most 4"),
    (
        "presence-above-2",
        {"parameters.presence_penalty": 2.5},
        "parameters.presence_penalty",
        "less than or equal",
    ),
    (
        "frequency-below-minus-2",
        {"parameters.frequency_penalty": -2.5},
        "parameters.frequency_penalty",
        "greater than or equal",
    ),
    ("tokenizer-unknown", {"retrieval.tokenizer": "gpt2"}, "retrieval.tokenizer", "o200k_base"),
    ("chunk-16-ok", {"retrieval.chunk_tokens": 16, "retrieval.overlap_tokens": 15}, None, ""),
    (
        "chunk-15",
        {"retrieval.chunk_tokens": 15, "retrieval.overlap_tokens": 0},
        "retrieval.chunk_tokens",
        "greater than or equal to 16",
    ),
    (
        "overlap-equals-chunk",
        {"retrieval.overlap_tokens": 512},
        "retrieval.overlap_tokens",
        "must be less than chunk_tokens (512)",
    ),
    (
        "overlap-negative",
        {"retrieval.overlap_tokens": -1},
        "retrieval.overlap_tokens",
        "greater than or equal to 0",
    ),
    ("top-k-zero", {"retrieval.top_k": 0}, "retrieval.top_k", "greater than or equal to 1"),
    ("no-retrieval-ok", {"retrieval": DELETE}, None, ""),
    ("confidence-0.5-ok", {"evaluation.confidence": 0.5}, None, ""),
    ("confidence-0.999-ok", {"evaluation.confidence": 0.999}, None, ""),
    (
        "confidence-low",
        {"evaluation.confidence": 0.4999},
        "evaluation.confidence",
        "greater than or equal to 0.5",
    ),
    (
        "confidence-high",
        {"evaluation.confidence": 0.9991},
        "evaluation.confidence",
        "less than or equal to 0.999",
    ),
    ("min-items-zero", {"evaluation.min_items": 0}, "evaluation.min_items", "greater than or equal to 1"),
    ("metrics-empty", {"evaluation.metrics": {}}, "evaluation.metrics", "at least 1"),
    (
        "metric-needs-direction",
        {"evaluation.metrics.answer_f1.greater_is_better": DELETE},
        "evaluation.metrics.answer_f1.greater_is_better",
        "required",
    ),
    (
        "margin-negative",
        {"evaluation.metrics.answer_f1.absolute_margin": -0.01},
        "evaluation.metrics.answer_f1.absolute_margin",
        "greater than or equal to 0",
    ),
    (
        "relative-margin-negative",
        {"evaluation.metrics.answer_f1.relative_margin": -1},
        "evaluation.metrics.answer_f1.relative_margin",
        "greater than or equal to 0",
    ),
    (
        "zero-baseline-unknown",
        {"evaluation.metrics.answer_f1.zero_baseline": "maybe"},
        "evaluation.metrics.answer_f1.zero_baseline",
        "'absolute', 'fail' or 'pass'",
    ),
    ("judge-incomplete", {"evaluation.judge": {"deployment": "judge"}}, "evaluation.judge.model", "required"),
    ("dataset-missing-key", {"evaluation.dataset": DELETE}, "evaluation.dataset", "required"),
    ("steps-single-100-ok", {"canary.steps": [100]}, None, ""),
    ("steps-1-ok", {"canary.steps": [1, 100]}, None, ""),
    ("steps-zero", {"canary.steps": [0, 100]}, "canary.steps", "percentages in 1..100"),
    ("steps-above-100", {"canary.steps": [50, 101]}, "canary.steps", "percentages in 1..100"),
    ("steps-repeat", {"canary.steps": [5, 5, 100]}, "canary.steps", "strictly increasing"),
    ("steps-decrease", {"canary.steps": [50, 25, 100]}, "canary.steps", "strictly increasing"),
    ("steps-not-to-100", {"canary.steps": [5, 50]}, "canary.steps", "must end at 100"),
    ("steps-empty", {"canary.steps": []}, "canary.steps", "at least 1"),
    (
        "min-requests-zero",
        {"canary.min_requests_per_step": 0},
        "canary.min_requests_per_step",
        "greater than",
    ),
    ("duration-zero", {"canary.step_duration_seconds": 0}, "canary.step_duration_seconds", "greater than"),
    ("extensions-negative", {"canary.max_step_extensions": -1}, "canary.max_step_extensions", "greater than"),
    ("on-inconclusive-unknown", {"canary.on_inconclusive": "wait"}, "canary.on_inconclusive", "'rollback'"),
    (
        "approval-not-bool",
        {"canary.approval_required": "sometimes"},
        "canary.approval_required",
        "valid boolean",
    ),
    ("canary-omitted-ok", {"canary": DELETE}, None, ""),
]


@pytest.mark.parametrize(("changes", "field", "fragment"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_schema_rule(make_bundle: Any, changes: dict[str, Any], field: str | None, fragment: str) -> None:
    bundle_dir = make_bundle(changes)
    yaml_file = str(bundle_dir / "bundle.yaml")
    if field is None:
        assert load_bundle(bundle_dir).app == changes.get("app", "support-chat")
        return
    with pytest.raises(BundleValidationError) as info:
        load_bundle(bundle_dir)
    problems = info.value.problems
    matching = [p for p in problems if p.startswith(f"{yaml_file}: {field}: line ")]
    assert matching, problems
    assert any(fragment in p for p in matching), matching


def test_every_rule_row_reports_exactly_its_own_problem(make_bundle: Any) -> None:
    # A row that also tripped unrelated rules would make the table above prove less than it claims.
    bundle_dir = make_bundle({"canary.steps": [5, 50]})
    with pytest.raises(BundleValidationError) as info:
        load_bundle(bundle_dir)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].endswith("must end at 100 so the candidate takes all traffic")


def test_problem_line_points_at_the_field(make_bundle: Any) -> None:
    text = (Path(make_bundle()) / "bundle.yaml").read_text()
    bundle_dir = make_bundle(yaml_text=text.replace("max_tokens: 400", "max_tokens: 0"))
    line = 1 + text.splitlines().index("  max_tokens: 400")
    with pytest.raises(BundleValidationError) as info:
        load_bundle(bundle_dir)
    assert info.value.problems == [
        f"{bundle_dir / 'bundle.yaml'}: parameters.max_tokens: line {line}: Input should be greater than or "
        "equal to 1"
    ]


def test_defaults_are_applied(make_bundle: Any) -> None:
    bundle = load_bundle(make_bundle({"canary": DELETE, "model.format": DELETE}))
    manifest = bundle.manifest
    assert manifest.model.format == "OpenAI"
    assert manifest.canary.steps == [5, 25, 50, 100]
    assert manifest.canary.on_inconclusive == "rollback"
    assert manifest.evaluation.confidence == 0.95
    assert manifest.evaluation.min_items == 30
    assert manifest.evaluation.metrics["latency_p95_ms"].zero_baseline == "absolute"
    assert manifest.evaluation.metrics["latency_p95_ms"].critical is False
    assert manifest.parameters.stop == []
