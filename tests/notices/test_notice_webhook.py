"""The webhook through a real uvicorn server on a loopback port: auth, sizes, bodies, dedupe, retry, races."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import SECRET, RecordingDispatcher, RunningServer, SetClock, settings_with
from notice_payloads import common, dumps, legacy, load, properties

from modelshift.audit import Reason
from modelshift.errors import ConfigError
from modelshift.notices import NoticeStatus, parse_notice
from modelshift.notices.store import StoreNoticeLog
from modelshift.notices.webhook import MAX_BODY_BYTES, create_app
from modelshift.store import Store

Serve = Callable[[RecordingDispatcher], RunningServer]
RETIREMENT = dumps(common())
JSON = {"content-type": "application/json"}


@pytest.fixture
def server(serve: Serve) -> RunningServer:
    """A webhook whose dispatcher records calls."""
    return serve(RecordingDispatcher())


def post(
    server: RunningServer, body: bytes | Iterator[bytes], token: str | None = SECRET, **headers: str
) -> httpx.Response:
    return httpx.post(server.notices_url(token), content=body, headers=JSON | headers, timeout=30)


def test_healthz(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),
        ("", 401),
        ("wrong", 401),
        (SECRET[:-1], 401),
        (SECRET + "x", 401),
        (SECRET.upper(), 401),
        (SECRET, 202),
    ],
)
def test_token(server: RunningServer, token: str | None, status: int) -> None:
    response = post(server, RETIREMENT, token=token)
    assert response.status_code == status
    assert len(server.dispatcher.calls) == (1 if status == 202 else 0)


def _padded(size: int) -> bytes:
    # a valid retirement notice padded with JSON whitespace to exactly ``size`` bytes
    return RETIREMENT + b" " * (size - len(RETIREMENT))


@pytest.mark.parametrize(
    ("size", "status"), [(MAX_BODY_BYTES - 1, 202), (MAX_BODY_BYTES, 202), (MAX_BODY_BYTES + 1, 413)]
)
def test_size_limit(server: RunningServer, size: int, status: int) -> None:
    response = post(server, _padded(size))
    assert response.status_code == status
    if status == 413:
        assert response.json()["error"] == "too_large"
        assert server.dispatcher.calls == []


@pytest.mark.parametrize(
    ("size", "status"), [(MAX_BODY_BYTES, 202), (MAX_BODY_BYTES + 1, 413), (MAX_BODY_BYTES * 3, 413)]
)
def test_size_limit_chunked(server: RunningServer, size: int, status: int) -> None:
    body = _padded(size)

    def chunks() -> Iterator[bytes]:  # a generator body goes out chunked, without Content-Length
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    try:
        response = post(server, chunks())
    except httpx.WriteError:  # the server may close while an oversized body is still being sent
        assert status == 413
        assert server.dispatcher.calls == []
        return
    assert response.status_code == status
    assert len(server.dispatcher.calls) == (1 if status == 202 else 0)


def test_declared_length_over_limit_is_refused_unread(server: RunningServer) -> None:
    # a raw socket: httpx will not send a Content-Length that its body does not match
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST /notices/azure?token={SECRET} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"{}")  # far less than declared: the server must not wait for the rest
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert server.dispatcher.calls == []


BAD_BODIES = [
    ("not json", b"<xml/>", "not_json"),
    ("empty", b"", "not_json"),
    ("truncated", RETIREMENT[:-10], "not_json"),
    ("array", b"[1,2]", "wrong_type"),
    ("unknown schema", dumps({"schemaId": "Microsoft.EventGrid", "data": {}}), "unknown_schema"),
    ("no schema", dumps({"data": {}}), "missing_field"),
    ("missing tracking id", dumps(common(properties(trackingId=None))), "missing_field"),
    ("wrong type", dumps(common(properties(title=7))), "wrong_type"),
]


@pytest.mark.parametrize(("label", "body", "error"), BAD_BODIES, ids=[r[0] for r in BAD_BODIES])
def test_bad_bodies_are_400_with_the_reason(
    server: RunningServer, label: str, body: bytes, error: str
) -> None:
    response = post(server, body)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["detail"]
    assert server.dispatcher.calls == []


IGNORED = [
    (
        "vm incident (legacy sample)",
        load("servicehealth-alert-webhook.activitylog-legacy-schema.json"),
        "unrelated",
    ),
    (
        "test action (common sample)",
        load("servicehealth-alert-webhook.common-schema.test-action.json"),
        "unrelated",
    ),
    ("resource health", load("resourcehealth-alert.common-schema.test-action.json"), "unrelated"),
    ("metric alert", load("common-alert-schema.metric-sample.json"), "unrelated"),
    ("aoai incident", common(properties(incidentType="Incident")), "azure_openai_other"),
    ("aoai resolved", legacy(properties(stage="Resolved")), "azure_openai_other"),
]


@pytest.mark.parametrize(("label", "payload", "kind"), IGNORED, ids=[r[0] for r in IGNORED])
def test_other_notices_are_ignored(
    server: RunningServer, label: str, payload: dict[str, Any], kind: str
) -> None:
    response = post(server, dumps(payload))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert response.json()["kind"] == kind
    assert response.json()["reason"]
    assert server.dispatcher.calls == []


def test_accept_then_duplicate(server: RunningServer, sqlite_store: Store) -> None:
    first = post(server, RETIREMENT)
    notice = parse_notice(RETIREMENT)
    assert first.status_code == 202
    assert first.json()["status"] == "accepted"
    assert first.json()["notice_id"] == notice.notice_id
    assert first.json()["models"] == ["gpt-4o@2024-05-13"]
    # the same notice again, and in the other schema: same key, nothing dispatched
    for body in (RETIREMENT, dumps(legacy())):
        again = post(server, body)
        assert (again.status_code, again.json()) == (
            200,
            {"status": "duplicate", "notice_id": notice.notice_id},
        )
    assert [n.key for n in server.dispatcher.calls] == [notice.key]
    assert [e.reason for e in sqlite_store.audit_events()] == [Reason.NOTICE_RECEIVED]
    # a new stage of the same tracking id is a new notice
    assert post(server, dumps(common(properties(communicationId="638712345678909999")))).status_code == 202


def test_event_grid_handshake(server: RunningServer) -> None:
    body = json.dumps(
        [
            {
                "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
                "topic": "/subscriptions/x",
                "subject": "",
                "data": {
                    "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                    "validationUrl": "https://x",
                },
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "eventTime": "2026-01-06T09:00:00Z",
                "dataVersion": "1",
            }
        ]
    ).encode()
    ok = post(server, body, **{"aeg-event-type": "SubscriptionValidation"})
    assert (ok.status_code, ok.json()) == (
        200,
        {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
    )
    assert (
        post(server, body, token="wrong", **{"aeg-event-type": "SubscriptionValidation"}).status_code == 401
    )
    broken = post(server, b'[{"eventType": "Other"}]', **{"aeg-event-type": "SubscriptionValidation"})
    assert broken.status_code == 400
    assert broken.json()["error"] == "bad_validation_event"


def test_dispatch_failure_then_retry_dispatches(serve: Serve, sqlite_store: Store, clock: SetClock) -> None:
    server = serve(RecordingDispatcher(fail_times=2))
    key = parse_notice(RETIREMENT).key
    for attempt in (1, 2):
        failed = post(server, RETIREMENT)
        assert failed.status_code == 503
        assert failed.headers["retry-after"] == "30"
        assert failed.json()["status"] == "dispatch_failed"
        assert server.log.status(key) == (NoticeStatus.FAILED, attempt)
    accepted = post(server, RETIREMENT)  # Azure's retry
    assert accepted.status_code == 202
    assert server.log.status(key) == (NoticeStatus.DISPATCHED, 3)
    assert post(server, RETIREMENT).json()["status"] == "duplicate"
    assert len(server.dispatcher.calls) == 1
    assert len(sqlite_store.audit_events()) == 1


def test_concurrent_deliveries_dispatch_once(serve: Serve) -> None:
    server = serve(RecordingDispatcher(delay=0.3))
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        response = post(server, RETIREMENT)
        with lock:
            results.append((response.status_code, response.json()["status"]))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [(200, "duplicate")] * 7 + [(202, "accepted")]
    assert len(server.dispatcher.calls) == 1


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_refuses_to_start_without_a_secret(sqlite_store: Store, clock: SetClock, secret: str | None) -> None:
    with pytest.raises(ConfigError, match="MODELSHIFT_WEBHOOK_SECRET"):
        create_app(
            settings_with(secret), StoreNoticeLog(sqlite_store, clock=clock), RecordingDispatcher(), clock
        )
