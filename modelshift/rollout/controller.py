"""The canary controller: a pure ``decide(spec, status, observation, now) -> Decision``.

It never performs I/O; the tasks carry out the actions (router compare-and-set with a lease, approval
pause, promote, roll back), append the events, persist the new status and call ``decide`` again. Deciding
twice on the same inputs gives the same decision, so a task retried after a crash cannot double-act.

One call processes steps until one has to wait: a SetWeight step completes at once and the next step
starts in the same call, while a Pause, an Analysis or an Approval waits for time, traffic or a person.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from modelshift.audit import Reason, format_time
from modelshift.clock import ensure_utc
from modelshift.errors import StateError
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
from modelshift.rollout.analysis import AnalysisResult, Observation, analyse
from modelshift.rollout.phases import RolloutPhase, check_phase_transition, is_terminal
from modelshift.rollout.spec import (
    ApprovalInput,
    Decision,
    ObservationPair,
    RolloutSpec,
    RolloutStatus,
    StepRecord,
)
from modelshift.rollout.steps import Analysis, Approval, Pause, SetWeight
from modelshift.rollout.verdict import Verdict

_P = RolloutPhase


class _Run:
    """The working copy of one decision: status fields, actions and events gathered as steps are handled."""

    def __init__(self, spec: RolloutSpec, status: RolloutStatus, now: datetime) -> None:
        self.spec = spec
        self.now = now
        self.phase = status.phase
        self.index = status.step_index
        # A status without a start time (written by hand) starts its step's clock now.
        self.started: datetime = status.step_started_at or now
        self.extensions = status.extensions_used
        self.weights = dict(status.weights)
        self.history = list(status.history)
        self.outcome_verdict = status.outcome_verdict
        self.outcome_reason = status.outcome_reason
        self.actions: list[Action] = []
        self.events: list[AuditEventSpec] = []

    # -- building blocks --

    def move(self, phase: RolloutPhase) -> None:
        check_phase_transition(self.phase, phase, subject=self.spec.subject)
        self.phase = phase

    def event(self, code: Reason, /, **data: Any) -> None:
        payload = {"app": self.spec.app, "step": self.index, "at": format_time(self.now), **data}
        self.events.append(AuditEventSpec(reason=code, subject=self.spec.subject, data=payload))

    def lease_until(self) -> datetime:
        return self.now + timedelta(seconds=self.spec.policy.lease_seconds)

    def start_step(self) -> None:
        """Enter step ``self.index`` (or promote when the steps are done)."""
        self.started = self.now
        self.extensions = 0
        if self.index >= len(self.spec.steps):
            self.promote()
            return
        step = self.spec.steps[self.index]
        self.move(_P.PROGRESSING)
        self.event(Reason.CANARY_STEP, kind=step.kind, spec=step.model_dump(mode="json"))

    def finish_step(self, **record: Any) -> None:
        step = self.spec.steps[self.index]
        self.history.append(
            StepRecord(
                index=self.index, kind=step.kind, started_at=self.started, finished_at=self.now, **record
            )
        )
        self.index += 1
        self.start_step()

    def set_weight(self, candidate_pct: int) -> None:
        self.weights = {
            self.spec.candidate_digest: candidate_pct,
            self.spec.baseline_digest: 100 - candidate_pct,
        }
        self.actions.append(SetWeights(weights=dict(self.weights), lease_until=self.lease_until()))

    def evidence(self) -> dict[str, Any]:
        return {
            "baseline": self.spec.baseline_digest,
            "candidate": self.spec.candidate_digest,
            "steps": [r.model_dump(mode="json") for r in self.history],
        }

    def promote(self) -> None:
        self.move(_P.PROMOTING)
        self.weights = {self.spec.candidate_digest: 100, self.spec.baseline_digest: 0}
        self.outcome_verdict = None
        self.outcome_reason = f"all {len(self.spec.steps)} steps passed"
        evidence = self.evidence()
        self.actions.append(Promote(evidence=evidence))
        self.event(Reason.CANARY_PROMOTED, reason=self.outcome_reason, evidence=evidence)

    def roll_back(self, verdict: Verdict | None, reason: str) -> None:
        self.move(_P.ROLLING_BACK)
        self.weights = {self.spec.candidate_digest: 0, self.spec.baseline_digest: 100}
        self.outcome_verdict = verdict
        self.outcome_reason = reason
        self.actions.append(RollBack(verdict=verdict, reason=reason))
        self.event(
            Reason.CANARY_ROLLED_BACK,
            verdict=None if verdict is None else str(verdict),
            reason=reason,
            evidence=self.evidence(),
        )

    def wait(self, until: datetime) -> None:
        self.actions.append(Wait(until=max(until, self.now)))

    def request_approval(self, reason: str, evidence: dict[str, Any]) -> None:
        if self.phase is not _P.AWAITING_APPROVAL:
            # Audited once, when the request is first made; re-asking after a restart is not a new decision.
            self.move(_P.AWAITING_APPROVAL)
            self.event(Reason.CANARY_APPROVAL_REQUESTED, reason=reason)
        self.actions.append(RequestApproval(reason=reason, evidence=evidence))

    def answer(self, approval: ApprovalInput, **record: Any) -> bool:
        """Record a person's answer; True when the rollout advanced, False when it rolled back."""
        who = {"approver": approval.approver, "reason": approval.reason}
        if approval.decision == "approve":
            self.event(Reason.CANARY_APPROVED, **who)
            self.outcome_reason = None  # the question that was pending is answered
            self.finish_step(approved_by=approval.approver, reason=approval.reason, **record)
            return True
        self.event(Reason.CANARY_REJECTED, **who)
        self.roll_back(None, f"rejected by {approval.approver}: {approval.reason or 'no reason given'}")
        return False

    def to_decision(self) -> Decision:
        live = not is_terminal(self.phase) and self.phase not in (_P.PROMOTING, _P.ROLLING_BACK)
        if live and not any(isinstance(a, SetWeights) for a in self.actions):
            # Every decision keeps the canary alive; SetWeights already carries the lease.
            self.actions.insert(0, RenewLease(until=self.lease_until()))
        status = RolloutStatus(
            phase=self.phase,
            step_index=self.index,
            step_started_at=self.started,
            extensions_used=self.extensions,
            weights=self.weights,
            history=self.history,
            outcome_verdict=self.outcome_verdict,
            outcome_reason=self.outcome_reason,
        )
        return Decision(status=status, actions=self.actions, events=self.events)

    # -- the steps --

    def run(self, observation: ObservationPair | None) -> None:
        """Handle steps until one waits; ``observation`` belongs to the step current on entry only."""
        while self.phase not in (_P.PROMOTING, _P.ROLLING_BACK):
            step = self.spec.steps[self.index]
            approval = None if observation is None else observation.approval
            match step:
                case SetWeight(weight=weight):
                    self.set_weight(weight)
                    self.finish_step()
                case Pause(seconds=None):
                    if approval is None:
                        if self.phase is not _P.PAUSED:
                            self.move(_P.PAUSED)
                        self.wait(self.now + timedelta(seconds=self.spec.policy.poll_seconds))
                        return
                    if not self.answer(approval):
                        return
                case Pause(seconds=seconds):
                    end = self.started + timedelta(seconds=seconds or 0)
                    if self.now < end:
                        if self.phase is not _P.PAUSED:
                            self.move(_P.PAUSED)
                        self.wait(end)
                        return
                    self.move(_P.PROGRESSING)
                    self.finish_step()
                case Approval(reason=reason):
                    if approval is None:
                        self.request_approval(reason, self.evidence())
                        return
                    if not self.answer(approval):
                        return
                case Analysis():
                    if not self.analysis_step(step, observation):
                        return
            # Whatever comes next belongs to a later step than the observation was taken for.
            observation = None

    def analysis_step(self, step: Analysis, observation: ObservationPair | None) -> bool:
        """Handle the current Analysis step; True when it passed and the rollout moved on."""
        approval = None if observation is None else observation.approval
        if self.phase is _P.AWAITING_APPROVAL:
            # The analysis was inconclusive and the policy asked a person.
            if approval is None:
                reason = self.outcome_reason or "analysis inconclusive"
                self.actions.append(RequestApproval(reason=reason, evidence=self.evidence()))
                return False
            return self.answer(approval, verdict=Verdict.INCONCLUSIVE)
        policy = self.spec.policy
        max_extensions = policy.max_extensions if step.max_extensions is None else step.max_extensions
        window = timedelta(seconds=step.window_seconds)
        deadline = self.started + window * (1 + self.extensions)
        elapsed = self.now >= deadline
        canary, baseline = self.observed(observation)
        enough = min(canary.requests, baseline.requests) >= step.min_requests
        poll = min(deadline, self.now + timedelta(seconds=policy.poll_seconds))
        if not (enough or elapsed):
            self.wait(poll)
            return False
        result = analyse(
            canary, baseline, policy.analysis.model_copy(update={"min_requests": step.min_requests})
        )
        if result.verdict is Verdict.INCONCLUSIVE and not elapsed:
            self.wait(poll)  # enough requests but not enough samples yet: the window still runs
            return False
        self.audit_analysis(result)
        match result.verdict:
            case Verdict.SUCCESSFUL:
                self.finish_step(verdict=result.verdict, reason=result.reason, evidence=_evidence(result))
                return True
            case Verdict.FAILED | Verdict.ERROR:
                self.roll_back(result.verdict, result.reason)
                return False
        if self.extensions < max_extensions:
            self.extensions += 1
            until = self.started + window * (1 + self.extensions)
            self.event(
                Reason.CANARY_EXTENDED, extension=self.extensions, of=max_extensions, until=format_time(until)
            )
            self.wait(min(until, self.now + timedelta(seconds=policy.poll_seconds)))
            return False
        reason = f"analysis inconclusive after {self.extensions} extension(s): {result.reason}"
        if policy.on_inconclusive == "approval":
            self.outcome_reason = reason
            self.request_approval(reason, {"analysis": _evidence(result), **self.evidence()})
        else:
            self.roll_back(Verdict.INCONCLUSIVE, reason)
        return False

    def observed(self, observation: ObservationPair | None) -> tuple[Observation, Observation]:
        canary = None if observation is None else observation.canary
        baseline = None if observation is None else observation.baseline
        for label, obs, digest in (
            ("canary", canary, self.spec.candidate_digest),
            ("baseline", baseline, self.spec.baseline_digest),
        ):
            if obs is not None and obs.digest != digest:
                raise StateError(
                    f"{self.spec.subject}: the {label} observation is for {obs.digest}, not {digest}; "
                    "query the request metrics by the spec's digests",
                    app=self.spec.app,
                )
        return (
            canary or Observation(digest=self.spec.candidate_digest),
            baseline or Observation(digest=self.spec.baseline_digest),
        )

    def audit_analysis(self, result: AnalysisResult) -> None:
        self.event(
            Reason.CANARY_ANALYSIS,
            verdict=str(result.verdict),
            reason=result.reason,
            extensions_used=self.extensions,
            metrics=[m.model_dump(mode="json") for m in result.metrics],
        )


def _evidence(result: AnalysisResult) -> dict[str, Any]:
    return result.model_dump(mode="json")


def decide(
    spec: RolloutSpec, status: RolloutStatus, observation: ObservationPair | None, now: datetime
) -> Decision:
    """The next status, actions and audit events for a rollout; pure and deterministic.

    Terminal phases give no actions. While promoting or rolling back, the same Promote / RollBack action is
    returned again (both are idempotent) until the task reports it done with :func:`complete`.
    """
    run = _Run(spec, status, ensure_utc(now))
    if is_terminal(status.phase):
        return Decision(status=status, actions=[], events=[])
    if status.step_index > len(spec.steps):
        raise StateError(
            f"{spec.subject}: status step {status.step_index} is beyond the spec's {len(spec.steps)} steps; "
            "the status belongs to another spec - roll back with `modelshift rollback APP`",
            app=spec.app,
        )
    if status.phase is _P.PROMOTING:
        run.actions.append(Promote(evidence=run.evidence()))
    elif status.phase is _P.ROLLING_BACK:
        run.actions.append(RollBack(verdict=status.outcome_verdict, reason=status.outcome_reason or ""))
    else:
        if status.phase is _P.PENDING:
            run.index = 0
            run.start_step()
            observation = None
        run.run(observation)
    return run.to_decision()


def complete(spec: RolloutSpec, status: RolloutStatus) -> RolloutStatus:
    """After the task applied Promote or RollBack: promoting -> promoted, rolling_back -> rolled_back."""
    target = {_P.PROMOTING: _P.PROMOTED, _P.ROLLING_BACK: _P.ROLLED_BACK}.get(status.phase)
    if target is None:
        raise StateError(
            f"{spec.subject}: nothing to complete in phase {status.phase}; only promoting or rolling_back "
            "rollouts finish this way",
            app=spec.app,
            phase=str(status.phase),
        )
    check_phase_transition(status.phase, target, subject=spec.subject)
    return status.model_copy(update={"phase": target})


def abort(spec: RolloutSpec, status: RolloutStatus, now: datetime, *, actor: str, reason: str) -> Decision:
    """A person stops the rollout: all traffic back to the baseline (RollBack) and the phase aborted."""
    run = _Run(spec, status, ensure_utc(now))
    if is_terminal(status.phase):
        return Decision(status=status, actions=[], events=[])
    why = f"aborted by {actor}: {reason}"
    if status.phase is not _P.PENDING:
        # Traffic may have reached the candidate: take it back in the same decision.
        run.weights = {spec.candidate_digest: 0, spec.baseline_digest: 100}
        run.actions.append(RollBack(verdict=None, reason=why))
    run.move(_P.ABORTED)
    run.outcome_verdict = None
    run.outcome_reason = why
    run.event(Reason.CANARY_ROLLED_BACK, verdict=None, reason=why, actor=actor, evidence=run.evidence())
    return run.to_decision()


def promote_now(
    spec: RolloutSpec, status: RolloutStatus, now: datetime, *, actor: str, reason: str
) -> Decision:
    """A person's override (``modelshift promote APP``): skip the remaining steps and promote, audited.

    Refused with IllegalTransitionError once the rollout is rolling back or over: a rolled-back candidate
    needs a new migration, not an override.
    """
    run = _Run(spec, status, ensure_utc(now))
    if status.phase is _P.PROMOTING:
        return decide(spec, status, None, now)
    run.move(_P.PROMOTING)
    run.weights = {spec.candidate_digest: 100, spec.baseline_digest: 0}
    run.outcome_verdict = None
    run.outcome_reason = f"promoted by {actor} at step {status.step_index + 1} of {len(spec.steps)}: {reason}"
    evidence = {**run.evidence(), "override": {"actor": actor, "reason": reason}}
    run.actions.append(Promote(evidence=evidence))
    run.event(Reason.CANARY_PROMOTED, reason=run.outcome_reason, actor=actor, evidence=evidence)
    return run.to_decision()
