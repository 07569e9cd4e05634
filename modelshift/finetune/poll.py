"""Polling a fine-tuning job: the backoff schedule and the cursor that hands each job event on once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelshift.errors import ConfigError
from modelshift.platforms.base import FineTuneEvent

#: what the caller does with each new job event (the Prefect task logs it and updates a progress artifact)
EventCallback = Callable[[FineTuneEvent], None]


@dataclass(frozen=True)
class PollPolicy:
    """Backoff between polls: ``initial`` seconds, times ``multiplier`` each poll, capped at ``maximum``;
    ``timeout`` bounds the whole wait of one run (a re-run resumes the same job with a fresh budget)."""

    initial: float = 30.0
    maximum: float = 300.0
    multiplier: float = 1.5
    timeout: float = 12 * 3600.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.multiplier < 1 or self.timeout <= 0:
            raise ConfigError(
                f"fine-tuning poll policy {self!r} is inconsistent: need 0 < initial <= maximum, "
                "multiplier >= 1 and timeout > 0"
            )

    def interval(self, attempt: int) -> float:
        """Seconds to wait after poll number ``attempt`` (0-based)."""
        # cap the exponent first: a day of polling must not overflow the float
        grown = self.initial * self.multiplier ** min(attempt, 64)
        return min(self.maximum, grown)


class EventCursor:
    """Remembers which job events were handed on, so each one reaches the callback once.

    ``last_event_id`` is persisted with the job's row; after a restart every event up to and including it
    counts as seen (the list comes oldest first, and new events only ever come after old ones).
    """

    def __init__(self, last_event_id: str | None = None) -> None:
        self._resume_after = last_event_id
        self._seen: set[str] = set()
        self.last_event_id = last_event_id

    def new(self, events: Sequence[FineTuneEvent]) -> list[FineTuneEvent]:
        """The events not handed on before, oldest first; marks them seen."""
        if self._resume_after is not None:
            ids = [e.id for e in events]
            if self._resume_after in ids:
                self._seen.update(ids[: ids.index(self._resume_after) + 1])
                self._resume_after = None
        fresh = [e for e in events if e.id not in self._seen]
        self._seen.update(e.id for e in fresh)
        if fresh:
            self.last_event_id = fresh[-1].id
        return fresh
