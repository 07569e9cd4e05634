"""Pydantic models of Azure OpenAI data-plane payloads (api-version 2024-10-21; unix-second dates).

Same rules as :mod:`modelshift.platforms.azure.models`: unknown fields ignored, ``to_result()`` converts to
the plain results of :mod:`modelshift.platforms.base`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from modelshift.platforms import base
from modelshift.platforms.azure.models import AwareDatetime, RequiredDatetime, Wire


class DpCapabilities(Wire):
    """``capabilities`` of a data-plane model (all bool)."""

    fine_tune: bool = False
    inference: bool = False
    completion: bool = False
    chat_completion: bool = False
    embeddings: bool = False


class DpDeprecation(Wire):
    """``deprecation{inference, fine_tune}`` in unix seconds (fine_tune absent for fine-tuned models)."""

    inference: AwareDatetime = None
    fine_tune: AwareDatetime = None


class DpModel(Wire):
    """``GET {endpoint}/openai/models[/{id}]`` item."""

    id: str
    object: str | None = None
    created_at: AwareDatetime = None
    status: str | None = None
    model: str | None = None
    fine_tune: str | None = None
    capabilities: DpCapabilities = Field(default_factory=DpCapabilities)
    lifecycle_status: str | None = None
    deprecation: DpDeprecation = Field(default_factory=DpDeprecation)

    def to_result(self) -> base.CatalogModel:
        """As a :class:`~modelshift.platforms.base.CatalogModel` (data-plane ids carry no version)."""
        caps = self.capabilities.model_dump()
        return base.CatalogModel(
            model=base.ModelRef(name=self.id),
            lifecycle_status=base.LifecycleStatus.parse(self.lifecycle_status),
            lifecycle_status_raw=self.lifecycle_status,
            inference_retirement=self.deprecation.inference,
            fine_tune_retirement=self.deprecation.fine_tune,
            capabilities={k: str(v).lower() for k, v in caps.items()},
            base_model=base.ModelRef(name=self.model) if self.model else None,
        )


class DpList(Wire):
    """``{object: "list", data: [...], has_more?}`` with untyped items (typed by the caller)."""

    data: list[dict[str, Any]] = Field(default_factory=list)
    has_more: bool = False


class DpUsage(Wire):
    """``usage`` of a chat or embeddings response."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def to_result(self) -> base.TokenUsage:
        """As a :class:`~modelshift.platforms.base.TokenUsage`."""
        total = self.total_tokens or self.prompt_tokens + self.completion_tokens
        return base.TokenUsage(
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens, total_tokens=total
        )


class DpMessage(Wire):
    """``choices[].message``."""

    role: str | None = None
    content: str | None = None


class DpChoice(Wire):
    """One of ``choices``."""

    index: int = 0
    message: DpMessage = Field(default_factory=DpMessage)
    finish_reason: str | None = None


class DpChatCompletion(Wire):
    """Chat completions response."""

    id: str | None = None
    model: str | None = None
    choices: list[DpChoice] = Field(default_factory=list)
    usage: DpUsage = Field(default_factory=DpUsage)


class DpEmbedding(Wire):
    """One of ``data`` in an embeddings response."""

    index: int = 0
    embedding: list[float]


class DpEmbeddings(Wire):
    """Embeddings response."""

    model: str | None = None
    data: list[DpEmbedding] = Field(default_factory=list)
    usage: DpUsage = Field(default_factory=DpUsage)


class DpFile(Wire):
    """A ``File`` (upload response and list item)."""

    id: str
    object: str | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    bytes: int | None = None
    created_at: AwareDatetime = None

    def to_result(self) -> base.FileInfo:
        """As a :class:`~modelshift.platforms.base.FileInfo`."""
        return base.FileInfo(
            id=self.id,
            filename=self.filename,
            purpose=self.purpose,
            status=self.status,
            bytes=self.bytes,
            created_at=self.created_at,
        )


class DpJobError(Wire):
    """``error{code, message, param}`` of a failed job."""

    code: str | None = None
    message: str | None = None
    param: str | None = None


class DpFineTuningJob(Wire):
    """A ``FineTuningJob``."""

    id: str
    object: str | None = None
    status: str
    model: str
    training_file: str | None = None
    validation_file: str | None = None
    fine_tuned_model: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    created_at: AwareDatetime = None
    finished_at: AwareDatetime = None
    trained_tokens: int | None = None
    error: DpJobError | None = None

    def to_result(self) -> base.FineTuneJob:
        """As a :class:`~modelshift.platforms.base.FineTuneJob`; an unknown status is kept as ``pending``."""
        try:
            status = base.FineTuneStatus(self.status.lower())
        except ValueError:
            status = base.FineTuneStatus.PENDING  # a newer non-terminal state: keep polling
        error = None
        if self.error is not None and (self.error.code or self.error.message):
            error = base.JobError(code=self.error.code, message=self.error.message, param=self.error.param)
        return base.FineTuneJob(
            id=self.id,
            status=status,
            model=self.model,
            training_file=self.training_file,
            validation_file=self.validation_file,
            fine_tuned_model=self.fine_tuned_model,
            hyperparameters=dict(self.hyperparameters),
            suffix=self.suffix,
            seed=self.seed,
            created_at=self.created_at,
            finished_at=self.finished_at,
            trained_tokens=self.trained_tokens,
            error=error,
        )


class DpEvent(Wire):
    """A ``fine_tuning.job.event``."""

    id: str
    created_at: RequiredDatetime
    level: str = "info"
    message: str = ""
    type: str | None = None

    def to_result(self) -> base.FineTuneEvent:
        """As a :class:`~modelshift.platforms.base.FineTuneEvent`."""
        return base.FineTuneEvent(
            id=self.id, created_at=self.created_at, level=self.level, message=self.message, type=self.type
        )
