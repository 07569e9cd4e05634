"""Data validation before use and re-chunking: GX reports stop the stage, generations sit side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelshift.bundle import Bundle, load_bundle
from modelshift.clock import utcnow
from modelshift.errors import ConfigError, DataValidationError
from modelshift.grounding.chunking import Chunker
from modelshift.grounding.corpus import load_corpus
from modelshift.grounding.index import LocalIndexStore
from modelshift.grounding.policy import RechunkDecision, chunk_policy
from modelshift.lifecycle import BundleRef, MigrationPlan, assess, build_plan, load_families
from modelshift.platforms.base import ModelRef
from modelshift.prepare.data import validate_fine_tune_data, validate_golden_data
from modelshift.prepare.rechunk import RechunkSettings, rechunk_corpus
from modelshift.validation import ValidationReport, report_from_error
from tests.lifecycle.conftest import AS_OF, entry
from tests.prepare.conftest import Workspace

MINI41 = ModelRef(name="gpt-4.1-mini", version="2025-04-14")
O200K = RechunkSettings("o200k_base", 512, 64)


def _example(i: int, answer: str = "Yes.", role: str = "assistant") -> str:
    messages = [
        {"role": "system", "content": "You answer claims questions."},
        {"role": "user", "content": f"Question {i}?"},
        {"role": role, "content": answer},
    ]
    return json.dumps({"messages": messages})


def _with_training(ws: Workspace, lines: list[str]) -> Bundle:
    (ws.bundles_dir / "claims-assistant" / "shared" / "train.jsonl").write_text("\n".join(lines) + "\n")
    return load_bundle(ws.bundles_dir / "claims-assistant" / "1.0.0")


def test_the_bundles_fine_tune_files_pass_for_the_target_and_are_audited(workspace: Workspace) -> None:
    seen: list[ValidationReport] = []
    reports = validate_fine_tune_data(
        workspace.baselines["claims-assistant"],
        MINI41,
        store=workspace.store,
        migration_id="m-1",
        actor="tester",
        sink=seen.append,
    )
    assert [r.success for r in reports] == [True, True] and seen == reports
    assert reports[0].subject.endswith("train.jsonl") and reports[1].subject.endswith("valid.jsonl")
    events = workspace.store.audit_events(migration_id="m-1")
    assert [e.reason for e in events] == ["data.validated", "data.validated"]
    assert events[0].data["success"] is True and events[0].data["digest"] == reports[0].digest


def test_a_bundle_without_fine_tune_has_nothing_to_check(workspace: Workspace) -> None:
    assert validate_fine_tune_data(workspace.baselines["support-chat"], MINI41) == []


@pytest.mark.parametrize(
    ("lines", "limit", "check"),
    [
        # an empty assistant turn (the loader accepts it; the suite does not)
        ([_example(i) for i in range(11)] + [_example(99, answer="")], 65_536, "assistant"),
        # examples that fit the old base but not a target with a smaller per-example limit
        ([_example(i) for i in range(12)], 20, "token"),
    ],
)
def test_bad_training_data_stops_with_the_report(
    workspace: Workspace, lines: list[str], limit: int, check: str
) -> None:
    bundle = _with_training(workspace, lines)
    seen: list[ValidationReport] = []
    with pytest.raises(DataValidationError) as err:
        validate_fine_tune_data(
            bundle,
            MINI41,
            store=workspace.store,
            migration_id="m-1",
            sink=seen.append,
            max_tokens_per_example=limit,
        )
    report = report_from_error(err.value)
    assert report is not None and not report.success and seen == [report]
    assert any(check in name for name in report.failed_checks()), report.failed_checks()
    (event,) = workspace.store.audit_events(migration_id="m-1")
    assert event.reason == "data.validated" and event.data["success"] is False


def test_golden_datasets_of_the_examples_pass(workspace: Workspace) -> None:
    for app in ("support-chat", "hr-handbook"):
        assert validate_golden_data(workspace.baselines[app]).success


def test_a_golden_dataset_below_min_items_stops_with_the_report(workspace: Workspace) -> None:
    golden = workspace.bundles_dir / "support-chat" / "shared" / "golden.jsonl"
    golden.write_text("\n".join(golden.read_text().splitlines()[:5]) + "\n")
    bundle = load_bundle(workspace.bundles_dir / "support-chat" / "1.0.0")
    with pytest.raises(DataValidationError) as err:
        validate_golden_data(bundle, store=workspace.store, migration_id="m-2")
    report = report_from_error(err.value)
    assert report is not None and not report.success
    assert [e.reason for e in workspace.store.audit_events(migration_id="m-2")] == ["data.validated"]


def test_rechunk_writes_a_new_generation_beside_and_a_rerun_reuses_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    index = LocalIndexStore(tmp_path / "home", utcnow)
    hr = workspace.baselines["hr-handbook"]
    old = rechunk_corpus(hr, RechunkSettings("cl100k_base", 700, 80), index)  # the baseline's chunking
    seen: list[ValidationReport] = []
    new = rechunk_corpus(hr, O200K, index, store=workspace.store, migration_id="m-1", sink=seen.append)
    assert not new.reused and new.report.success and seen == [new.report]
    assert new.generation.generation != old.generation.generation
    assert (new.generation.tokenizer, new.generation.chunk_tokens) == ("o200k_base", 512)
    assert new.generation.documents == 13 and new.generation.chunks > 0
    assert {g.generation for g in index.list_generations("hr-handbook")} == {
        old.generation.generation,
        new.generation.generation,
    }
    old_file = Path(old.generation.location)
    before = old_file.read_bytes()
    again = rechunk_corpus(hr, O200K, index)
    assert again.reused and again.generation.generation == new.generation.generation
    assert len(index.list_generations("hr-handbook")) == 2 and old_file.read_bytes() == before
    assert new.rechunked.index_generation == new.generation.generation
    reasons = [e.reason for e in workspace.store.audit_events(migration_id="m-1")]
    assert reasons == ["data.validated", "grounding.rechunked"]


def test_a_bad_corpus_stops_with_the_chunk_report_and_writes_no_generation(
    workspace: Workspace, tmp_path: Path
) -> None:
    corpus = workspace.bundles_dir / "hr-handbook" / "shared" / "corpus"
    (corpus / "blank.md").write_text("   \n\n  \n")  # a document nothing can be retrieved from
    bundle = load_bundle(workspace.bundles_dir / "hr-handbook" / "1.0.0")
    index = LocalIndexStore(tmp_path / "home", utcnow)
    with pytest.raises(DataValidationError) as err:
        rechunk_corpus(bundle, O200K, index, store=workspace.store, migration_id="m-1")
    report = report_from_error(err.value)
    assert report is not None and not report.success
    assert "blank.md" in report.render_markdown()
    assert index.list_generations("hr-handbook") == []
    assert [e.reason for e in workspace.store.audit_events(migration_id="m-1")] == ["data.validated"]


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (
            RechunkDecision(
                runs=True, why="tok", how="", tokenizer_to="o200k_base", chunk_tokens=256, overlap_tokens=32
            ),
            RechunkSettings("o200k_base", 256, 32),
        ),
        # an unknown tokenizer in the plan falls back to the target's by model name
        (
            RechunkDecision(runs=True, why="tok", how="", chunk_tokens=128, overlap_tokens=0),
            RechunkSettings("o200k_base", 128, 0),
        ),
    ],
)
def test_settings_from_the_plan(decision: RechunkDecision, expected: RechunkSettings) -> None:
    assert RechunkSettings.from_plan(decision, MINI41) == expected


def test_a_plan_without_chunk_sizes_is_refused() -> None:
    with pytest.raises(ConfigError, match="names no chunk sizes"):
        RechunkSettings.from_plan(RechunkDecision(runs=True, why="x", how=""), MINI41)


# -- the plan's chunk policy is the one the re-chunk applies ------------------------------------------------


def _plan_for(bundle: Bundle, window: int) -> MigrationPlan:
    """hr-handbook's plan for a move from gpt-35-turbo to gpt-4o-mini with a ``window``-token context."""
    caps = {"chatCompletion": "true", "maxContextToken": str(window), "maxOutputToken": "4096"}
    catalog = [
        entry("gpt-35-turbo", "0125", inference="2026-03-31", replacement=("gpt-4o-mini", "2024-07-18")),
        entry("gpt-4o-mini", "2024-07-18", default=True, caps=caps),
    ]
    ref = BundleRef.from_bundle(bundle)
    assessment = assess(ref, None, catalog, as_of=AS_OF, deployment_observed=False)
    return build_plan(ref, assessment, catalog, [], load_families())


@pytest.mark.parametrize("window", [128_000, 3_500, 2_800])
def test_the_rechunk_uses_exactly_the_plans_numbers(
    workspace: Workspace, tmp_path: Path, window: int
) -> None:
    hr = workspace.baselines["hr-handbook"]
    plan = _plan_for(hr, window)
    decision = plan.rechunk
    assert decision is not None and decision.runs and decision.chunk_tokens is not None
    assert plan.target is not None
    settings = RechunkSettings.from_plan(decision, plan.target)
    assert settings.context_window == window
    result = rechunk_corpus(hr, settings, LocalIndexStore(tmp_path / "home", utcnow))
    g = result.generation
    # the generation is chunked with the plan's tokenizer and sizes, and the chunks respect them
    assert (g.tokenizer, g.chunk_tokens, g.overlap_tokens) == (
        decision.tokenizer_to,
        decision.chunk_tokens,
        decision.overlap_tokens,
    )
    retrieval = hr.manifest.retrieval
    assert retrieval is not None
    policy = chunk_policy(retrieval, hr.manifest.parameters.max_tokens, window)
    assert (policy.chunk_tokens, policy.overlap_tokens, policy.explanation) == (
        g.chunk_tokens,
        g.overlap_tokens,
        decision.how,
    )
    chunks = Chunker(g.tokenizer, g.chunk_tokens, g.overlap_tokens).chunk_corpus(
        load_corpus(hr.root / retrieval.corpus)
    )
    assert max(c.token_count for c in chunks) <= decision.chunk_tokens == g.chunk_tokens
    assert g.chunks == len(chunks)


def test_a_plan_the_policy_no_longer_gives_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    hr = workspace.baselines["hr-handbook"]
    plan = _plan_for(hr, 3_500)
    assert plan.rechunk is not None and plan.target is not None
    stale = plan.rechunk.model_copy(update={"chunk_tokens": 600})
    index = LocalIndexStore(tmp_path / "home", utcnow)
    with pytest.raises(ConfigError, match=r"policy gives 533/61 tokens .* but the plan says 600/61"):
        rechunk_corpus(hr, RechunkSettings.from_plan(stale, plan.target), index)
    assert index.list_generations("hr-handbook") == []
