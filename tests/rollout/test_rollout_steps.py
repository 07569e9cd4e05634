"""Canary steps: the tagged union and the step list built from a bundle's canary policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelshift.bundle.manifest import Canary
from modelshift.rollout import Analysis, Approval, Pause, SetWeight, Step, steps_from_policy
from modelshift.rollout.steps import STEPS_ADAPTER


def _kinds(steps: list[Step]) -> list[str]:
    return [f"{s.kind}:{s.weight}" if isinstance(s, SetWeight) else s.kind for s in steps]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            Canary(),
            [
                "set_weight:5",
                "analysis",
                "set_weight:25",
                "analysis",
                "set_weight:50",
                "analysis",
                "set_weight:100",
            ],
            id="default",
        ),
        pytest.param(
            Canary(steps=[10, 100], approval_required=True),
            ["set_weight:10", "analysis", "approval", "set_weight:100"],
            id="approval-before-100",
        ),
        pytest.param(Canary(steps=[100]), ["set_weight:100"], id="straight-to-100"),
        pytest.param(
            Canary(steps=[100], approval_required=True), ["approval", "set_weight:100"], id="approve-only"
        ),
        pytest.param(
            Canary(steps=[1, 99, 100]),
            ["set_weight:1", "analysis", "set_weight:99", "analysis", "set_weight:100"],
            id="edges",
        ),
    ],
)
def test_steps_from_policy(policy: Canary, expected: list[str]) -> None:
    assert _kinds(steps_from_policy(policy)) == expected


def test_analysis_steps_carry_the_policy_numbers() -> None:
    policy = Canary(
        steps=[5, 100], min_requests_per_step=80, step_duration_seconds=120, max_step_extensions=3
    )
    analysis = steps_from_policy(policy)[1]
    assert analysis == Analysis(min_requests=80, window_seconds=120, max_extensions=3)


def test_steps_parse_from_plain_data_by_kind() -> None:
    steps = STEPS_ADAPTER.validate_python(
        [
            {"kind": "set_weight", "weight": 5},
            {"kind": "pause", "seconds": 30},
            {"kind": "pause"},
            {"kind": "analysis", "min_requests": 10, "window_seconds": 60},
            {"kind": "approval", "reason": "ship it?"},
        ]
    )
    assert steps == [
        SetWeight(weight=5),
        Pause(seconds=30),
        Pause(seconds=None),
        Analysis(min_requests=10, window_seconds=60, max_extensions=None),
        Approval(reason="ship it?"),
    ]
    # a round trip through JSON keeps the tag
    assert STEPS_ADAPTER.validate_json(STEPS_ADAPTER.dump_json(steps)) == steps


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"kind": "set_weight", "weight": 101}, id="weight-101"),
        pytest.param({"kind": "set_weight", "weight": -1}, id="weight-negative"),
        pytest.param({"kind": "pause", "seconds": -1}, id="pause-negative"),
        pytest.param({"kind": "analysis", "min_requests": 0, "window_seconds": 60}, id="min-requests-0"),
        pytest.param({"kind": "analysis", "min_requests": 1, "window_seconds": 0}, id="window-0"),
        pytest.param({"kind": "approval", "reason": ""}, id="approval-no-reason"),
        pytest.param({"kind": "canary", "weight": 5}, id="unknown-kind"),
        pytest.param({"kind": "set_weight", "weight": 5, "extra": 1}, id="unknown-field"),
    ],
)
def test_bad_steps_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        STEPS_ADAPTER.validate_python([data])


def test_the_bundle_analysis_thresholds_reach_the_rollout_spec() -> None:
    from modelshift.rollout import AnalysisPolicy, RolloutSpec

    policy = Canary.model_validate(
        {"min_requests_per_step": 30, "analysis": {"latency_tolerance": 0.5, "error_rate_tolerance": 0.02}}
    )
    spec = RolloutSpec.from_canary(
        app="a", baseline_digest="b" * 64, candidate_digest="c" * 64, canary=policy
    )
    analysis = spec.policy.analysis
    assert (analysis.latency_tolerance, analysis.error_rate_tolerance, analysis.min_requests) == (
        0.5,
        0.02,
        30,
    )
    # unset fields keep the analysis defaults; an explicit policy (the flow parameter) wins over the bundle
    assert analysis.tokens_tolerance == AnalysisPolicy().tokens_tolerance
    forced = RolloutSpec.from_canary(
        app="a",
        baseline_digest="b" * 64,
        candidate_digest="c" * 64,
        canary=policy,
        analysis=AnalysisPolicy(latency_tolerance=2.0),
    )
    assert forced.policy.analysis.latency_tolerance == 2.0


def test_a_bad_analysis_threshold_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"analysis\.latency_tolerance"):
        Canary.model_validate({"analysis": {"latency_tolerance": -1}})
    with pytest.raises(ValidationError, match=r"analysis\.p_value"):
        Canary.model_validate({"analysis": {"p_value": 0.1}})
