"""Typed results of notice parsing: ``Notice``, the models it names, its classification, and its errors."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelshift.errors import ConfigError, PlatformError

#: fixed namespace of notice ids; changing it would re-dispatch every notice Prefect has already seen
NOTICE_NAMESPACE = uuid.UUID("6b1f3c2e-9a4d-5e7f-8a21-4c0d2b7e9f13")


class NoticeSchema(StrEnum):
    """The two payload schemas an Azure action group can post."""

    COMMON = "azureMonitorCommonAlertSchema"
    ACTIVITY_LOG = "Microsoft.Insights/activityLogs"


class NoticeKind(StrEnum):
    """What a notice means for modelshift."""

    AZURE_OPENAI_RETIREMENT = "azure_openai_retirement"
    AZURE_OPENAI_OTHER = "azure_openai_other"
    UNRELATED = "unrelated"


class ModelMention(BaseModel):
    """A model (Azure's lowercase id), the version the text gives, and the retirement date it states."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str | None = None
    retirement_date: date | None = None
    #: named as the model to move *to* ("migrate to gpt-4.1"), not as one going away
    replacement: bool = False
    #: the words of the notice this mention was read from, so a person can check it
    text: str = ""

    @property
    def ref(self) -> str:
        """``name@version`` or just ``name``."""
        return f"{self.name}@{self.version}" if self.version else self.name


class Notice(BaseModel):
    """One Azure Monitor alert payload, parsed. Service Health fields are ``None`` for other alerts."""

    model_config = ConfigDict(frozen=True)

    schema_id: NoticeSchema
    monitoring_service: str
    is_service_health: bool
    tracking_id: str | None = None
    incident_type: str | None = None
    stage: str | None = None
    title: str = ""
    services: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    impact_start: datetime | None = None
    impact_mitigation: datetime | None = None
    event_time: datetime | None = None
    communication_id: str | None = None
    monitor_condition: str | None = None
    status: str | None = None
    subscription_ids: list[str] = Field(default_factory=list)
    text: str = ""
    concerns_azure_openai: bool = False
    models: list[ModelMention] = Field(default_factory=list)
    retirement_dates: list[date] = Field(default_factory=list)
    #: the first 40 hex chars of sha256 over the communication, for a key when Azure sends no communicationId
    content_hash: str = ""

    @property
    def key(self) -> str:
        """The dedupe key: tracking id + stage + communication id (Azure resends all three unchanged)."""
        communication = self.communication_id or f"sha256:{self.content_hash}"
        return f"{self.tracking_id or '-'}|{self.stage or '-'}|{communication}"

    @property
    def notice_id(self) -> str:
        """A deterministic id of this notice (uuid5 of the key); also the Prefect event id."""
        return str(uuid.uuid5(NOTICE_NAMESPACE, self.key))

    def summary(self) -> dict[str, Any]:
        """The fields a scan needs, as plain JSON values (the Prefect event payload uses this)."""
        return {
            "notice_id": self.notice_id,
            "key": self.key,
            "tracking_id": self.tracking_id,
            "incident_type": self.incident_type,
            "stage": self.stage,
            "title": self.title,
            "services": list(self.services),
            "regions": list(self.regions),
            "communication_id": self.communication_id,
            "event_time": self.event_time.isoformat() if self.event_time else None,
            "impact_start": self.impact_start.isoformat() if self.impact_start else None,
            "models": [m.model_dump(mode="json", exclude={"text"}) for m in self.models],
            "model_refs": [m.ref for m in self.models],
            "model_names": sorted({m.name for m in self.models}),
            "retirement_dates": [d.isoformat() for d in self.retirement_dates],
        }


class Classification(BaseModel):
    """The kind of a notice and the reason, in words a person can check against the notice."""

    model_config = ConfigDict(frozen=True)

    kind: NoticeKind
    reason: str


class NoticeProblem(StrEnum):
    """What was wrong with a payload that could not be parsed."""

    NOT_JSON = "not_json"
    UNKNOWN_SCHEMA = "unknown_schema"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_VALUE = "bad_value"


class NoticeParseError(ConfigError):
    """A payload is not an Azure Monitor alert we can read; ``problem`` says which way and ``field`` where."""

    def __init__(self, problem: NoticeProblem, message: str, *, field: str | None = None) -> None:
        super().__init__(message, problem=str(problem), field=field)
        self.problem = problem
        self.field = field


class DispatchError(PlatformError):
    """Forwarding a notice (to Prefect's events API or the local scan) failed; Azure's retry resends it."""

    retryable = True
