"""The emulator's data plane over real HTTP: auth, 404/410/423/429, faults, chat, embeddings, models, v1."""

from __future__ import annotations

import math

import httpx
import pytest
from emulator_helpers import DATA_VERSION, chat_url, contract, rag_messages

from modelshift.emulator.testing import EmulatorHandle

CONTEXT = (
    "[kb-1] Backups run every night at 02:00 UTC. They are kept for 30 days.\n\n[kb-2] The VPN needs MFA."
)
MESSAGES = rag_messages(CONTEXT, "When do backups run?")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"api-key": "wrong"}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"api-key": "emulator-key"}, 200),
        ({"Authorization": "Bearer emulator-token"}, 200),
    ],
)
def test_data_plane_auth(emu: EmulatorHandle, headers: dict[str, str], status: int) -> None:
    r = httpx.post(
        chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"),
        params={"api-version": DATA_VERSION},
        headers=headers,
        json={"messages": MESSAGES},
    )
    assert r.status_code == status
    if status == 401:
        assert r.json()["error"]["code"] == "401"


@pytest.mark.parametrize(
    ("params", "status"),
    [({}, 400), ({"api-version": "2000-01-01"}, 404), ({"api-version": "2024-10-21"}, 200)],
)
def test_data_plane_api_version(emu: EmulatorHandle, params: dict[str, str], status: int) -> None:
    r = httpx.post(
        chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"),
        params=params,
        headers={"api-key": emu.api_key},
        json={"messages": MESSAGES},
    )
    assert r.status_code == status


def test_chat_answers_from_context_with_usage(emu: EmulatorHandle, data: httpx.Client) -> None:
    r = data.post(chat_url(emu, "contoso-aoai-eus", "support-chat-4o"), json={"messages": MESSAGES})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-2024-05-13"
    assert "02:00" in body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert r.headers["x-modelshift-emulator"] == "1"
    assert int(r.headers["x-ratelimit-remaining-requests"]) >= 0
    assert int(r.headers["x-ratelimit-remaining-tokens"]) >= 0


def test_v1_surface(emu: EmulatorHandle) -> None:
    base = emu.endpoint_for("contoso-aoai-eus") + "openai/v1/"
    # the v1 surface takes the api-key as a bearer too (as the openai SDK sends it); the classic one does not
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {emu.api_key}"}) as sdk_style:
        assert sdk_style.post(
            "chat/completions", json={"model": "faq-4o-mini", "messages": MESSAGES}
        ).is_success
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer wrong"}) as bad:
        assert (
            bad.post("chat/completions", json={"model": "faq-4o-mini", "messages": MESSAGES}).status_code
            == 401
        )
    classic = httpx.post(
        chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"),
        params={"api-version": DATA_VERSION},
        headers={"Authorization": f"Bearer {emu.api_key}"},
        json={"messages": MESSAGES},
    )
    assert classic.status_code == 401
    with httpx.Client(base_url=base, headers={"api-key": emu.api_key}) as client:
        r = client.post("chat/completions", json={"model": "faq-4o-mini", "messages": MESSAGES})
        assert r.status_code == 200 and "02:00" in r.json()["choices"][0]["message"]["content"]
        assert client.post("chat/completions", json={"messages": MESSAGES}).status_code == 400
        r = client.post("embeddings", json={"model": "support-embed", "input": ["a b c"]})
        assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 1536
        ids = [m["id"] for m in client.get("models").json()["data"]]
        assert "faq-4o-mini" in ids and "gpt-4o-2024-11-20" in ids


@pytest.mark.parametrize(
    ("account", "deployment", "status", "code"),
    [
        ("contoso-aoai-eus", "no-such-deployment", 404, "DeploymentNotFound"),
        ("no-such-account", "support-chat-4o", 404, "404"),
        ("tailspin-ai-eus2", "legacy-35-0613", 410, "ModelDeprecated"),
        ("contoso-aoai-eus", "support-embed", 400, "OperationNotSupported"),
    ],
)
def test_inference_errors(
    emu: EmulatorHandle, data: httpx.Client, account: str, deployment: str, status: int, code: str
) -> None:
    r = data.post(chat_url(emu, account, deployment), json={"messages": MESSAGES})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


def test_error_bodies_match_observed_contract(emu: EmulatorHandle, data: httpx.Client) -> None:
    observed = contract("aoai-inference-errors.observed.json")
    r = data.post(chat_url(emu, "tailspin-ai-eus2", "legacy-35-0613"), json={"messages": MESSAGES})
    assert r.json() == observed["retired_model_deployment"]["body"]
    r = data.post(chat_url(emu, "contoso-aoai-eus", "nope"), json={"messages": MESSAGES})
    assert r.json() == observed["deployment_not_found"]["body"]


@pytest.mark.parametrize(
    ("advance_days", "status"),
    [(25, 200), (26, 410), (40, 410)],  # gpt-4o 2024-05-13 retires 2026-02-10, 26 days after the start
)
def test_410_after_clock_passes_retirement(
    emu: EmulatorHandle, data: httpx.Client, advance_days: int, status: int
) -> None:
    emu.advance_clock(advance_days * 86400)
    r = data.post(chat_url(emu, "contoso-aoai-eus", "support-chat-4o"), json={"messages": MESSAGES})
    assert r.status_code == status


@pytest.mark.parametrize(("advance_days", "status"), [(43, 200), (44, 410)])
def test_sku_deprecation_date_retires_earlier(
    emu: EmulatorHandle, data: httpx.Client, advance_days: int, status: int
) -> None:
    # gpt-35-turbo 0125 retires 2026-03-31, but its Standard SKU already on 2026-02-28 (44 days in)
    emu.advance_clock(advance_days * 86400)
    r = data.post(chat_url(emu, "northwind-aoai-weu", "hr-35t"), json={"messages": MESSAGES})
    assert r.status_code == status


def test_paused_deployment_answers_423(emu: EmulatorHandle, arm: httpx.Client, data: httpx.Client) -> None:
    from emulator_helpers import account_path

    arm.post(account_path("rg-support", "contoso-aoai-eus") + "/deployments/faq-4o-mini/pause")
    r = data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": MESSAGES})
    assert r.status_code == 423
    arm.post(account_path("rg-support", "contoso-aoai-eus") + "/deployments/faq-4o-mini/resume")
    assert data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": MESSAGES}).is_success


def test_deployment_not_ready_is_404_until_provisioned(
    emu: EmulatorHandle, arm: httpx.Client, data: httpx.Client
) -> None:
    from emulator_helpers import account_path

    body = {"sku": {"name": "GlobalStandard", "capacity": 5}, "properties": {"model": {"name": "gpt-4o"}}}
    arm.put(account_path("rg-support", "contoso-aoai-eus") + "/deployments/fresh", json=body)
    assert (
        data.post(chat_url(emu, "contoso-aoai-eus", "fresh"), json={"messages": MESSAGES}).status_code == 404
    )
    emu.advance_clock(5)
    r = data.post(chat_url(emu, "contoso-aoai-eus", "fresh"), json={"messages": MESSAGES})
    assert r.status_code == 200 and r.json()["model"] == "gpt-4o-2024-11-20"


def test_429_with_headers_under_load(emu: EmulatorHandle, arm: httpx.Client, data: httpx.Client) -> None:
    from emulator_helpers import account_path

    # capacity 2 -> 2000 TPM, 12 RPM -> 2 requests per 10 s window
    body = {"sku": {"name": "GlobalStandard", "capacity": 2}, "properties": {"model": {"name": "gpt-4o"}}}
    arm.put(account_path("rg-support", "contoso-aoai-eus") + "/deployments/tiny", json=body)
    emu.advance_clock(5)
    statuses = []
    throttled = None
    for _ in range(6):  # bounded
        r = data.post(
            chat_url(emu, "contoso-aoai-eus", "tiny"), json={"messages": MESSAGES, "max_tokens": 50}
        )
        statuses.append(r.status_code)
        if r.status_code == 429:
            throttled = r
            break
    assert statuses[:2] == [200, 200]
    assert throttled is not None
    assert throttled.json()["error"]["code"] == "429"
    ms = int(throttled.headers["retry-after-ms"])
    assert 0 < ms <= 10_000
    assert int(throttled.headers["retry-after"]) == max(1, math.ceil(ms / 1000))
    assert throttled.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-remaining-tokens" in throttled.headers


def test_429_on_tokens_per_minute(emu: EmulatorHandle, arm: httpx.Client, data: httpx.Client) -> None:
    from emulator_helpers import account_path

    body = {"sku": {"name": "GlobalStandard", "capacity": 1}, "properties": {"model": {"name": "gpt-4o"}}}
    arm.put(account_path("rg-support", "contoso-aoai-eus") + "/deployments/tpm", json=body)
    emu.advance_clock(5)
    # max_tokens counts toward the estimate as on Azure: 1000 TPM cannot admit 1001 tokens
    r = data.post(chat_url(emu, "contoso-aoai-eus", "tpm"), json={"messages": MESSAGES, "max_tokens": 1000})
    assert r.status_code == 429
    assert float(r.headers["retry-after-ms"]) > 0


@pytest.mark.parametrize(("fault", "status"), [({"rate_500": 1.0}, 500), ({"rate_503": 1.0}, 503)])
def test_runtime_fault_injection(
    emu: EmulatorHandle, data: httpx.Client, fault: dict[str, float], status: int
) -> None:
    emu.inject_faults("contoso-aoai-eus", "faq-4o-mini", **fault)
    r = data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": MESSAGES})
    assert r.status_code == status
    emu.clear_faults("contoso-aoai-eus", "faq-4o-mini")
    assert data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": MESSAGES}).is_success


def test_connection_reset_fault(emu: EmulatorHandle, data: httpx.Client) -> None:
    emu.inject_faults("contoso-aoai-eus", "faq-4o-mini", reset_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": MESSAGES})


def test_timeout_fault(emu: EmulatorHandle) -> None:
    emu.inject_faults("contoso-aoai-eus", "faq-4o-mini", timeout_rate=1.0, timeout_seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"),
            params={"api-version": DATA_VERSION},
            headers={"api-key": emu.api_key},
            json={"messages": MESSAGES},
            timeout=0.3,
        )


def test_partial_fault_rate_is_deterministic(emu: EmulatorHandle, data: httpx.Client) -> None:
    def run() -> list[int]:
        emu.reset()
        emu.configure(latency_scale=0.0)
        emu.inject_faults("contoso-aoai-eus", "faq-4o-mini", rate_503=0.5)
        return [
            data.post(
                chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": MESSAGES}
            ).status_code
            for _ in range(20)
        ]

    first = run()
    assert first == run()
    assert 3 <= first.count(503) <= 17


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": []},
        {"messages": "hi"},
        {"messages": MESSAGES, "max_tokens": 0},
        {"messages": MESSAGES, "stream": True},
    ],
)
def test_chat_bad_requests(emu: EmulatorHandle, data: httpx.Client, body: dict[str, object]) -> None:
    r = data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"


def test_embeddings(emu: EmulatorHandle, data: httpx.Client) -> None:
    url = emu.endpoint_for("contoso-aoai-eus") + "openai/deployments/support-embed/embeddings"
    r = data.post(
        url, json={"input": ["nightly backups at 2am", "backups run every night", "VPN requires MFA"]}
    )
    assert r.status_code == 200
    vecs = [d["embedding"] for d in r.json()["data"]]
    assert all(len(v) == 1536 for v in vecs)
    cos = [sum(a * b for a, b in zip(vecs[0], v, strict=True)) for v in vecs]
    assert math.isclose(cos[0], 1.0, rel_tol=1e-6)
    assert cos[1] > cos[2]
    assert r.json()["usage"]["prompt_tokens"] > 0
    small = data.post(url, json={"input": "x", "dimensions": 256}).json()
    assert len(small["data"][0]["embedding"]) == 256
    assert data.post(url, json={"input": 3}).status_code == 400
    chat = emu.endpoint_for("contoso-aoai-eus") + "openai/deployments/faq-4o-mini/embeddings"
    assert data.post(chat, json={"input": "x"}).json()["error"]["code"] == "OperationNotSupported"


def test_models_list_and_get(emu: EmulatorHandle, data: httpx.Client) -> None:
    base = emu.endpoint_for("fabrikam-aoai-swc") + "openai/models"
    listed = data.get(base).json()
    example = contract("aoai-models-list.2024-10-21.json")["responses"]["200"]["body"]
    assert set(listed) == set(example)
    example_model = example["data"][0]
    by_id = {m["id"]: m for m in listed["data"]}
    old = by_id["gpt-4o-2024-05-13"]
    assert set(old) >= set(example_model)
    assert old["lifecycle_status"] == "generally-available"
    assert isinstance(old["deprecation"]["inference"], int) and isinstance(old["created_at"], int)
    ft = by_id["gpt-4o-mini-2024-07-18.ft-7c1f0e5a9b2d4c3e8f6a1b0c9d8e7f60"]
    assert ft["model"] == "gpt-4o-mini-2024-07-18" and "fine_tune" not in ft["deprecation"]
    got = data.get(f"{base}/gpt-4o-2024-11-20")
    assert got.status_code == 200 and got.json()["id"] == "gpt-4o-2024-11-20"
    assert data.get(f"{base}/nope").status_code == 404


def test_fine_tuned_deployment_answers(emu: EmulatorHandle, data: httpx.Client) -> None:
    r = data.post(chat_url(emu, "fabrikam-aoai-swc", "claims-ft"), json={"messages": MESSAGES})
    assert r.status_code == 200
    assert r.json()["model"].startswith("gpt-4o-mini-2024-07-18.ft-")


def test_latency_is_really_slept(emu: EmulatorHandle, data: httpx.Client) -> None:
    emu.configure(latency_scale=0.5)  # DeepSeek-like slow profiles would be slower; gpt-4o-mini median 250 ms
    r = data.post(chat_url(emu, "contoso-aoai-eus", "faq-4o-mini"), json={"messages": MESSAGES})
    emulated = float(r.headers["x-modelshift-emulated-latency-ms"])
    assert r.elapsed.total_seconds() * 1000 >= emulated * 0.5 * 0.9
