"""Clocks. Library code takes a clock as a parameter and never reads the wall clock itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The wall clock in UTC; the default clock handed in at the edges (CLI, flows, servers)."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Treat a naive datetime as UTC and convert an aware one to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
