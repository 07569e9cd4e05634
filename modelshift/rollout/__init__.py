"""The canary rollout controller (pure): phases, steps, live analysis and ``decide``.

Nothing here performs I/O or reads the clock; the rollout tasks apply the actions a decision returns.
"""

from __future__ import annotations

from modelshift.rollout.actions import (
    Action,
    AuditEventSpec,
    Promote,
    RenewLease,
    RequestApproval,
    RollBack,
    SetWeights,
    Wait,
)
from modelshift.rollout.analysis import AnalysisPolicy, AnalysisResult, MetricVerdict, Observation, analyse
from modelshift.rollout.controller import abort, complete, decide, promote_now
from modelshift.rollout.phases import RolloutPhase, check_phase_transition, is_terminal
from modelshift.rollout.spec import (
    ApprovalInput,
    Decision,
    ObservationPair,
    RolloutPolicy,
    RolloutSpec,
    RolloutStatus,
    StepRecord,
)
from modelshift.rollout.steps import Analysis, Approval, Pause, SetWeight, Step, steps_from_policy
from modelshift.rollout.verdict import Verdict
from modelshift.rollout.window import RequestWindow, observation_from_window, pair_from_windows

__all__ = [
    "Action",
    "Analysis",
    "AnalysisPolicy",
    "AnalysisResult",
    "Approval",
    "ApprovalInput",
    "AuditEventSpec",
    "Decision",
    "MetricVerdict",
    "Observation",
    "ObservationPair",
    "Pause",
    "Promote",
    "RenewLease",
    "RequestApproval",
    "RequestWindow",
    "RollBack",
    "RolloutPhase",
    "RolloutPolicy",
    "RolloutSpec",
    "RolloutStatus",
    "SetWeight",
    "SetWeights",
    "Step",
    "StepRecord",
    "Verdict",
    "Wait",
    "abort",
    "analyse",
    "check_phase_transition",
    "complete",
    "decide",
    "is_terminal",
    "observation_from_window",
    "pair_from_windows",
    "promote_now",
    "steps_from_policy",
]
