"""Rollout intent (spec, from the bundle and policy) kept apart from rollout status (owned by the controller).

Also the input the controller reads each time (canary and baseline observations, a person's approval) and
the decision it returns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelshift.bundle.manifest import Canary
from modelshift.errors import ConfigError
from modelshift.rollout.actions import Action, AuditEventSpec
from modelshift.rollout.analysis import AnalysisPolicy, Observation
from modelshift.rollout.phases import RolloutPhase
from modelshift.rollout.steps import Step, steps_from_policy
from modelshift.rollout.verdict import Verdict


class RolloutPolicy(BaseModel):
    """How the controller handles inconclusive analyses, the lease it keeps, and the analysis settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_inconclusive: Literal["rollback", "approval"] = "rollback"
    #: extensions of an inconclusive Analysis step when the step does not set its own limit
    max_extensions: int = Field(default=2, ge=0)
    #: every decision renews the router lease to now + lease_seconds; if the flow dies, the gateway falls
    #: back to the baseline once it lapses
    lease_seconds: int = Field(default=300, ge=1)
    #: how soon to look again while an Analysis step waits for requests
    poll_seconds: int = Field(default=15, ge=1)
    analysis: AnalysisPolicy = Field(default_factory=AnalysisPolicy)


class RolloutSpec(BaseModel):
    """What a rollout should do: the app, both digests, the steps and the policy (never changes mid-way)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app: str = Field(min_length=1)
    baseline_digest: str = Field(min_length=1)
    candidate_digest: str = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)
    policy: RolloutPolicy = Field(default_factory=RolloutPolicy)

    @model_validator(mode="after")
    def _distinct_digests(self) -> RolloutSpec:
        if self.baseline_digest == self.candidate_digest:
            raise ValueError(
                f"baseline and candidate are the same bundle ({self.candidate_digest}); a canary needs two"
            )
        return self

    @property
    def subject(self) -> str:
        """The audit subject of this rollout: ``app`` and the candidate digest."""
        return f"rollout {self.app} -> {self.candidate_digest}"

    @classmethod
    def from_canary(
        cls,
        *,
        app: str,
        baseline_digest: str,
        candidate_digest: str,
        canary: Canary,
        lease_seconds: int = 300,
        analysis: AnalysisPolicy | None = None,
    ) -> RolloutSpec:
        """The spec for a candidate bundle's canary policy (steps from :func:`steps_from_policy`).

        Raises ConfigError (naming the app and every problem) when the arguments cannot form a rollout.
        """
        try:
            return cls(
                app=app,
                baseline_digest=baseline_digest,
                candidate_digest=candidate_digest,
                steps=steps_from_policy(canary),
                policy=RolloutPolicy(
                    on_inconclusive=canary.on_inconclusive,
                    max_extensions=canary.max_step_extensions,
                    lease_seconds=lease_seconds,
                    analysis=analysis
                    or AnalysisPolicy(
                        min_requests=canary.min_requests_per_step,
                        **canary.analysis.model_dump(exclude_none=True),
                    ),
                ),
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(
                f"cannot build the canary rollout of app {app!r}: {problems}; fix the bundle's canary policy "
                "or pick a candidate other than the baseline",
                app=app,
            ) from exc


class StepRecord(BaseModel):
    """One finished step: when, its verdict (Analysis) or approver (Approval, resumed Pause), and evidence."""

    model_config = ConfigDict(frozen=True)

    index: int
    kind: str
    started_at: datetime
    finished_at: datetime
    verdict: Verdict | None = None
    approved_by: str | None = None
    reason: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)


class RolloutStatus(BaseModel):
    """Where the rollout stands; persisted by the tasks and handed back to :func:`decide` unchanged."""

    model_config = ConfigDict(frozen=True)

    phase: RolloutPhase = RolloutPhase.PENDING
    step_index: int = Field(default=0, ge=0)
    step_started_at: datetime | None = None
    extensions_used: int = Field(default=0, ge=0)
    #: the weights the controller last asked for (digest -> percent)
    weights: dict[str, int] = Field(default_factory=dict)
    history: list[StepRecord] = Field(default_factory=list)
    #: why the rollout ended (or is ending): the verdict that rolled it back, or None for a person / promotion
    outcome_verdict: Verdict | None = None
    outcome_reason: str | None = None

    @property
    def window_start(self) -> datetime | None:
        """Start of the current analysis window: observations count requests from here to now."""
        return self.step_started_at


class ApprovalInput(BaseModel):
    """A person's answer to an approval request (the typed Prefect pause input): approve or reject."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: Literal["approve", "reject"]
    approver: str = Field(min_length=1)
    reason: str = ""


class ObservationPair(BaseModel):
    """What :func:`decide` sees: canary and baseline over the current window, and any approval answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    canary: Observation | None = None
    baseline: Observation | None = None
    approval: ApprovalInput | None = None


class Decision(BaseModel):
    """The controller's answer: the next status, the actions for the tasks, and the audit events."""

    model_config = ConfigDict(frozen=True)

    status: RolloutStatus
    actions: list[Action]
    events: list[AuditEventSpec]
