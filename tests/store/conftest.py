"""Store fixtures: every store test runs on SQLite (a temp file) and on PostgreSQL (a fresh database)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelshift.store import Store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class StepClock:
    """A clock that moves one millisecond (plus a microsecond, to exercise precision) per reading."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1, microseconds=1)
        return self.now


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    factory: Callable[[], str] = request.getfixturevalue("postgres_url_factory")
    return factory()


@pytest.fixture
def clock() -> StepClock:
    """The injected clock of the store under test."""
    return StepClock()


@pytest.fixture
def store(store_url: str, clock: StepClock) -> Iterator[Store]:
    """An opened (migrated) store on each backend."""
    opened = Store.open(store_url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()
