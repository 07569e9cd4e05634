"""build_plan(): stages and why, chunk policy, candidate deployment, quota boundary, canary schedule."""

from __future__ import annotations

import json

import pytest

from modelshift.lifecycle import (
    FamilyTable,
    assess,
    build_plan,
    candidate_deployment_name,
    policy_chunk_tokens,
)
from modelshift.lifecycle.chunking import MAX_CHUNK, MIN_CHUNK
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
    # 128k and 1M windows both reach the 2048-token cap and the tokenizer stays o200k: no re-chunk
    assert not plan.stage("rechunk").runs and "2048" in plan.stage("rechunk").why


def test_hr_handbook_rechunks_for_tokenizer_and_window(families: FamilyTable) -> None:
    cat = [
        entry("gpt-35-turbo", "0125", inference="2026-03-31", replacement=("gpt-4o-mini", "2024-07-18")),
        entry("gpt-4o-mini", "2024-07-18", default=True),
    ]
    plan = _plan("hr-handbook", cat, [], families)
    assert plan.rechunk is not None and plan.rechunk.runs
    assert "cl100k_base to o200k_base" in plan.rechunk.why
    assert (plan.rechunk.chunk_tokens, plan.rechunk.tokenizer_to) == (2048, "o200k_base")
    assert plan.rechunk.overlap_tokens is not None and plan.rechunk.overlap_tokens < 2048
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


@pytest.mark.parametrize(
    ("window", "top_k", "expected"),
    [
        (16_385, 3, 512),
        (128_000, 3, 2048),
        (4_096, 4, MIN_CHUNK),
        (1_047_576, 4, MAX_CHUNK),
        (1_900, 1, MIN_CHUNK),
    ],
)
def test_chunk_policy_rows(window: int, top_k: int, expected: int) -> None:
    assert policy_chunk_tokens(window, 400, 1_500, top_k) == expected


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
