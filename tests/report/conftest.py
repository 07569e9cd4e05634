"""Report fixtures: migrations built once per session in each state, each in its own SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelshift.store import Store
from tests.gateway.gateway_helpers import MovableClock
from tests.report.report_helpers import Built, build


@dataclass
class Scenario:
    """A built migration, the store holding it and the clock that built it."""

    built: Built
    url: str
    clock: MovableClock
    root: Path

    def store(self) -> Store:
        """Open the scenario's store (close it when done)."""
        return Store.open(self.url, clock=self.clock)


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Scenario]]:
    """``scenario(until, hostile=False)``: the migration built up to ``until`` (built once per session)."""
    made: dict[tuple[str, bool], Scenario] = {}

    def get(until: str, *, hostile: bool = False) -> Scenario:
        key = (until, hostile)
        if key not in made:
            root = tmp_path_factory.mktemp(f"report-{until}{'-hostile' if hostile else ''}")
            url = f"sqlite:///{root / 'state.db'}"
            clock = MovableClock()
            with Store.open(url, clock=clock) as store:
                built = build(store, clock, root, until, hostile=hostile)
            made[key] = Scenario(built, url, clock, root)
        return made[key]

    yield get
