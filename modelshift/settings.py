"""Settings from the environment (prefix ``MODELSHIFT_``) and an optional ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelshift.errors import ConfigError


class Stage(StrEnum):
    """The stages of a real migration after assess, in the order they run (``MODELSHIFT_STOP_AFTER``)."""

    PLAN = "plan"
    PREPARE = "prepare"
    EVALUATE = "evaluate"
    CANARY = "canary"


_STAGE_ORDER = list(Stage)


class RunnerKind(StrEnum):
    """The task runners the evaluation fan-out can use (``MODELSHIFT_TASK_RUNNER``)."""

    THREAD = "thread"
    DASK = "dask"


class Settings(BaseSettings):
    """Everything modelshift reads from its environment. Each field is ``MODELSHIFT_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="MODELSHIFT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(
        default=Path(".modelshift"),
        description="Working directory for local state: the SQLite store, index generations, reports.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the state store; default sqlite:///<home>/state.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host:5432/db",
    )
    bundles_dir: Path = Field(default=Path("bundles"), description="Where bundle directories live.")
    arm_url: str = Field(
        default="https://management.azure.com", description="Azure Resource Manager base URL."
    )
    arm_api_version: str = Field(default="2025-06-01", description="Pinned ARM api-version.")
    data_plane_api_version: str = Field(
        default="2024-10-21", description="Azure OpenAI data-plane api-version."
    )
    api_key: SecretStr | None = Field(default=None, description="Azure OpenAI api-key (else azure-identity).")
    arm_token: SecretStr | None = Field(
        default=None, description="A bearer token for ARM (else azure-identity's DefaultAzureCredential)."
    )
    webhook_secret: SecretStr | None = Field(default=None, description="Shared secret of the notice webhook.")
    dashboard_token: SecretStr | None = Field(
        default=None, description="Operator token for dashboard actions."
    )
    families_file: Path | None = Field(
        default=None, description="YAML file of model families merged over the default table (scope rules)."
    )
    price_table_file: Path | None = Field(
        default=None, description="YAML/JSON file of token prices per model merged over the default table."
    )
    stop_after: Stage | None = Field(
        default=None,
        description="End a real migration after this stage: plan (plan-only operation), prepare or evaluate "
        "(candidate evaluated, no live traffic). Unset: the whole DAG, assess -> plan -> prepare -> evaluate "
        "-> canary -> promote | roll back.",
    )
    finetune_poll_seconds: float = Field(
        default=30.0, gt=0, description="First wait between polls of a fine-tuning job (backs off to 300 s)."
    )
    actor: str = Field(
        default="cli", description="Who the audit chain names for actions taken from this shell."
    )
    retire_grace_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="Seconds after a promotion before the retired baseline's deployment is deleted "
        "(0: at once).",
    )
    canary_lease_seconds: int = Field(
        default=300,
        ge=5,
        description="Lease on canary weights that the canary flow renews at every decision; if the flow "
        "dies, the gateway serves 100 % production once it lapses.",
    )
    canary_poll_seconds: float = Field(
        default=15.0, gt=0, description="Longest sleep of the canary flow between two controller decisions."
    )

    task_runner: RunnerKind = Field(
        default=RunnerKind.THREAD,
        description="Task runner of the evaluation fan-out: thread (Prefect's thread pool) or dask.",
    )
    dask_address: str | None = Field(
        default=None,
        description="Scheduler address of an existing Dask cluster (tcp://host:8786); unset with "
        "task_runner=dask: a temporary local cluster.",
    )
    dask_workers: int = Field(
        default=2, ge=1, le=64, description="Workers of the temporary local Dask cluster."
    )

    @model_validator(mode="after")
    def _address_needs_dask(self) -> Settings:
        if self.dask_address and self.task_runner is not RunnerKind.DASK:
            raise ValueError(
                "MODELSHIFT_DASK_ADDRESS is set but MODELSHIFT_TASK_RUNNER is "
                f"{self.task_runner.value!r}; set MODELSHIFT_TASK_RUNNER=dask to use that cluster, or unset "
                "MODELSHIFT_DASK_ADDRESS"
            )
        return self

    @field_validator("stop_after")
    @classmethod
    def _stop_before_canary(cls, value: Stage | None) -> Stage | None:
        if value is Stage.CANARY:
            raise ValueError(
                "a canary always ends in promote or roll back; to stop before live traffic use "
                "MODELSHIFT_STOP_AFTER=evaluate"
            )
        return value

    @field_validator("arm_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def runs(self, stage: Stage) -> bool:
        """Whether a real migration goes on into ``stage`` (it does unless it stops at an earlier one)."""
        return self.stop_after is None or _STAGE_ORDER.index(stage) <= _STAGE_ORDER.index(self.stop_after)

    @property
    def resolved_database_url(self) -> str:
        """The store URL: the configured one, or SQLite inside ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'state.db').resolve()}"


def load_settings() -> Settings:
    """Settings from the environment (and ``.env``); a bad value is a ConfigError naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ConfigError(f"settings: {problems}") from None


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not where:  # a model validator: its message names the variables already
        return message
    return f"MODELSHIFT_{where.upper()}: {message} (got {error['input']!r})"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (a bad value: ConfigError naming the variable)."""
    return load_settings()
