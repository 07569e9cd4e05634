"""The parameters of the ``model-migration`` flow and the small result it returns.

One pydantic model (the Prefect UI renders it as a form); plain pydantic, so the CLI and the launcher use it
without importing Prefect."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelshift.errors import ConfigError
from modelshift.migration.phases import MigrationPhase, Trigger

#: ``name@version``: Azure model names are lowercase words with dots and dashes; versions are free-form
TARGET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*@[A-Za-z0-9][A-Za-z0-9._-]*$"
_APP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


class MigrationParams(BaseModel):
    """What to migrate and why: the one parameter of the ``model-migration`` flow."""

    model_config = ConfigDict(extra="forbid")

    app: str = Field(
        description="The app whose production bundle moves to a new model.", pattern=_APP_PATTERN
    )
    target: str | None = Field(
        default=None,
        description="Target model as name@version (e.g. gpt-4o@2024-11-20); empty: the platform's "
        "replacement, else the newest GA version of the same model.",
        pattern=TARGET_PATTERN,
    )
    reason: str = Field(default="manual run", max_length=2000, description="Why this migration runs.")
    trigger: Trigger = Field(default=Trigger.UI, description="What started it: schedule, ui, notice or cli.")
    notice_id: str | None = Field(default=None, max_length=200, description="The Azure notice that led here.")
    as_of: date | None = Field(
        default=None, description="Assess as of this day (UTC); empty: now. The scan passes its own."
    )
    dry_run: bool = Field(default=False, description="Assess and plan only; change nothing else.")
    approval_override: bool | None = Field(
        default=None,
        description="Overrides the bundle's canary approval_required (used by the canary stage).",
    )
    actor: str = Field(
        default="prefect-ui",
        min_length=1,
        max_length=200,
        description="Who asked for it (the audit names them).",
    )

    @field_validator("target", "notice_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # The Prefect UI sends "" for a cleared optional text field.
        if isinstance(value, str) and not value.strip():
            return None
        return value


class MigrationOutcome(BaseModel):
    """What a ``model-migration`` run did: the record it created or found, its phase, and the plan."""

    migration_id: str | None
    app: str
    phase: MigrationPhase | None
    created: bool
    target: str | None = None
    baseline_digest: str | None = None
    plan: dict[str, Any] | None = None
    #: the plan as the lifecycle library renders it for people
    plan_text: str = ""
    message: str = ""
    #: the candidate bundle the prepare stage composed (once there is one)
    candidate_digest: str | None = None
    #: the canary's final verdict (successful, failed, inconclusive, error) when the canary ran
    canary_verdict: str | None = None
    #: the self-contained HTML migration report the run wrote (``modelshift report ID`` writes it again)
    report_path: str | None = None


def parse_target(value: str) -> tuple[str, str]:
    """Split ``name@version``; the caller validated it against TARGET_PATTERN."""
    if not re.match(TARGET_PATTERN, value):
        raise ConfigError(f"target {value!r} is not NAME@VERSION (e.g. gpt-4o@2024-11-20)", target=value)
    name, _, version = value.rpartition("@")
    return name, version
