"""Candidate composition: what changes against the baseline, where files go, versions, idempotency, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelshift.bundle import load_bundle
from modelshift.errors import ConfigError
from modelshift.platforms.base import ModelRef
from modelshift.prepare.baseline import bump_minor, load_baseline
from modelshift.prepare.candidate import CandidateInputs, CandidateResult, Rechunked, compose_candidate
from tests.prepare.conftest import Workspace

GPT41 = ModelRef(name="gpt-4.1", version="2025-04-14")
MINI = ModelRef(name="gpt-4o-mini", version="2024-07-18")
GEN = Rechunked("o200k_base", 512, 64, "gen-0123456789abcdef")


def _compose(ws: Workspace, app: str, inputs: CandidateInputs, migration: str = "m-1") -> CandidateResult:
    return compose_candidate(
        ws.store,
        baseline_digest=ws.digest(app),
        inputs=inputs,
        bundles_dir=ws.bundles_dir,
        migration_id=migration,
        actor="tester",
    )


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("app", "inputs", "family", "tokenizer", "generation"),
    [
        # the gpt-4.1 override becomes the default prompt; retrieval untouched
        ("support-chat", CandidateInputs(GPT41, "support-chat-gpt-4.1"), "gpt-4.1", "o200k_base", None),
        # no override for gpt-4o-mini: prompts unchanged; re-chunked into a new generation
        (
            "hr-handbook",
            CandidateInputs(MINI, "hr-4o-mini", rechunked=GEN),
            None,
            "o200k_base",
            GEN.index_generation,
        ),
        # fine-tuned: the re-run's model goes into fine_tune, training files are referred to unchanged
        (
            "claims-assistant",
            CandidateInputs(GPT41, "claims-ft-41", fine_tuned_model="gpt-4.1-2025-04-14.ft-new"),
            "gpt-4.1",
            "o200k_base",
            None,
        ),
    ],
)
def test_candidate_takes_target_deployment_prompt_variant_and_generation(
    workspace: Workspace,
    app: str,
    inputs: CandidateInputs,
    family: str | None,
    tokenizer: str,
    generation: str | None,
) -> None:
    baseline = workspace.baselines[app]
    result = _compose(workspace, app, inputs)
    assert result.created and result.written and result.version == "1.1.0"
    assert result.path == workspace.bundles_dir / app / "1.1.0"
    candidate = load_bundle(result.path)
    assert candidate.digest == result.digest != baseline.digest
    m = candidate.manifest.model
    assert (m.name, m.version, m.deployment) == (inputs.target.name, inputs.target.version, inputs.deployment)
    assert m.sku == baseline.manifest.model.sku and m.account == baseline.manifest.model.account
    assert candidate.manifest.parameters == baseline.manifest.parameters
    assert candidate.manifest.evaluation == baseline.manifest.evaluation
    assert result.prompt_family == family
    # the candidate's default prompt is exactly what the baseline would send to the target model
    assert candidate.prompt_for() == baseline.prompt_for(inputs.target.name)._replace(family=None)
    assert family not in candidate.manifest.prompts.overrides
    retrieval = candidate.manifest.retrieval
    assert retrieval is not None and retrieval.corpus == "../shared/corpus"
    assert (retrieval.tokenizer, retrieval.index_generation) == (tokenizer, generation)
    if generation is not None:
        assert (retrieval.chunk_tokens, retrieval.overlap_tokens) == (512, 64)
    assert candidate.manifest.evaluation.dataset == "../shared/golden.jsonl"
    ft = m.fine_tune
    if inputs.fine_tuned_model is None:
        assert ft is None
    else:
        assert ft is not None and ft.fine_tuned_model == inputs.fine_tuned_model
        assert ft.training_file == "../shared/train.jsonl" and ft.validation_file == "../shared/valid.jsonl"
        assert ft.hyperparameters == baseline.manifest.model.fine_tune.hyperparameters  # type: ignore[union-attr]
    registered = workspace.store.get_bundle(app, "1.1.0")
    assert registered.digest == result.digest and registered.status == "candidate"
    # the baseline stays as it was: production, same files
    assert workspace.store.get_bundle(app, "1.0.0").status == "production"
    assert load_bundle(workspace.bundles_dir / app / "1.0.0").digest == baseline.digest


def test_the_audit_names_both_digests_and_the_migration(workspace: Workspace) -> None:
    result = _compose(workspace, "support-chat", CandidateInputs(GPT41, "sc-41"), migration="m-42")
    events = [
        e for e in workspace.store.audit_events(migration_id="m-42") if e.reason == "candidate.composed"
    ]
    assert len(events) == 1
    data = events[0].data
    assert data["baseline_digest"] == workspace.digest("support-chat")
    assert data["candidate_digest"] == result.digest
    assert data["model"] == "gpt-4.1@2025-04-14" and data["deployment"] == "sc-41"
    assert events[0].subject == "bundle:support-chat@1.1.0"
    assert workspace.store.verify_audit().ok


def test_a_rerun_with_the_same_inputs_writes_and_registers_nothing(workspace: Workspace) -> None:
    inputs = CandidateInputs(GPT41, "sc-41")
    first = _compose(workspace, "support-chat", inputs)
    files = _tree(workspace.bundles_dir)
    audit = len(workspace.store.audit_events())
    again = _compose(workspace, "support-chat", inputs)
    assert (again.digest, again.version) == (first.digest, first.version)
    assert not again.created and not again.written
    assert _tree(workspace.bundles_dir) == files
    assert len(workspace.store.audit_events()) == audit
    assert len(workspace.store.list_bundles(app="support-chat")) == 2


def test_other_inputs_get_the_next_free_version(workspace: Workspace) -> None:
    first = _compose(workspace, "support-chat", CandidateInputs(GPT41, "sc-a"))
    second = _compose(workspace, "support-chat", CandidateInputs(GPT41, "sc-b"), migration="m-2")
    assert (first.version, second.version) == ("1.1.0", "1.2.0")
    assert second.created and second.digest != first.digest


def test_an_unregistered_directory_with_other_content_is_skipped(
    workspace: Workspace,
) -> None:
    stray = workspace.bundles_dir / "support-chat" / "1.1.0"
    stray.mkdir()
    (stray / "notes.txt").write_text("someone's work in progress")
    result = _compose(workspace, "support-chat", CandidateInputs(GPT41, "sc-41"))
    assert result.version == "1.2.0"
    assert (stray / "notes.txt").read_text() == "someone's work in progress"


def test_a_directory_left_by_a_crash_before_registering_is_registered_as_it_is(workspace: Workspace) -> None:
    inputs = CandidateInputs(GPT41, "sc-41")
    first = _compose(workspace, "support-chat", inputs)
    kept = workspace.bundles_dir.parent / "kept"
    shutil.copytree(first.path, kept)
    # a second store with the same baseline: the directory is on disk but the candidate is not registered
    from modelshift.registry import register
    from modelshift.store import Store

    with Store.open(f"sqlite:///{workspace.bundles_dir.parent / 'other.db'}") as other:
        register(other, workspace.baselines["support-chat"], actor="test", adopt=True)
        again = compose_candidate(
            other,
            baseline_digest=workspace.digest("support-chat"),
            inputs=inputs,
            bundles_dir=workspace.bundles_dir,
            migration_id="m-1",
            actor="tester",
        )
        assert again.created and not again.written
        assert (again.version, again.digest) == (first.version, first.digest)
        assert other.get_bundle("support-chat", "1.1.0").digest == first.digest
    assert _tree(first.path) == _tree(kept)


def test_a_missing_checkout_is_materialized_from_the_store(workspace: Workspace) -> None:
    shutil.rmtree(workspace.bundles_dir / "claims-assistant")
    inputs = CandidateInputs(GPT41, "claims-ft-41", fine_tuned_model="gpt-4.1-2025-04-14.ft-new")
    result = _compose(workspace, "claims-assistant", inputs)
    restored = load_bundle(workspace.bundles_dir / "claims-assistant" / "1.0.0")
    assert restored.digest == workspace.digest("claims-assistant")
    candidate = load_bundle(result.path)
    ft = candidate.manifest.model.fine_tune
    assert ft is not None and ft.fine_tuned_model == "gpt-4.1-2025-04-14.ft-new"
    # files inside the materialized baseline are copied, byte for byte
    assert candidate.read_bytes("model.fine_tune.training_file") == restored.read_bytes(
        "model.fine_tune.training_file"
    )
    assert sorted(k for k in candidate.files if k.startswith("retrieval.corpus/")) == sorted(
        k for k in restored.files if k.startswith("retrieval.corpus/")
    )


def test_an_edited_checkout_of_the_baseline_is_refused(workspace: Workspace) -> None:
    prompt = workspace.bundles_dir / "support-chat" / "1.0.0" / "prompts" / "system.md"
    prompt.write_text(prompt.read_text() + "\nedited in place\n")
    with pytest.raises(ConfigError, match=r"registered as sha256:.*immutable"):
        load_baseline(workspace.store, workspace.digest("support-chat"), workspace.bundles_dir)
    with pytest.raises(ConfigError, match="immutable"):
        _compose(workspace, "support-chat", CandidateInputs(GPT41, "sc-41"))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (CandidateInputs(GPT41, "claims-41"), "needs the fine-tuned model of the re-run"),
        (
            CandidateInputs(ModelRef(name="gpt-4.1"), "claims-41", fine_tuned_model="x"),
            "has no version; a bundle pins one",
        ),
        (CandidateInputs(GPT41, "", fine_tuned_model="x"), r"deployment: String should have at least 1"),
    ],
)
def test_inputs_a_bundle_cannot_hold_are_refused(
    workspace: Workspace, inputs: CandidateInputs, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _compose(workspace, "claims-assistant", inputs)
    assert not (workspace.bundles_dir / "claims-assistant" / "1.1.0").exists()
    assert len(workspace.store.list_bundles(app="claims-assistant")) == 1


@pytest.mark.parametrize(
    ("version", "step", "expected"),
    [
        ("1.0.0", 1, "1.1.0"),
        ("1.9.5", 1, "1.10.0"),
        ("2.3", 1, "2.4"),
        ("1.0.0", 3, "1.3.0"),
        ("2024a", 1, "2024a-c1"),
        ("2024a", 2, "2024a-c2"),
    ],
)
def test_bump_minor(version: str, step: int, expected: str) -> None:
    assert bump_minor(version, step) == expected


def test_bump_minor_refuses_a_step_below_one() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        bump_minor("1.0.0", 0)
