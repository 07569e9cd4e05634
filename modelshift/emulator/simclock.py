"""The scenario clock: scenario time that runs ``speed`` times faster than real time and can be moved.

Lifecycle dates, LRO progress and fine-tuning jobs follow this clock; rate limits do NOT (they use real
monotonic time, as Azure's windows are real seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from modelshift.clock import ensure_utc


class ScenarioClock:
    """A thread-safe, settable, speed-scaled clock; call it to read the current scenario time."""

    def __init__(self, start: datetime, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._start = ensure_utc(start)
        self._speed = speed
        self._anchor = monotonic()
        self._initial = (self._start, speed)

    def __call__(self) -> datetime:
        """The current scenario time (UTC)."""
        with self._lock:
            elapsed = (self._monotonic() - self._anchor) * self._speed
            return self._start + timedelta(seconds=elapsed)

    @property
    def speed(self) -> float:
        """Scenario seconds per real second."""
        return self._speed

    def set(self, when: datetime, speed: float | None = None) -> datetime:
        """Jump to ``when`` (the clock keeps running from there); optionally change the speed."""
        with self._lock:
            self._start = ensure_utc(when)
            self._anchor = self._monotonic()
            if speed is not None:
                self._speed = speed
        return self()

    def advance(self, seconds: float) -> datetime:
        """Move the clock ``seconds`` forward (negative moves it back)."""
        return self.set(self() + timedelta(seconds=seconds))

    def reset(self) -> datetime:
        """Back to the scenario's start time and speed."""
        start, speed = self._initial
        return self.set(start, speed)
