"""Operator actions through a real server: refused without the token, with a wrong token or a bad CSRF token,
and, with them, carried out by the same audited code as the CLI with the operator named as the actor.

(Approve/reject and dry run / start need a Prefect API: tests/dashboard/test_dashboard_prefect.py.)
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from modelshift.audit import Reason
from modelshift.dashboard import open_dashboard, running_dashboard
from modelshift.migration import MigrationStore
from modelshift.platforms import azure
from modelshift.platforms.base import AccountRef
from modelshift.settings import Settings
from modelshift.store import BundleStatus, Store
from tests.dashboard.conftest import TOKEN, Live, login, migration

CANDIDATE_DEPLOYMENT = "legacy-35-0613"


def _message(response: httpx.Response) -> str:
    if response.headers["content-type"].startswith("application/json"):
        return str(response.json()["error"]["message"])
    found = re.search(r'id="error">(.*?)</p>', response.text, re.S)
    assert found is not None, response.text
    return html.unescape(found.group(1))


def _deployments(settings: Settings) -> set[str]:
    with httpx.Client(timeout=30) as client:
        arm = azure.arm_client(settings, client=client)
        ref = AccountRef(
            subscription_id="00000000-0000-0000-0000-000000000001",
            resource_group="rg-legacy",
            name="tailspin-ai-eus2",
        )
        return {d.name for d in arm.list(ref)}


def _unchanged(live: Live, settings: Settings) -> None:
    with Store.open(settings.resolved_database_url) as store:
        candidate = store.get_bundle_by_digest(live.fleet.candidates["claims"])
        router = store.get_router("claims")
        rolled = [
            e for e in store.audit_events() if e.reason == Reason.CANARY_ROLLED_BACK and "claims" in e.subject
        ]
    assert candidate.status is BundleStatus.CANARY
    assert router.weights[candidate.digest] == 25
    assert rolled == []


def test_an_action_without_the_token_is_a_401_and_changes_nothing(live: Live, settings: Settings) -> None:
    with live.client() as client:
        response = client.post("/apps/claims/rollback", data={"reason": "x"})
        as_json = client.post("/apps/claims/rollback", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert "log in first" in _message(response)
    assert "log in to act" in response.text  # the error page offers the login
    assert as_json.status_code == 401
    assert as_json.json()["error"]["code"] == "unauthorized"
    _unchanged(live, settings)


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({"authorization": "Bearer wrong"}, "wrong operator token"),
        ({"authorization": "Basic abc"}, "expected 'Bearer <MODELSHIFT_DASHBOARD_TOKEN>'"),
        ({"authorization": f"Bearer {TOKEN}"}, "x-modelshift-operator header missing"),
        ({"authorization": f"Bearer {TOKEN}", "x-modelshift-operator": "<script>"}, "operator name"),
    ],
)
def test_a_bad_header_token_or_operator_is_a_401(
    live: Live, settings: Settings, headers: dict[str, str], needle: str
) -> None:
    with live.client() as client:
        response = client.post("/apps/claims/rollback", headers=headers)
    assert response.status_code == 401
    assert needle in _message(response)
    _unchanged(live, settings)


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_a_session_form_without_the_right_csrf_token_is_a_403(
    live: Live, settings: Settings, csrf: str | None
) -> None:
    with live.client() as client:
        login(client)
        data = {"reason": "x"} if csrf is None else {"reason": "x", "csrf": csrf}
        response = client.post("/apps/claims/rollback", data=data)
    assert response.status_code == 403
    assert "CSRF token missing or wrong" in _message(response)
    _unchanged(live, settings)


def test_another_sessions_csrf_token_is_refused(live: Live, settings: Settings) -> None:
    with live.client() as first, live.client() as second:
        token_of_first = login(first, "dana")
        login(second, "lee")
        response = second.post("/apps/claims/rollback", data={"csrf": token_of_first})
    assert response.status_code == 403
    _unchanged(live, settings)


def test_login_with_a_wrong_token_or_bad_name_is_a_401_and_sets_no_cookie(live: Live) -> None:
    with live.client() as client:
        wrong = client.post("/login", data={"operator": "dana", "token": "nope"})
        bad_name = client.post("/login", data={"operator": "", "token": TOKEN})
        assert "modelshift_session" not in client.cookies
    assert wrong.status_code == 401
    assert "wrong operator token" in _message(wrong)
    assert bad_name.status_code == 401
    assert "operator name" in _message(bad_name)


def test_the_session_cookie_is_httponly_and_samesite_strict_and_login_redirects_only_here(live: Live) -> None:
    with live.client() as client:
        response = client.post("/login", data={"operator": "dana", "token": TOKEN, "next": "/apps/claims"})
        offsite = client.post("/login", data={"operator": "dana", "token": TOKEN, "next": "//evil.example/x"})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert response.headers["location"] == "/apps/claims"
    assert offsite.headers["location"] == "/"


def test_rollback_from_a_logged_in_session_is_audited_with_the_operator(
    live: Live, settings: Settings
) -> None:
    assert CANDIDATE_DEPLOYMENT in _deployments(settings)
    with live.client() as client:
        csrf = login(client, "dana")
        page = client.get("/apps/claims")
        assert 'action="/apps/claims/rollback"' in page.text
        assert 'id="operator">dana' in page.text
        response = client.post("/apps/claims/rollback", data={"csrf": csrf, "reason": "pager at 3am"})
    assert response.status_code == 200, response.text
    assert "Rolled back claims@1.1.0" in response.text
    candidate, production = live.fleet.candidates["claims"], live.fleet.production["claims"]
    with Store.open(settings.resolved_database_url) as store:
        assert store.get_bundle_by_digest(candidate).status is BundleStatus.ROLLED_BACK
        assert store.get_router("claims").weights == {production: 100}
        events = store.audit_events()
    rolled = [e for e in events if e.reason == Reason.CANARY_ROLLED_BACK and "claims" in e.subject]
    assert len(rolled) == 1
    assert rolled[0].actor == "dana"
    assert "pager at 3am" in rolled[0].data["reason"]
    router = [e for e in events if e.reason == Reason.ROUTER_UPDATED and e.data["app"] == "claims"]
    assert router[-1].actor == "dana"
    # the candidate's own deployment is deleted, as `modelshift rollback` does
    assert CANDIDATE_DEPLOYMENT not in _deployments(settings)
    # the fleet no longer shows a canary waiting for approval
    with live.client() as client:
        row = next(r for r in client.get("/api/fleet").json()["rows"] if r["app"] == "claims")
    assert row["canary"] is None
    assert row["next_action"]["kind"] != "needs_approval"


def test_rollback_with_the_header_token_answers_json_and_keeps_the_deployment(
    live: Live, settings: Settings
) -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "x-modelshift-operator": "ci-bot"}
    with live.client() as client:
        response = client.post("/apps/claims/rollback", headers=headers, data={"keep_deployment": "1"})
        again = client.post("/apps/claims/rollback", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["actor"] == "ci-bot"
    assert body["deleted_deployments"] == []
    assert body["router"] == {live.fleet.production["claims"]: 100}
    assert CANDIDATE_DEPLOYMENT in _deployments(settings)
    # a second rollback finds nothing in canary: a 409 saying so, not a 500
    assert again.status_code == 409
    assert "has no bundle in canary" in again.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "data", "status", "needle"),
    [
        ("/apps/nope/rollback", {}, 404, "no app 'nope'"),
        ("/apps/support-chat/rollback", {}, 409, "has no bundle in canary"),
        ("/apps/claims/approval", {"decision": "maybe"}, 400, "decision 'maybe'"),
        ("/apps/support-chat/approval", {"decision": "approve"}, 409, "nothing to approve"),
        ("/apps/hr-handbook/migrate", {}, 400, "dry_run_id: run a dry run first"),
        ("/apps/hr-handbook/migrate", {"dry_run_id": "nope"}, 404, "no migration 'nope'"),
    ],
)
def test_bad_action_input_is_a_4xx_naming_the_problem(
    live: Live, path: str, data: dict[str, str], status: int, needle: str
) -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "x-modelshift-operator": "dana"}
    with live.client() as client:
        response = client.post(path, headers=headers, data=data)
    assert response.status_code == status, response.text
    assert needle in _message(response)


def test_starting_refers_to_a_finished_ready_dry_run_of_the_same_app(live: Live, settings: Settings) -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "x-modelshift-operator": "dana"}
    hr_dry_run = live.fleet.migrations["hr-handbook"]
    with Store.open(settings.resolved_database_url) as store:
        blocked = migration(
            store,
            "hr-handbook",
            live.fleet.production["hr-handbook"],
            [],
            dry_run=True,
        )
        faq_dry_run = migration(store, "faq", live.fleet.production["faq"], [], dry_run=True)
    with live.client() as client:
        other_app = client.post("/apps/faq/migrate", headers=headers, data={"dry_run_id": hr_dry_run})
        real_one = client.post(
            "/apps/hr-handbook/migrate",
            headers=headers,
            data={"dry_run_id": live.fleet.migrations["billing"]},
        )
        unfinished = client.post("/apps/hr-handbook/migrate", headers=headers, data={"dry_run_id": blocked})
        busy = client.post("/apps/faq/migrate", headers=headers, data={"dry_run_id": faq_dry_run})
    assert other_app.status_code == 400
    assert "is not a dry run of faq" in _message(other_app)
    assert real_one.status_code == 400
    assert unfinished.status_code == 409
    assert "not finished" in _message(unfinished)
    assert busy.status_code == 409
    with Store.open(settings.resolved_database_url) as store:
        started = [m for m in MigrationStore(store).list() if not m.dry_run and m.actor == "dana"]
    assert started == []


def test_logout_ends_the_session(live: Live) -> None:
    with live.client() as client:
        csrf = login(client)
        out = client.post("/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert "modelshift_session" not in client.cookies
        response = client.post("/apps/claims/rollback", data={"csrf": csrf})
    assert response.status_code == 401


@pytest.fixture
def readonly(settings: Settings, fleet: object) -> Iterator[str]:
    """The dashboard with no operator token configured."""
    with (
        open_dashboard(settings.model_copy(update={"dashboard_token": None})) as dash,
        running_dashboard(dash) as url,
    ):
        yield url


def test_without_a_configured_token_actions_are_disabled_with_a_403(readonly: str) -> None:
    with httpx.Client(base_url=readonly, timeout=30) as client:
        page = client.get("/")
        login_page = client.post("/login", data={"operator": "dana", "token": "anything"})
        action = client.post(
            "/apps/claims/rollback", headers={"authorization": "Bearer x", "x-modelshift-operator": "dana"}
        )
    assert page.status_code == 200
    assert "read-only" in page.text
    assert login_page.status_code == 403
    assert action.status_code == 403
    assert "MODELSHIFT_DASHBOARD_TOKEN" in action.json()["error"]["message"]
