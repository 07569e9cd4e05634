"""Property test of the webhook (in-process ASGI via httpx.ASGITransport): malformed, truncated, wrongly
typed and oversized payloads never produce a 5xx and never dispatch anything."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from conftest import SECRET, RecordingDispatcher, SetClock, settings_with
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notice_payloads import common, dumps, legacy

from modelshift.notices.store import StoreNoticeLog
from modelshift.notices.webhook import MAX_BODY_BYTES, create_app
from modelshift.store import Store

VALID = {"common": common(), "legacy": legacy()}
PROPS = {
    "common": ["data", "alertContext", "properties"],
    "legacy": ["data", "context", "activityLog", "properties"],
}
# fields the parser requires, and the JSON types each must NOT have for the mutation to be wrong
OBJECT_PATHS = {
    "common": [["data"], ["data", "essentials"], ["data", "alertContext"], PROPS["common"]],
    "legacy": [["data"], ["data", "context"], ["data", "context", "activityLog"], PROPS["legacy"]],
}
STRING_FIELDS = ["trackingId", "incidentType", "stage", "title"]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
not_object = json_values.filter(lambda v: not isinstance(v, dict))
not_string = json_values.filter(lambda v: not isinstance(v, str))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, RecordingDispatcher]]:
    clock = SetClock()
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'state.db'}", clock=clock)
    dispatcher = RecordingDispatcher()
    yield create_app(settings_with(SECRET), StoreNoticeLog(store, clock=clock), dispatcher, clock), dispatcher
    store.close()


def post(app: FastAPI, body: bytes, *, chunked: bool = False) -> httpx.Response:
    """POST in-process; an exception inside the app becomes a 500 response, as a server would send."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook.test") as http:
            return await http.post(f"/notices/azure?token={SECRET}", content=chunks() if chunked else body)

    return asyncio.run(send())


def _set(payload: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(payload)
    node = mutated
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return mutated


@st.composite
def wrongly_typed(draw: st.DrawFn) -> bytes:
    schema = draw(st.sampled_from(["common", "legacy"]))
    if draw(st.booleans()):
        path = draw(st.sampled_from(OBJECT_PATHS[schema]))
        value = draw(not_object)
    else:
        path = [*PROPS[schema], draw(st.sampled_from(STRING_FIELDS))]
        value = draw(not_string)
    return dumps(_set(VALID[schema], path, value))


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    body = dumps(VALID[draw(st.sampled_from(["common", "legacy"]))])
    return body[: draw(st.integers(0, len(body) - 1))]


@st.composite
def oversized(draw: st.DrawFn) -> bytes:
    body = dumps(VALID[draw(st.sampled_from(["common", "legacy"]))])
    return body + b" " * (MAX_BODY_BYTES + 1 - len(body) + draw(st.integers(0, 4096)))


@st.composite
def bad_unicode(draw: st.DrawFn) -> bytes:
    schema = draw(st.sampled_from(["common", "legacy"]))
    field = draw(st.sampled_from([*STRING_FIELDS, "communication"]))
    text = json.dumps(_set(VALID[schema], [*PROPS[schema], field], "MARK"))
    return text.replace('"MARK"', f'"x\\u{draw(st.integers(0xD800, 0xDFFF)):04x}y"').encode()


bodies = (
    st.binary(max_size=2048)
    | json_values.map(lambda v: json.dumps(v).encode())
    | truncated()
    | wrongly_typed()
    | oversized()
    | bad_unicode()
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, chunked=st.booleans())
def test_malformed_bodies_never_5xx_never_dispatch(
    client: tuple[FastAPI, RecordingDispatcher], body: bytes, chunked: bool
) -> None:
    app, dispatcher = client
    before = dispatcher.attempts
    response = post(app, body, chunked=chunked)
    assert response.status_code < 500, response.text
    assert response.status_code in (400, 413) or response.json()["status"] == "ignored"
    assert dispatcher.attempts == before


def test_a_valid_body_does_dispatch(client: tuple[FastAPI, RecordingDispatcher]) -> None:
    """Guards the property above against passing vacuously (a webhook that dispatches nothing)."""
    app, dispatcher = client
    before = dispatcher.attempts
    assert post(app, dumps(common()), chunked=True).status_code == 202
    assert dispatcher.attempts == before + 1
    assert post(app, dumps(common())).json()["status"] == "duplicate"
