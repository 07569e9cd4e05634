"""The durable record of notices already seen: the dedupe half of the webhook.

A notice row moves ``received -> dispatched`` or ``received -> failed -> received -> ...``. ``record`` both
deduplicates and *claims*: it tells exactly one caller to dispatch a notice, so eight simultaneous deliveries
of one notice start one scan, while a notice whose dispatch failed (or whose dispatcher died holding the claim
past its lease) is claimed again by Azure's next retry instead of being answered "duplicate".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from modelshift.notices.model import Notice

#: a claim older than this is presumed dead (its process crashed mid-dispatch) and may be taken over
CLAIM_LEASE = timedelta(minutes=5)


class NoticeStatus(StrEnum):
    """Where a recorded notice stands."""

    RECEIVED = "received"  # claimed; a dispatch is in progress (or its process died, see CLAIM_LEASE)
    DISPATCHED = "dispatched"
    FAILED = "failed"  # the last dispatch failed; the next delivery claims it again


@dataclass(frozen=True)
class Recorded:
    """What ``NoticeLog.record`` found: ``new`` notice, already ``dispatched``, and whether we ``claimed`` it.

    The caller dispatches exactly when ``claimed`` is true, then calls ``mark_dispatched`` or ``mark_failed``.
    """

    new: bool
    dispatched: bool
    claimed: bool
    attempts: int = 1


class NoticeLog(Protocol):
    """Durable, concurrency-safe notice dedupe. Implementations write ``notice.received`` audit events."""

    def record(self, key: str, notice: Notice) -> Recorded:
        """Insert the notice (audited) or find it; claim it if new, failed or its claim has expired."""
        ...

    def mark_dispatched(self, key: str) -> None:
        """The claimed notice was handed to its dispatcher."""
        ...

    def mark_failed(self, key: str, error: str) -> None:
        """The claimed notice could not be dispatched; the next delivery of it will claim it again."""
        ...
