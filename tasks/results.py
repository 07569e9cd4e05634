"""Small typed results that tasks hand to flows (pydantic, so Prefect can persist and show them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

#: assessment statuses that call for a migration run (H's AssessmentStatus values)
NEEDS_MIGRATION = frozenset({"retired", "retiring", "deprecating"})


class AppAssessment(BaseModel):
    """One production bundle's assessment, reduced to what flows decide on and what reports show."""

    app: str
    bundle_version: str | None = None
    baseline_digest: str | None = None
    model: str
    deployment: str | None = None
    account: str | None = None
    status: str
    retirement: str | None = None
    days_left: int | None = None
    target: str | None = None
    target_source: str | None = None
    risks: list[str] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def needs_migration(self) -> bool:
        """True when the model is retired, retiring within the horizon or deprecating, and a target exists."""
        return self.status in NEEDS_MIGRATION and self.target is not None and self.baseline_digest is not None

    def row(self) -> dict[str, Any]:
        """The table-artifact row of this assessment."""
        return {
            "app": self.app,
            "bundle": self.bundle_version or "",
            "model": self.model,
            "deployment": f"{self.account or ''}/{self.deployment or ''}",
            "status": self.status,
            "retirement": self.retirement or "",
            "days_left": "" if self.days_left is None else self.days_left,
            "target": self.target or "",
            "risks": "; ".join(self.risks),
        }


class PlanSummary(BaseModel):
    """A migration plan: target, scope, stages with why, and whether something blocks it."""

    app: str
    status: str
    target: str | None
    scope: str | None = None
    stages: list[dict[str, str]] = Field(default_factory=list)
    blocked: bool = False
    blockers: list[str] = Field(default_factory=list)
    #: the plan as the lifecycle library renders it for people
    text: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


class LaunchDecision(BaseModel):
    """Whether the scan starts a migration for an app, with the keys it uses, or why it does not."""

    app: str
    start: bool
    idempotency_key: str
    prefect_key: str
    why: str
    existing_migration_id: str | None = None
