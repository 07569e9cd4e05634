"""Where the evaluation fan-out runs: Prefect's thread pool (default) or a Dask cluster.

The evaluate task splits an evaluation into shards, one per deployment (:func:`~modelshift.evaluation.pair.
plan_shards`), and runs them as Prefect tasks on the task runner these settings choose:

- ``MODELSHIFT_TASK_RUNNER=thread`` (default): a thread pool in the worker's own process;
- ``MODELSHIFT_TASK_RUNNER=dask``: prefect-dask's ``DaskTaskRunner``, on the cluster at
  ``MODELSHIFT_DASK_ADDRESS`` (``tcp://scheduler:8786``; its workers need modelshift installed and the same
  ``MODELSHIFT_*`` settings) or, when unset, on a temporary local cluster of ``MODELSHIFT_DASK_WORKERS``
  workers (threads: the runs are network-bound).

The results are the same either way; only where the model calls are made changes. This is library code
(no Prefect import): ``tasks/fanout.py`` builds the task runner from it.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelshift.errors import ConfigError


class RunnerKind(StrEnum):
    """The task runners the evaluation fan-out can use."""

    THREAD = "thread"
    DASK = "dask"


class FanoutSettings(BaseSettings):
    """``MODELSHIFT_TASK_RUNNER``, ``MODELSHIFT_DASK_ADDRESS`` and ``MODELSHIFT_DASK_WORKERS``."""

    model_config = SettingsConfigDict(
        env_prefix="MODELSHIFT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
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
    def _address_needs_dask(self) -> FanoutSettings:
        if self.dask_address and self.task_runner is not RunnerKind.DASK:
            raise ValueError(
                "MODELSHIFT_DASK_ADDRESS is set but MODELSHIFT_TASK_RUNNER is "
                f"{self.task_runner.value!r}; set MODELSHIFT_TASK_RUNNER=dask to use that cluster, or unset "
                "MODELSHIFT_DASK_ADDRESS"
            )
        return self


def fanout_settings() -> FanoutSettings:
    """The fan-out settings from the environment (or ``.env``); a bad value is a ConfigError naming it."""
    try:
        return FanoutSettings()
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ConfigError(f"evaluation fan-out settings: {problems}") from None


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if not where:  # the model validator: its message names the variables already
        return error["msg"].removeprefix("Value error, ")
    return f"MODELSHIFT_{where.upper()}: {error['msg']} (got {error['input']!r})"
