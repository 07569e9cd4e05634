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

from modelshift.settings import RunnerKind, Settings, load_settings

__all__ = ["FanoutSettings", "RunnerKind", "fanout_settings"]

#: the fan-out's settings are the process settings' ``task_runner``, ``dask_address`` and ``dask_workers``
FanoutSettings = Settings


def fanout_settings() -> Settings:
    """The settings read fresh from the environment (or ``.env``); a bad value is a ConfigError naming it."""
    return load_settings()
