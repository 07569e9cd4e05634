"""``tasks.migration_report.write_migration_report``: the report file and its Prefect artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import flow

from modelshift.errors import NotFoundError
from modelshift.settings import get_settings
from modelshift.store import Store
from tasks.migration_report import write_migration_report
from tests.flows.conftest import artifact_text
from tests.gateway.gateway_helpers import MovableClock
from tests.report.report_helpers import Built, Page, build


@pytest.fixture
def rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Built]]:
    """A home whose store holds a migration whose canary was rolled back."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'state.db'}"
    monkeypatch.setenv("MODELSHIFT_HOME", str(home))
    monkeypatch.setenv("MODELSHIFT_DATABASE_URL", url)
    get_settings.cache_clear()
    home.mkdir()
    clock = MovableClock()
    with Store.open(url, clock=clock) as store:
        built = build(store, clock, tmp_path, "rolled_back")
    yield home, built
    get_settings.cache_clear()


@flow(name="report-test")
def _report(migration_id: str) -> str:
    return write_migration_report(migration_id)


@pytest.mark.slow  # the first flow test of a session waits for the Prefect test server
def test_the_task_writes_the_report_and_publishes_markdown_tables_and_a_link(
    rolled_back: tuple[Path, Built],
) -> None:
    from prefect.artifacts import Artifact

    home, built = rolled_back
    path = Path(_report(built.migration_id))
    assert path == (home / "reports" / f"{built.migration_id}.html").resolve()
    page = Page(path.read_text(encoding="utf-8"))
    assert "rolled back" in page.section("summary")
    markdown = artifact_text("migration-report-shop")
    assert markdown.startswith("# Migration of shop: **rolled back**")
    assert f"`{path}`" in markdown and "| 10 % | 40 | 35.00 % | 0.00 % |" in markdown
    link = Artifact.get("migration-report-file-shop")
    assert link is not None and path.as_uri() in str(link.data)
    evaluation = artifact_text("migration-report-evaluation-shop")
    assert "answer_f1" in evaluation and "latency_p95_ms" in evaluation
    assert "0.35" in artifact_text("migration-report-canary-shop")


def test_an_unknown_migration_fails_the_task_naming_the_id(rolled_back: tuple[Path, Built]) -> None:
    home, _ = rolled_back
    with pytest.raises(NotFoundError, match="no-such-id"):
        write_migration_report.fn("no-such-id")
    assert not (home / "reports").exists()
