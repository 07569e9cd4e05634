"""Which task runner the evaluation fan-out uses: MODELSHIFT_TASK_RUNNER, _DASK_ADDRESS, _DASK_WORKERS."""

from __future__ import annotations

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask.task_runners import DaskTaskRunner

from modelshift.errors import ConfigError
from modelshift.settings import RunnerKind, Settings, load_settings
from tasks.fanout import task_runner


def test_the_runner_follows_the_settings() -> None:
    assert isinstance(task_runner(Settings(_env_file=None), 2), ThreadPoolTaskRunner)
    local = task_runner(Settings(_env_file=None, task_runner=RunnerKind.DASK, dask_workers=3), 2)
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"] is False
    remote = task_runner(
        Settings(_env_file=None, task_runner=RunnerKind.DASK, dask_address="tcp://10.0.0.5:8786"), 2
    )
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODELSHIFT_TASK_RUNNER": "ray"}, "MODELSHIFT_TASK_RUNNER: Input should be 'thread' or 'dask'"),
        ({"MODELSHIFT_TASK_RUNNER": "dask", "MODELSHIFT_DASK_WORKERS": "0"}, "MODELSHIFT_DASK_WORKERS"),
        ({"MODELSHIFT_DASK_ADDRESS": "tcp://10.0.0.5:8786"}, "set MODELSHIFT_TASK_RUNNER=dask"),
    ],
)
def test_a_bad_fanout_setting_names_the_variable(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="settings: ") as raised:
        load_settings()
    assert named in str(raised.value)


def test_the_default_is_the_thread_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELSHIFT_TASK_RUNNER", "MODELSHIFT_DASK_ADDRESS", "MODELSHIFT_DASK_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.task_runner is RunnerKind.THREAD and settings.dask_address is None
