"""PrefectEventDispatcher against httpx.MockTransport (exact event body), and the in-process dispatcher."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from notice_payloads import common, properties

from modelshift.errors import AuthError, BadRequestError, ModelshiftError
from modelshift.notices import (
    DispatchError,
    InProcessDispatcher,
    Notice,
    PrefectEventDispatcher,
    parse_notice,
)
from modelshift.notices.model import NOTICE_NAMESPACE

NOW = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
MULTI = (
    "<p>gpt-35-turbo 0613 and GPT-4 version 0125-Preview will be retired on March 31, 2026.</p>"
    "<p>Migrate to gpt-4.1 (2025-04-14).</p>"
)
NOTICE = parse_notice(common(properties(communication=MULTI, title="Azure OpenAI retirements")))


def _dispatcher(handler: httpx.MockTransport, auth: httpx.Auth | None = None) -> PrefectEventDispatcher:
    return PrefectEventDispatcher(
        "http://prefect.test/api/", httpx.Client(transport=handler), auth, clock=lambda: NOW
    )


def test_posts_the_exact_event() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    _dispatcher(httpx.MockTransport(handler), httpx.BasicAuth("admin", "pw")).dispatch(NOTICE)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://prefect.test/api/events"
    assert request.headers["authorization"].startswith("Basic ")
    body = json.loads(request.content)
    expected_id = str(uuid.uuid5(NOTICE_NAMESPACE, "4L7Q-9RZ|Active|638712345678901234"))
    assert body == [
        {
            "id": expected_id,
            "occurred": "2026-01-06T09:00:00+00:00",
            "event": "modelshift.azure.notice.received",
            "resource": {
                "prefect.resource.id": "modelshift.notice.4L7Q-9RZ",
                "prefect.resource.name": "Azure OpenAI retirements",
                "modelshift.notice.stage": "Active",
                "modelshift.notice.incident-type": "ActionRequired",
            },
            "related": [
                {
                    "prefect.resource.id": "modelshift.model.gpt-35-turbo@0613",
                    "prefect.resource.role": "model",
                    "prefect.resource.name": "gpt-35-turbo",
                },
                {
                    "prefect.resource.id": "modelshift.model.gpt-4@0125-Preview",
                    "prefect.resource.role": "model",
                    "prefect.resource.name": "gpt-4",
                },
                {
                    "prefect.resource.id": "modelshift.model.gpt-4.1@2025-04-14",
                    "prefect.resource.role": "replacement-model",
                    "prefect.resource.name": "gpt-4.1",
                },
            ],
            "payload": {
                "notice_id": expected_id,
                "key": "4L7Q-9RZ|Active|638712345678901234",
                "tracking_id": "4L7Q-9RZ",
                "incident_type": "ActionRequired",
                "stage": "Active",
                "title": "Azure OpenAI retirements",
                "services": ["Azure OpenAI Service"],
                "regions": ["East US", "Sweden Central"],
                "communication_id": "638712345678901234",
                "event_time": "2025-04-15T18:20:36.256000+00:00",
                "impact_start": "2026-01-05T17:00:00+00:00",
                "models": [
                    {
                        "name": "gpt-35-turbo",
                        "version": "0613",
                        "retirement_date": "2026-03-31",
                        "replacement": False,
                    },
                    {
                        "name": "gpt-4",
                        "version": "0125-Preview",
                        "retirement_date": "2026-03-31",
                        "replacement": False,
                    },
                    {
                        "name": "gpt-4.1",
                        "version": "2025-04-14",
                        "retirement_date": None,
                        "replacement": True,
                    },
                ],
                "model_refs": ["gpt-35-turbo@0613", "gpt-4@0125-Preview", "gpt-4.1@2025-04-14"],
                "model_names": ["gpt-35-turbo", "gpt-4", "gpt-4.1"],
                "retirement_dates": ["2026-03-31"],
            },
        }
    ]


def test_event_id_is_the_same_for_every_delivery() -> None:
    ids: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids.append(json.loads(request.content)[0]["id"])
        return httpx.Response(204)

    dispatcher = _dispatcher(httpx.MockTransport(handler))
    dispatcher.dispatch(parse_notice(common()))
    dispatcher.dispatch(parse_notice(common()))
    dispatcher.dispatch(parse_notice(common(properties(stage="Resolved"))))
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (200, None, ""),
        (204, None, ""),
        (401, AuthError, "PREFECT_API_AUTH_STRING"),
        (403, AuthError, "PREFECT_API_KEY"),
        (422, BadRequestError, "modelshift bug"),
        (404, DispatchError, "404"),
        (429, DispatchError, "429"),
        (500, DispatchError, "Azure will resend"),
        (503, DispatchError, "503"),
    ],
)
def test_status_codes(status: int, error: type[ModelshiftError] | None, words: str) -> None:
    dispatcher = _dispatcher(httpx.MockTransport(lambda r: httpx.Response(status, text="nope")))
    if error is None:
        dispatcher.dispatch(NOTICE)
        return
    with pytest.raises(error, match=words) as caught:
        dispatcher.dispatch(NOTICE)
    assert "http://prefect.test/api/events" in str(caught.value)


def test_unreachable_server_is_a_dispatch_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(DispatchError, match="PREFECT_API_URL"):
        _dispatcher(httpx.MockTransport(handler)).dispatch(NOTICE)


def test_in_process_runs_the_callback_in_the_background() -> None:
    release = threading.Event()
    got: list[tuple[str, str]] = []

    def scan(notice: Notice) -> None:
        release.wait(10)
        got.append((notice.tracking_id or "", threading.current_thread().name))

    dispatcher = InProcessDispatcher(scan)
    dispatcher.dispatch(NOTICE)  # returns at once, while the scan is blocked
    assert got == []
    release.set()
    assert dispatcher.wait(10)
    assert got[0][0] == "4L7Q-9RZ"
    assert got[0][1].startswith("modelshift-notice")
    dispatcher.close()


def test_in_process_callback_failure_is_contained_and_next_runs(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[str] = []

    def scan(notice: Notice) -> None:
        runs.append(notice.key)
        if len(runs) == 1:
            raise RuntimeError("scan crashed")

    dispatcher = InProcessDispatcher(scan)
    dispatcher.dispatch(NOTICE)
    dispatcher.dispatch(NOTICE)
    assert dispatcher.wait(10)
    assert len(runs) == 2
    assert "scan crashed" in caplog.text
    dispatcher.close()


def test_in_process_after_close_is_a_dispatch_error() -> None:
    dispatcher = InProcessDispatcher(lambda n: None)
    dispatcher.close()
    with pytest.raises(DispatchError, match="restart the receiver"):
        dispatcher.dispatch(NOTICE)
