"""The retirement-scan flow: fleet table, one migration per app that needs one, idempotent repeats,
scoping to a notice's models, and never two active migrations for one app."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from prefect.artifacts import Artifact

from flows.migrate import model_migration
from flows.scan import retirement_scan
from modelshift.migration import MigrationPhase, MigrationStore, Trigger
from modelshift.migration.params import MigrationParams
from modelshift.settings import get_settings
from tests.flows.conftest import Env

pytestmark = pytest.mark.slow

AS_OF = date(2026, 1, 15)


@pytest.fixture(autouse=True)
def _plan_only(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about which migrations the scan starts; the stages after the plan have their own."""
    monkeypatch.setenv("MODELSHIFT_STOP_AFTER", "plan")
    get_settings.cache_clear()


def _migrations(env: Env) -> list[Any]:
    with env.store() as store:
        return MigrationStore(store).list()


def test_scan_starts_one_migration_per_app_that_needs_one_and_a_repeat_starts_nothing(env: Env) -> None:
    first = retirement_scan(as_of=AS_OF, horizon_days=90)
    assert first["assessed"] == 3
    started = {s["app"] for s in first["started"]}
    assert "support-chat" in started  # gpt-4o 2024-05-13 retires 2026-02-10
    records = _migrations(env)
    assert {m.app for m in records} == started and len(records) == len(started)
    assert all(m.phase is MigrationPhase.PLANNED and m.trigger is Trigger.SCHEDULE for m in records)
    assert all(m.actor == "retirement-scan" for m in records)
    table = Artifact.get("retirement-scan")
    assert table is not None and "support-chat" in str(table.data)

    again = retirement_scan(as_of=AS_OF, horizon_days=90)
    assert again["started"] == []
    assert {s["app"] for s in again["skipped"]} == started
    assert [m.id for m in _migrations(env)] == [m.id for m in records]


def test_a_notice_scopes_the_scan_to_its_models_and_is_recorded_as_the_trigger(env: Env) -> None:
    result = retirement_scan(as_of=AS_OF, models=["gpt-4o@2024-05-13", "gpt-4.1"], notice_id="notice-123")
    assert result["assessed"] == 1
    assert [s["app"] for s in result["started"]] == ["support-chat"]
    (record,) = _migrations(env)
    assert record.trigger is Trigger.NOTICE and record.parameters["notice_id"] == "notice-123"
    assert record.actor == "notice:notice-123"
    # the same notice delivered again starts nothing new
    repeat = retirement_scan(as_of=AS_OF, models=["gpt-4o@2024-05-13"], notice_id="notice-123")
    assert repeat["started"] == [] and len(_migrations(env)) == 1


def test_a_scan_scoped_to_an_unused_model_assesses_nothing(env: Env) -> None:
    result = retirement_scan(as_of=AS_OF, models=["o3-mini"])
    assert result == {"assessed": 0, "started": [], "skipped": [], "notice_id": None, "swept": []}
    assert _migrations(env) == []


def test_the_scan_does_not_start_a_second_migration_for_an_app_with_an_active_one(env: Env) -> None:
    manual = model_migration(
        MigrationParams(
            app="support-chat", target="gpt-4.1@2025-04-14", trigger=Trigger.UI, actor="alice", as_of=AS_OF
        )
    )
    assert manual.phase is MigrationPhase.PLANNED
    result = retirement_scan(as_of=AS_OF, models=["gpt-4o"])
    assert result["started"] == []
    (skip,) = result["skipped"]
    assert skip["app"] == "support-chat" and manual.migration_id in skip["why"] and "active" in skip["why"]
    assert [m.id for m in _migrations(env)] == [manual.migration_id]


def test_after_a_cancelled_migration_the_scan_starts_a_new_one(env: Env) -> None:
    retirement_scan(as_of=AS_OF, models=["gpt-4o"])
    (first,) = _migrations(env)
    with env.store() as store:
        MigrationStore(store).advance(first.id, "cancelled", actor="alice")
    result = retirement_scan(as_of=AS_OF, models=["gpt-4o"])
    assert [s["app"] for s in result["started"]] == ["support-chat"]
    records = _migrations(env)
    assert len(records) == 2 and sum(m.active for m in records) == 1
