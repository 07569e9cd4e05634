"""Migration-record fixtures: a migrated store on SQLite and PostgreSQL, and a stepping clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelshift.migration import MigrationStore
from modelshift.store import Store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class StepClock:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated store on SQLite (temp file) or PostgreSQL (fresh database)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    else:
        factory: Callable[[], str] = request.getfixturevalue("postgres_url_factory")
        url = factory()
    opened = Store.open(url)
    yield opened
    opened.close()


@pytest.fixture
def migrations(store: Store) -> MigrationStore:
    """The migration records of ``store``, on a stepping clock."""
    return MigrationStore(store, clock=StepClock())
