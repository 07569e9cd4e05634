"""The gateway through a real uvicorn server on a loopback port, against the emulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from modelshift.audit import Reason
from modelshift.emulator.testing import EmulatorHandle
from modelshift.gateway import observe
from modelshift.store import Store
from tests.gateway.conftest import LiveGateway
from tests.gateway.gateway_helpers import QUESTION, MovableClock, adopt, start_canary, write_bundle

pytestmark = pytest.mark.slow


def _chat(client: httpx.Client, app: str, **body: object) -> httpx.Response:
    return client.post(f"/apps/{app}/chat", json={"question": QUESTION, **body})


def _two_bundles(tmp_path: Path, store: Store, weight: int, lease: datetime | None = None) -> tuple[str, str]:
    prod = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
    canary = write_bundle(tmp_path, "shop", "2.0.0", "blue", "faq-4o-mini")
    adopt(store, prod)
    start_canary(store, canary, weight, lease_expires_at=lease)
    return prod.digest, canary.digest


def test_chat_answers_with_the_bundle_headers_and_its_own_prompt(
    live: LiveGateway, store: Store, tmp_path: Path
) -> None:
    prod = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
    adopt(store, prod)
    with httpx.Client(base_url=live.url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        response = _chat(client, "shop", user="alice")
    assert response.status_code == 200, response.text
    assert response.headers["x-modelshift-bundle"] == "shop@1.0.0"
    assert response.headers["x-modelshift-digest"] == prod.digest
    body = response.json()
    assert "red" in body["answer"]
    assert body["bundle"] == {"app": "shop", "version": "1.0.0", "digest": prod.digest}
    assert body["request_id"] == response.headers["x-modelshift-request-id"]
    assert body["usage"]["prompt_tokens"] > 0


def test_sticky_routing_splits_by_weight_and_never_mixes_bundles(
    live: LiveGateway, store: Store, tmp_path: Path
) -> None:
    prod, canary = _two_bundles(tmp_path, store, 25)
    colour = {prod: "red", canary: "blue"}
    seen: dict[str, str] = {}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for i in range(120):
            response = _chat(client, "shop", session_id=f"s-{i}")
            assert response.status_code == 200, response.text
            digest = response.headers["x-modelshift-digest"]
            # the prompt that went out is the routed bundle's own (never the other one's)
            assert colour[digest] in response.json()["answer"]
            seen[f"s-{i}"] = digest
        share = Counter(seen.values())[canary] / len(seen)
        assert 0.15 <= share <= 0.35, share  # (1000 keys: see test_gateway_routing)
        for session in list(seen)[:20]:  # the same session stays on the same bundle
            again = _chat(client, "shop", session_id=session)
            assert again.headers["x-modelshift-digest"] == seen[session]
    assert live.gateway.runtimes.builds == 2  # one runtime per digest, built on first use, then reused


def test_each_bundle_calls_its_own_deployment(
    live: LiveGateway, store: Store, tmp_path: Path, emulator: EmulatorHandle
) -> None:
    prod, canary = _two_bundles(tmp_path, store, 50)
    emu = emulator
    emu.inject_faults("contoso-aoai-eus", "faq-4o-mini", rate_503=1.0)
    try:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            statuses = {
                r.headers["x-modelshift-digest"]: r.status_code
                for r in (_chat(client, "shop", user=f"u{i}") for i in range(40))
            }
    finally:
        emu.clear_faults("contoso-aoai-eus", "faq-4o-mini")
    assert statuses == {prod: 200, canary: 502}


def test_lapsed_lease_serves_production_reverts_the_router_and_audits_once(
    live: LiveGateway, store: Store, tmp_path: Path, clock: MovableClock
) -> None:
    prod, canary = _two_bundles(tmp_path, store, 50, lease=clock.now + timedelta(seconds=60))
    before = store.get_router("shop")
    with httpx.Client(base_url=live.url, timeout=30) as client:
        live_digests = {_chat(client, "shop", user=f"u{i}").headers["x-modelshift-digest"] for i in range(30)}
        assert live_digests == {prod, canary}  # lease still valid: both serve
        clock.advance(61)
        lapsed = [_chat(client, "shop", user=f"u{i}") for i in range(60)]
    assert {r.headers["x-modelshift-digest"] for r in lapsed} == {prod}
    assert all(r.status_code == 200 for r in lapsed)
    after = store.get_router("shop")
    assert after.weights == {prod: 100}
    assert after.revision == before.revision + 1
    assert after.lease_expires_at is None
    events = [e for e in store.audit_events() if e.reason == Reason.ROUTER_LEASE_EXPIRED]
    assert len(events) == 1
    assert events[0].data["weights"] == {prod: 50, canary: 50}
    assert events[0].data["production_digest"] == prod
    assert store.verify_audit().ok


def test_requests_are_recorded_in_batches_and_observable_per_digest(
    live: LiveGateway, store: Store, tmp_path: Path, clock: MovableClock
) -> None:
    _two_bundles(tmp_path, store, 50)
    since = clock.now
    with httpx.Client(base_url=live.url, timeout=30) as client:
        served = Counter(
            _chat(client, "shop", user=f"u{i}").headers["x-modelshift-digest"] for i in range(60)
        )
    assert live.gateway.writer.flush()
    windows = observe(store, "shop", since, clock.advance(1))
    assert {d: w.requests for d, w in windows.items()} == dict(served)
    for window in windows.values():
        assert window.errors == 0
        assert len(window.latencies_ms) == window.requests and min(window.latencies_ms) > 0
        assert min(window.tokens_per_request) > 0
    writer = live.gateway.writer
    assert writer.written == 60 and writer.batches < 60  # batched, not one write per request


def test_feedback_attaches_to_the_recorded_request(
    live: LiveGateway, store: Store, tmp_path: Path, clock: MovableClock
) -> None:
    prod = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
    adopt(store, prod)
    since = clock.now
    with httpx.Client(base_url=live.url, timeout=30) as client:
        request_id = _chat(client, "shop", user="alice").json()["request_id"]
        ok = client.post("/apps/shop/feedback", json={"request_id": request_id, "thumbs": "up"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"request_id": request_id, "feedback": 1.0}
        score = client.post("/apps/shop/feedback", json={"request_id": request_id, "score": 0.25})
        assert score.status_code == 200
        unknown = client.post("/apps/shop/feedback", json={"request_id": "nope", "thumbs": "down"})
        assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
        other_app = client.post("/apps/hr/feedback", json={"request_id": request_id, "thumbs": "up"})
        assert other_app.status_code == 404
        for bad in (
            {"request_id": request_id},
            {"request_id": request_id, "score": 2},
            {"thumbs": "up"},
            {"request_id": request_id, "score": "high"},
            {"request_id": request_id, "thumbs": "x"},
        ):
            response = client.post("/apps/shop/feedback", json=bad)
            assert response.status_code == 400, bad
    windows = observe(store, "shop", since, clock.advance(1))
    assert windows[prod.digest].feedback == [0.25]


def test_unknown_app_is_404_naming_it(live: LiveGateway) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = _chat(client, "no-such-app")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "NotFoundError" and "'no-such-app'" in error["message"]
    assert "x-modelshift-digest" not in response.headers


def test_app_without_production_is_503_saying_what_to_run(
    live: LiveGateway, store: Store, tmp_path: Path
) -> None:
    from modelshift.registry import register

    register(store, write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o"), actor="test")
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = _chat(client, "shop")
    assert response.status_code == 503
    assert "modelshift bundle register --adopt" in response.json()["error"]["message"]


def test_retired_model_is_502_with_the_platform_message_and_recorded(
    live: LiveGateway, store: Store, tmp_path: Path, clock: MovableClock
) -> None:
    bundle = write_bundle(tmp_path, "legacy", "1.0.0", "red", "legacy-35-0613")
    adopt(store, bundle)
    since = clock.now
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = _chat(client, "legacy")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "ModelRetiredError"
    assert "retired" in response.json()["error"]["message"].lower()
    assert response.headers["x-modelshift-digest"] == bundle.digest  # the bundle that failed is named
    assert live.gateway.writer.flush()
    window = observe(store, "legacy", since, clock.advance(1))[bundle.digest]
    assert (window.requests, window.errors, window.error_classes) == (1, 1, {"ModelRetiredError": 1})


def test_throttling_passes_retry_after_through(live: LiveGateway, store: Store, tmp_path: Path) -> None:
    adopt(store, write_bundle(tmp_path, "hr", "1.0.0", "red", "hr-35t"))  # 1 request per 10 s window
    with httpx.Client(base_url=live.url, timeout=30) as client:
        responses = [_chat(client, "hr", user="u") for _ in range(3)]
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled, [r.status_code for r in responses]
    assert int(throttled[0].headers["retry-after"]) >= 1
    assert int(throttled[0].headers["retry-after-ms"]) > 0
    assert throttled[0].json()["error"]["code"] == "ThrottledError"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'question' must be a non-empty string"),
        ({"question": "   "}, "'question' must be a non-empty string"),
        ({"question": 3}, "'question'"),
        ({"question": "q", "conversation": "hi"}, "'conversation' must be a list"),
        ({"question": "q", "conversation": [{"role": "robot", "content": "x"}]}, "conversation[0]"),
        ({"question": "q", "user": 5}, "'user' must be a string"),
    ],
)
def test_bad_chat_bodies_are_400(live: LiveGateway, body: dict[str, object], message: str) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = client.post("/apps/shop/chat", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_invalid_json_is_400(live: LiveGateway) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = client.post(
            "/apps/shop/chat", content=b"{not json", headers={"content-type": "application/json"}
        )
        array = client.post("/apps/shop/chat", json=["q"])
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]
    assert array.status_code == 400 and "JSON object" in array.json()["error"]["message"]


def test_azure_compatible_endpoint_takes_the_openai_sdk_request_shape(
    live: LiveGateway, store: Store, tmp_path: Path
) -> None:
    prod, canary = _two_bundles(tmp_path, store, 50)
    # what openai.AzureOpenAI(azure_endpoint=gateway, api_version=...).chat.completions.create() sends
    headers = {
        "api-key": "anything",
        "content-type": "application/json",
        "user-agent": "AzureOpenAI/Python 1.0",
    }
    body = {
        "messages": [
            {"role": "system", "content": "You are the app's old prompt; the bundle's replaces it."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        ],
        "model": "shop",
        "temperature": 0.7,
        "user": "carol",
    }
    url = "/openai/deployments/shop/chat/completions"
    with httpx.Client(base_url=live.url, timeout=30) as client:
        first = client.post(url, params={"api-version": "2024-10-21"}, headers=headers, json=body)
        again = client.post(url, params={"api-version": "2024-10-21"}, headers=headers, json=body)
        by_header = client.post(
            url,
            params={"api-version": "2024-10-21"},
            headers={**headers, "x-modelshift-session-id": "sess-9"},
            json={**body, "user": None},
        )
        no_user = client.post(
            url, params={"api-version": "2024-10-21"}, json={"messages": [{"role": "system", "content": "x"}]}
        )
        streamed = client.post(url, params={"api-version": "2024-10-21"}, json={**body, "stream": True})
    assert first.status_code == 200, first.text
    completion = first.json()
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    choice = completion["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"]
    colour = "red" if first.headers["x-modelshift-digest"] == prod else "blue"
    assert colour in choice["message"]["content"]
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert again.headers["x-modelshift-digest"] == first.headers["x-modelshift-digest"]  # sticky by user
    assert by_header.status_code == 200 and by_header.headers["x-modelshift-digest"] in {prod, canary}
    assert no_user.status_code == 400 and "user message" in no_user.json()["error"]["message"]
    assert streamed.status_code == 400 and "stream" in streamed.json()["error"]["message"]


def test_rag_bundle_answers_from_its_own_index_with_sources(
    live: LiveGateway, store: Store, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path, "support", "1.0.0", "red", "support-chat-4o", retrieval=True)
    adopt(store, bundle)
    question = "What's the minimum number of users to buy Enterprise?"
    with httpx.Client(base_url=live.url, timeout=60) as client:
        response = client.post("/apps/support/chat", json={"question": question, "user": "dana"})
    assert response.status_code == 200, response.text
    body = response.json()
    # the chunks came from the bundle's own index generation (built under MODELSHIFT_HOME on first use)
    assert "plans-and-pricing.md" in body["sources"]
    assert body["answer"]


def test_a_bundle_the_gateway_cannot_build_is_500_naming_the_fix_and_not_rebuilt_per_request(
    live: LiveGateway, store: Store, tmp_path: Path, clock: MovableClock
) -> None:
    bundle = write_bundle(tmp_path, "ghost", "1.0.0", "red", "ghost")
    adopt(store, bundle)
    since = clock.now
    with httpx.Client(base_url=live.url, timeout=30) as client:
        responses = [_chat(client, "ghost") for _ in range(3)]
    assert [r.status_code for r in responses] == [500, 500, 500]
    error = responses[0].json()["error"]
    assert error["code"] == "ConfigError" and "no-such-account" in error["message"]
    assert live.gateway.runtimes.builds == 1  # the failure is remembered for a while
    assert live.gateway.writer.flush()
    window = observe(store, "ghost", since, clock.advance(1))[bundle.digest]
    assert (window.requests, window.errors) == (3, 3)


def test_concurrent_requests_all_answer_and_are_all_recorded(
    live: LiveGateway, store: Store, tmp_path: Path, clock: MovableClock
) -> None:
    prod, canary = _two_bundles(tmp_path, store, 50)
    since = clock.now

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
            bodies = [{"question": QUESTION, "user": f"c{i}"} for i in range(80)]
            calls = [client.post("/apps/shop/chat", json=body) for body in bodies]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 80
    colour = {prod: "red", canary: "blue"}
    assert all(colour[r.headers["x-modelshift-digest"]] in r.json()["answer"] for r in responses)
    assert live.gateway.writer.flush()
    windows = observe(store, "shop", since, clock.advance(1))
    assert sum(w.requests for w in windows.values()) == 80


def test_v1_route_takes_the_app_from_the_model_field(live: LiveGateway, store: Store, tmp_path: Path) -> None:
    prod = write_bundle(tmp_path, "shop", "1.0.0", "red", "support-chat-4o")
    adopt(store, prod)
    messages = [{"role": "user", "content": QUESTION}]
    with httpx.Client(base_url=live.url, timeout=30) as client:
        ok = client.post("/openai/v1/chat/completions", json={"model": "shop", "messages": messages})
        missing = client.post("/openai/v1/chat/completions", json={"messages": messages})
        unknown = client.post("/openai/v1/chat/completions", json={"model": "nope", "messages": messages})
    assert ok.status_code == 200, ok.text
    assert ok.headers["x-modelshift-digest"] == prod.digest
    assert "red" in ok.json()["choices"][0]["message"]["content"]
    assert missing.status_code == 400 and "'model' must name the app" in missing.json()["error"]["message"]
    assert unknown.status_code == 404
