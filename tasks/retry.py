"""The one retry condition of every modelshift task: retry only what the error itself calls retryable."""

from __future__ import annotations

from typing import Any

from modelshift.errors import is_retryable

#: how often a task that talks to a platform is retried, and the waits between (seconds)
PLATFORM_RETRIES = 3
PLATFORM_RETRY_DELAYS = [2.0, 10.0, 30.0]


def retry_condition_fn(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: True when the failed state's exception is a retryable modelshift
    error (429, 5xx, timeouts, a lost compare-and-set, an unreachable store); config errors and bugs fail at
    once, so a wrong setting is reported in seconds, not after three backoffs."""
    try:
        state.result()
    except BaseException as exc:
        return is_retryable(exc)
    return False
