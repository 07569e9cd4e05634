"""The fleet page, an app page, a migration page and the JSON API, through a real server over a real store.

Every row of the fleet is checked against what the store and the emulator's catalog say, and every user
mistake (unknown app or migration) is a 404 naming it, never a 500.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from modelshift.lifecycle.assess import AssessmentStatus
from modelshift.report.html import report_path
from tests.dashboard.conftest import Live

EXPECTED_ACTIONS = {
    "hr-handbook": "plan_ready",
    "faq": "migration_running",
    "claims": "needs_approval",
    "billing": "blocked",
    "search": "blocked",
}


def _rows(live: Live) -> dict[str, dict[str, object]]:
    with live.client() as client:
        response = client.get("/api/fleet")
    assert response.status_code == 200
    return {row["app"]: row for row in response.json()["rows"]}


def test_fleet_api_lists_every_app_with_its_production_bundle_and_next_action(live: Live) -> None:
    rows = _rows(live)
    assert sorted(rows) == sorted(live.fleet.production)
    for app, digest in live.fleet.production.items():
        production = rows[app]["production"]
        assert isinstance(production, dict)
        assert production["digest"] == digest
        assert production["status"] == "production"
    assert rows["support-chat"]["production"]["model"] == "gpt-4o"  # type: ignore[index]
    assert rows["support-chat"]["production"]["model_version"] == "2024-05-13"  # type: ignore[index]
    assert rows["support-chat"]["production"]["deployment"] == "support-chat-4o"  # type: ignore[index]
    for app, kind in EXPECTED_ACTIONS.items():
        action = rows[app]["next_action"]
        assert isinstance(action, dict)
        assert action["kind"] == kind, (app, action)
        assert action["migration_id"] == live.fleet.migrations[app]
    assert "quota exceeded" in rows["billing"]["next_action"]["detail"]  # type: ignore[index]
    assert "rolled_back" in rows["search"]["next_action"]["detail"]  # type: ignore[index]
    canary = rows["claims"]["canary"]
    assert isinstance(canary, dict)
    assert canary["weight"] == 25
    assert canary["awaiting_approval"] is True
    assert canary["candidate"]["digest"] == live.fleet.candidates["claims"]
    assert rows["search"]["canary"] is None


def test_lifecycle_comes_from_the_emulators_catalog(live: Live) -> None:
    """support-chat runs gpt-4o 2024-05-13; the emulator's catalog gives it a retirement date, and the
    row's days left, colour and next action follow from it."""
    rows = _rows(live)
    lifecycle = rows["support-chat"]["lifecycle"]
    assert isinstance(lifecycle, dict)
    assert lifecycle["available"] is True
    assert lifecycle["retirement"] is not None
    retirement = datetime.fromisoformat(str(lifecycle["retirement"]))
    days = lifecycle["days_left"]
    assert isinstance(days, int)
    # days left counted from today (the dashboard's clock is the wall clock)
    assert abs((retirement - datetime.now(UTC)).days - days) <= 1
    expected = (
        "urgent" if days <= 30 or lifecycle["status"] == "retired" else "warning" if days <= 90 else "ok"
    )
    assert lifecycle["urgency"] == expected
    action = rows["support-chat"]["next_action"]
    at_risk = {"retired", "retiring", "deprecating", "upgrade_available"}
    assert action["kind"] == ("migrate" if lifecycle["status"] in at_risk else "none")  # type: ignore[index]
    assert lifecycle["status"] in {s.value for s in AssessmentStatus}


def test_fleet_page_shows_each_app_with_its_action_badge(live: Live) -> None:
    with live.client() as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    for app, kind in EXPECTED_ACTIONS.items():
        assert f'data-app="{app}" data-action="{kind}"' in text
    assert "needs approval" in text
    assert "quota exceeded for gpt-4o GlobalStandard in eastus" in text
    assert "1.1.0 at 25 %" in text
    # works offline: no external URL anywhere in the page
    assert "http://" not in text and "https://" not in text
    # something is in flight: the page refreshes itself
    assert 'data-live="true"' in text


def test_migration_page_and_api_show_stages_gate_canary_decision_and_audit_trail(live: Live) -> None:
    migration_id = live.fleet.migrations["search"]
    with live.client() as client:
        data = client.get(f"/api/migrations/{migration_id}").json()
        page = client.get(f"/migrations/{migration_id}")
    assert data["phase"] == "rolled_back"
    assert data["active"] is False
    stages = {s["name"]: s["state"] for s in data["stages"]}
    assert stages == {
        "assess": "done",
        "prepare": "done",
        "evaluate": "done",
        "canary": "done",
        "promote": "not reached",
        "roll back": "done",
    }
    assert data["decision"]["outcome"] == "rolled back"
    assert "error_rate" in data["decision"]["reason"]
    assert data["evaluation"]["verdict"] == "pass"
    assert [m["name"] for m in data["evaluation"]["metrics"]] == ["answer_f1"]
    canary = data["canary"]
    assert [w["candidate_weight"] for w in canary["weights"]] == [25, 0]
    assert canary["analyses"][0]["verdict"] == "failed"
    # the gateway's records: 8 of the candidate's 40 requests failed, none of the baseline's
    first = canary["steps"][0]
    assert (first["canary"]["requests"], first["canary"]["errors"]) == (40, 8)
    assert (first["baseline"]["requests"], first["baseline"]["errors"]) == (40, 0)
    reasons = [e["reason"] for e in data["audit"]]
    assert "canary.rolled_back" in reasons and "migration.finished" in reasons
    assert data["audit_verified"] is True
    assert page.status_code == 200
    text = page.text
    assert 'id="phase">rolled_back' in text
    assert 'data-metric="answer_f1"' in text
    assert text.count("<svg") >= 2  # the gate histogram and the canary timeline
    assert 'id="canary-timeline"' in text
    assert 'data-reason="canary.rolled_back"' in text
    assert 'data-live="true"' not in text  # finished: no refresh


def test_a_running_migration_page_refreshes_itself(live: Live) -> None:
    with live.client() as client:
        page = client.get(f"/migrations/{live.fleet.migrations['faq']}")
    assert page.status_code == 200
    assert 'data-live="true"' in page.text
    assert "<script>" in page.text and "DOMParser" in page.text


def test_app_page_lists_migrations_and_asks_to_log_in_before_acting(live: Live) -> None:
    with live.client() as client:
        page = client.get("/apps/claims")
    assert page.status_code == 200
    assert live.fleet.migrations["claims"][:8] in page.text
    assert "/login?next=/apps/claims" in page.text
    assert 'action="/apps/claims/rollback"' not in page.text


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/apps/no-such-app", "no app 'no-such-app'"),
        ("/api/migrations/no-such-id", "no migration 'no-such-id'"),
        ("/migrations/no-such-id", "no migration 'no-such-id'"),
        ("/migrations/no-such-id/report", "no migration 'no-such-id'"),
    ],
)
def test_unknown_app_or_migration_is_a_404_naming_it(live: Live, path: str, needle: str) -> None:
    with live.client() as client:
        response = client.get(path)
    assert response.status_code == 404
    assert needle in html.unescape(response.text)


def test_the_report_link_is_a_404_until_the_report_is_written(live: Live) -> None:
    migration_id = live.fleet.migrations["search"]
    with live.client() as client:
        missing = client.get(f"/migrations/{migration_id}/report")
        assert missing.status_code == 404
        assert f"modelshift report {migration_id}" in missing.text
        path = report_path(live.dashboard.settings.home, migration_id)
        path.parent.mkdir(parents=True)
        path.write_text("<html><body>the report</body></html>")
        found = client.get(f"/migrations/{migration_id}/report")
        page = client.get(f"/migrations/{migration_id}")
    assert found.status_code == 200
    assert "the report" in found.text
    assert f'href="/migrations/{migration_id}/report"' in page.text
