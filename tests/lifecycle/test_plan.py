"""build_plan(): stages and why, chunk policy, candidate deployment, quota boundary, canary schedule."""

from __future__ import annotations

import json

import pytest

from modelshift.grounding.policy import chunk_policy
from modelshift.lifecycle import (
    FamilyTable,
    assess,
    build_plan,
    candidate_deployment_name,
)
from modelshift.platforms.base import ModelRef, QuotaUsage
from tests.lifecycle.conftest import AS_OF, deployment, entry, example

SUPPORT_CAT = [
    entry("gpt-4o", "2024-05-13", inference="2026-02-10", replacement=("gpt-4o", "2024-11-20")),
    entry("gpt-4o", "2024-11-20", default=True),
    entry("gpt-4.1", "2025-04-14", default=True),
]


def _plan(app: str, catalog, usages, families, target=None, dep=None):  # type: ignore[no-untyped-def]
    bundle = example(app)
    result = assess(bundle, dep, catalog, as_of=AS_OF, target=target, deployment_observed=dep is not None)
    return build_plan(bundle, result, catalog, usages, families)


@pytest.mark.parametrize(
    ("limit", "current", "status"),
    [(450, 400, "ok"), (450, 401, "blocked"), (450, 0, "ok"), (49, 0, "blocked")],
)
def test_quota_boundary(limit: int, current: int, status: str, families: FamilyTable) -> None:
    usages = [QuotaUsage(name="OpenAI.GlobalStandard.gpt-4o", current_value=current, limit=limit)]
    plan = _plan("support-chat", SUPPORT_CAT, usages, families)
    assert plan.quota is not None and plan.quota.status == status and plan.quota.needed == 50
    assert plan.status == ("ready" if status == "ok" else "blocked")
    if status == "blocked":
        assert f"limit {limit}" in plan.quota.message and "request more quota" in plan.next_steps[0]


def test_quota_unknown_when_not_read_or_line_missing(families: FamilyTable) -> None:
    assert _plan("support-chat", SUPPORT_CAT, None, families).quota.status == "unknown"  # type: ignore[union-attr]
    other = [QuotaUsage(name="OpenAI.Standard.other", current_value=0, limit=10)]
    plan = _plan("support-chat", SUPPORT_CAT, other, families)
    assert plan.quota is not None and plan.quota.status == "unknown" and plan.status == "ready"


def test_minor_version_plan(families: FamilyTable) -> None:
    plan = _plan("support-chat", SUPPORT_CAT, [], families)
    assert plan.target == ModelRef(name="gpt-4o", version="2024-11-20")
    assert plan.scope is not None and plan.scope.scope == "minor_version"
    runs = {s.name: s.runs for s in plan.stages}
    assert runs == {
        "fine_tune": False,
        "rechunk": False,
        "prompt_variant": False,
        "evaluate": True,
        "canary": True,
    }
    dep = plan.candidate_deployment
    assert dep is not None and dep.name == "support-chat-gpt-4o-2024-11-20"
    assert (dep.sku_name, dep.capacity, dep.version_upgrade_option.value) == (
        "GlobalStandard",
        50,
        "NoAutoUpgrade",
    )
    assert [s.weight for s in plan.canary.steps] == [5, 25, 50, 100] and plan.canary.steps[
        0
    ].min_requests == 40
    json.loads(plan.model_dump_json())  # JSON-serialisable
    assert "support-chat" in plan.render_text()


def test_override_for_target_family_runs_prompt_variant(families: FamilyTable) -> None:
    plan = _plan(
        "support-chat", SUPPORT_CAT, [], families, target=ModelRef(name="gpt-4.1", version="2025-04-14")
    )
    stage = plan.stage("prompt_variant")
    assert stage.runs and "'gpt-4.1'" in stage.why
    assert plan.scope is not None and plan.scope.scope == "intermediate"
    # the bundle's 512/64 fit a 1M window and the tokenizer stays o200k: no re-chunk
    assert not plan.stage("rechunk").runs and "512/64 tokens fit" in plan.stage("rechunk").why
    assert plan.rechunk is not None and plan.rechunk.context_window == 1_047_576
    assert "room = floor((1047576 - 1900) / top_k 4) = 261419" in plan.rechunk.how


def test_hr_handbook_rechunks_for_tokenizer_and_window(families: FamilyTable) -> None:
    cat = [
        entry("gpt-35-turbo", "0125", inference="2026-03-31", replacement=("gpt-4o-mini", "2024-07-18")),
        entry("gpt-4o-mini", "2024-07-18", default=True),
    ]
    plan = _plan("hr-handbook", cat, [], families)
    assert plan.rechunk is not None and plan.rechunk.runs
    assert "cl100k_base to o200k_base" in plan.rechunk.why
    # the bundle's 700/80 fit gpt-4o-mini's 128k window: only the tokenizer changes
    assert (plan.rechunk.chunk_tokens, plan.rechunk.overlap_tokens) == (700, 80)
    assert plan.rechunk.tokenizer_to == "o200k_base" and "do not fit" not in plan.rechunk.why
    assert plan.stage("prompt_variant").runs and "major" in plan.stage("prompt_variant").why


def test_fine_tuned_plan(families: FamilyTable) -> None:
    cat = [
        entry(
            "gpt-4o-mini", "2024-07-18", inference="2026-03-01", replacement=("gpt-4.1-mini", "2025-04-14")
        ),
        entry("gpt-4.1-mini", "2025-04-14", default=True),
    ]
    usages = [QuotaUsage(name="OpenAI.Standard.gpt-4.1-mini-finetune", current_value=90, limit=100)]
    plan = _plan("claims-assistant", cat, usages, families)
    assert plan.stage("fine_tune").runs and "re-run" in plan.stage("fine_tune").why
    assert plan.candidate_deployment is not None and plan.candidate_deployment.model_note
    assert plan.quota is not None and plan.quota.status == "blocked"  # 10 free, 20 needed
    assert plan.canary.approval_required and plan.canary.on_inconclusive == "approval"


def test_no_target_plan(families: FamilyTable) -> None:
    cat = [entry("gpt-4o", "2024-05-13", inference="2026-02-10")]
    plan = _plan("support-chat", cat, [], families)
    assert plan.status == "no_target" and plan.target is None and "--target" in plan.next_steps[0]


HR_MOVE = [
    entry("gpt-35-turbo", "0125", inference="2026-03-31", replacement=("gpt-4o-mini", "2024-07-18")),
]


def _hr_plan_with_window(window: int, families: FamilyTable):  # type: ignore[no-untyped-def]
    caps = {"chatCompletion": "true", "maxContextToken": str(window), "maxOutputToken": "4096"}
    cat = [*HR_MOVE, entry("gpt-4o-mini", "2024-07-18", default=True, caps=caps)]
    return _plan("hr-handbook", cat, [], families)


def test_a_window_too_small_for_the_bundles_chunks_gets_the_policy_size(families: FamilyTable) -> None:
    # hr-handbook: 700/80 tokens, top_k 3, max_tokens 400; room = (3500 - 1500 - 400) // 3 = 533 < 700
    plan = _hr_plan_with_window(3_500, families)
    decision = plan.rechunk
    assert decision is not None and decision.runs and decision.context_window == 3_500
    assert (decision.chunk_tokens, decision.overlap_tokens) == (533, round(533 * 80 / 700))
    assert "tokenizer changes" in decision.why and "700/80 tokens do not fit" in decision.why
    for line in (
        "reserved = prompt budget 1500 + max_tokens 400 = 1900 tokens",
        "room = floor((3500 - 1900) / top_k 3) = 533 tokens per chunk",
        "the bundle's chunk_tokens 700 does not fit the room 533",
        "overlap_tokens = round(533 x the bundle's ratio 80/700) = 61",
    ):
        assert line in decision.how
    text = plan.render_text()
    assert "re-chunk  o200k_base, 533 tokens, overlap 61" in text
    assert "room = floor((3500 - 1900) / top_k 3) = 533" in text
    # the plan's numbers are the policy's for this bundle and window
    retrieval = example("hr-handbook").manifest.retrieval
    assert retrieval is not None
    policy = chunk_policy(retrieval, 400, 3_500)
    assert (policy.chunk_tokens, policy.overlap_tokens, policy.explanation) == (533, 61, decision.how)


def test_a_window_that_cannot_hold_top_k_chunks_blocks_the_plan(families: FamilyTable) -> None:
    plan = _hr_plan_with_window(2_000, families)
    assert plan.status == "blocked"
    assert plan.rechunk is not None and plan.rechunk.runs and plan.rechunk.chunk_tokens is None
    assert "a 2000-token context window leaves 100 tokens for 3 chunks" in plan.next_steps[0]
    assert "lower retrieval.top_k or parameters.max_tokens" in plan.next_steps[0]
    assert "re-chunk  " not in plan.render_text()


def test_an_unknown_target_window_keeps_the_bundles_sizes(families: FamilyTable) -> None:
    cat = [
        entry("gpt-4o", "2024-05-13", inference="2026-02-10", replacement=("zz-model", "1")),
        entry("zz-model", "1", default=True),
    ]
    plan = _plan("support-chat", cat, [], families)
    decision = plan.rechunk
    assert plan.target is not None and plan.target.name == "zz-model"
    assert decision is not None and decision.context_window is None
    assert (decision.chunk_tokens, decision.overlap_tokens) == (512, 64)
    # the unknown tokenizer alone makes it re-chunk; the window is named as unknown
    assert decision.runs and "tokenizer is unknown" in decision.why
    assert "context window is unknown" in decision.how


@pytest.mark.parametrize(
    ("app", "target", "expected"),
    [
        ("support-chat", ModelRef(name="gpt-4o", version="2024-11-20"), "support-chat-gpt-4o-2024-11-20"),
        ("a" * 60, ModelRef(name="gpt-4o", version="2024-11-20"), None),
        ("hr", ModelRef(name="gpt 4o/x", version=None), "hr-gpt-4o-x-default"),
    ],
)
def test_candidate_deployment_name(app: str, target: ModelRef, expected: str | None) -> None:
    name = candidate_deployment_name(app, target)
    assert len(name) <= 64 and name == candidate_deployment_name(app, target)
    if expected is not None:
        assert name == expected


def test_deployment_given_supplies_capacity(families: FamilyTable) -> None:
    dep = deployment("support-chat-4o", "gpt-4o", "2024-05-13", capacity=80)
    usages = [QuotaUsage(name="OpenAI.GlobalStandard.gpt-4o", current_value=0, limit=79)]
    plan = _plan("support-chat", SUPPORT_CAT, usages, families, dep=dep)
    assert plan.candidate_deployment is not None and plan.candidate_deployment.capacity == 80
    assert plan.status == "blocked"
