"""What the controller asks the tasks to do (a tagged union of actions) and the audit events it decides."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelshift.audit import Reason
from modelshift.rollout.verdict import Verdict


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SetWeights(_Action):
    """Compare-and-set the router to ``weights`` (digest -> whole percent, summing to 100) with a lease."""

    kind: Literal["set_weights"] = "set_weights"
    weights: dict[str, int]
    lease_until: datetime


class RenewLease(_Action):
    """Extend the router lease of the current weights to ``until`` (the gateway's dead-man's switch)."""

    kind: Literal["renew_lease"] = "renew_lease"
    until: datetime


class RequestApproval(_Action):
    """Pause the flow for a typed approve/reject input; ``evidence`` is shown to the person deciding."""

    kind: Literal["request_approval"] = "request_approval"
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class RollBack(_Action):
    """Route 100 % to the baseline and mark the candidate rolled back; ``verdict`` None means by a person."""

    kind: Literal["roll_back"] = "roll_back"
    verdict: Verdict | None
    reason: str


class Promote(_Action):
    """Make the candidate production at 100 % and retire the baseline; ``evidence`` holds every step."""

    kind: Literal["promote"] = "promote"
    evidence: dict[str, Any] = Field(default_factory=dict)


class Wait(_Action):
    """Call ``decide`` again at ``until`` (or earlier, when new input such as an approval arrives)."""

    kind: Literal["wait"] = "wait"
    until: datetime


#: One action; dispatch with ``match action: case SetWeights(): ...``.
Action = Annotated[
    SetWeights | RenewLease | RequestApproval | RollBack | Promote | Wait, Field(discriminator="kind")
]


class AuditEventSpec(BaseModel):
    """An audit event the controller decided; the task appends it (``Store.append_audit``) with its actor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Reason
    subject: str
    #: plain JSON only (no NaN, datetimes as strings), as the audit chain requires
    data: dict[str, Any] = Field(default_factory=dict)
