"""A model version that degrades under sustained live load, over real HTTP, and the demo's rate-limit knob.

``degrades_after_requests: N`` + ``degraded``: every deployment of the version counts the chat requests it
served; from request N + 1 on it behaves as ``degraded`` says (errors, latency), so an offline evaluation
passes and a canary sees the damage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import DATA_VERSION, chat_url, rag_messages

from modelshift.emulator.scenario import BehaviourProfile, default_scenario_data, parse_scenario
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.errors import ScenarioError

REPO = Path(__file__).resolve().parents[2]
NANO = "gpt-4.1-nano@2025-04-14"
ACCOUNT = "contoso-aoai-eus"
MESSAGES = rag_messages("[kb-1] Backups run every night at 02:00 UTC.", "When do backups run?")
#: the scenario's latency header is the sampled latency (the emulator sleeps it times latency_scale)
LATENCY = "x-modelshift-emulated-latency-ms"


def _scenario(threshold: int, degraded: dict[str, Any]) -> dict[str, Any]:
    """The default scenario with two deployments of gpt-4.1-nano, which degrades after ``threshold``."""
    data = default_scenario_data()
    profile = dict(data["profiles"][NANO])
    profile.update({"degrades_after_requests": threshold, "degraded": degraded})
    data["profiles"][NANO] = profile
    account = data["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    assert account["name"] == ACCOUNT
    for name in ("nano-a", "nano-b"):
        account["deployments"].append(
            {
                "name": name,
                "model": {"format": "OpenAI", "name": "gpt-4.1-nano", "version": "2025-04-14"},
                "sku": {"name": "GlobalStandard", "capacity": 400},
            }
        )
    return data


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorHandle]:
    """nano-a and nano-b: 5 healthy chat requests each, then every request fails with a 500 and is slow."""
    degraded = {"error_rate": 1.0, "latency": {"median_ms": 90_000, "p95_ms": 95_000}}
    with running_emulator(_scenario(5, degraded), latency_scale=0.0) as handle:
        yield handle


def _chat(emu: EmulatorHandle, client: httpx.Client, deployment: str) -> httpx.Response:
    return client.post(chat_url(emu, ACCOUNT, deployment), json={"messages": MESSAGES})


@pytest.fixture
def data(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    """A data-plane client on a freshly reset emulator (every request counter back at zero)."""
    emu.reset()
    with httpx.Client(
        headers={"api-key": emu.api_key}, params={"api-version": DATA_VERSION}, timeout=10
    ) as c:
        yield c


def test_healthy_until_the_threshold_then_degraded(emu: EmulatorHandle, data: httpx.Client) -> None:
    healthy = [_chat(emu, data, "nano-a") for _ in range(5)]
    assert [r.status_code for r in healthy] == [200] * 5
    assert all(float(r.headers[LATENCY]) < 10_000 for r in healthy)
    assert all(r.json()["choices"][0]["message"]["content"] for r in healthy)
    after = [_chat(emu, data, "nano-a") for _ in range(5)]
    assert [r.status_code for r in after] == [500] * 5
    assert after[0].json()["error"]["code"] == "InternalServerError"


def test_the_count_is_per_deployment_and_a_reset_restarts_it(emu: EmulatorHandle, data: httpx.Client) -> None:
    for _ in range(6):
        _chat(emu, data, "nano-a")
    assert _chat(emu, data, "nano-a").status_code == 500
    # the other deployment of the same model version has served nothing yet: healthy
    assert [_chat(emu, data, "nano-b").status_code for _ in range(5)] == [200] * 5
    emu.reset()
    assert _chat(emu, data, "nano-a").status_code == 200


def test_degraded_latency_without_errors() -> None:
    degraded = {"latency": {"median_ms": 90_000, "p95_ms": 95_000}}
    with (
        running_emulator(_scenario(3, degraded), latency_scale=0.0) as emu,
        httpx.Client(headers={"api-key": emu.api_key}, params={"api-version": DATA_VERSION}, timeout=10) as c,
    ):
        responses = [_chat(emu, c, "nano-a") for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 8
    latencies = [float(r.headers[LATENCY]) for r in responses]
    assert max(latencies[:3]) < 10_000
    assert min(latencies[3:]) > 50_000


def test_rate_limited_requests_are_not_counted_as_served() -> None:
    """A 429 never reached the model, so it does not bring the degradation closer."""
    data = _scenario(2, {"error_rate": 1.0})
    account = data["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    nano = next(d for d in account["deployments"] if d["name"] == "nano-a")
    nano["sku"]["capacity"] = 1  # 6 RPM: one request per 10 s window
    with (
        running_emulator(data, latency_scale=0.0) as emu,
        httpx.Client(headers={"api-key": emu.api_key}, params={"api-version": DATA_VERSION}, timeout=10) as c,
    ):
        statuses = [_chat(emu, c, "nano-a").status_code for _ in range(4)]
    assert statuses == [200, 429, 429, 429]


def test_rate_limit_scale_multiplies_the_limits() -> None:
    data = _scenario(1000, {"error_rate": 1.0})
    account = data["subscriptions"][0]["resource_groups"][0]["accounts"][0]
    nano = next(d for d in account["deployments"] if d["name"] == "nano-a")
    nano["sku"]["capacity"] = 1  # 6 RPM: one request per 10 s window at scale 1
    data["rate_limit_scale"] = 5.0  # 30 RPM: five per window
    with (
        running_emulator(data, latency_scale=0.0) as emu,
        httpx.Client(headers={"api-key": emu.api_key}, params={"api-version": DATA_VERSION}, timeout=10) as c,
    ):
        statuses = [_chat(emu, c, "nano-a").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_under_load_merges_only_the_fields_set() -> None:
    profile = BehaviourProfile.model_validate(
        {
            "quality": 0.9,
            "error_rate": 0.01,
            "latency": {"median_ms": 300, "p95_ms": 800},
            "degrades_after_requests": 10,
            "degraded": {"error_rate": 0.4},
        }
    )
    assert profile.under_load(10) is profile
    worse = profile.under_load(11)
    assert worse.error_rate == 0.4
    assert worse.latency == profile.latency and worse.quality == 0.9
    plain = BehaviourProfile()
    assert plain.under_load(10**6) is plain


@pytest.mark.parametrize(
    "profile",
    [{"degrades_after_requests": 10}, {"degraded": {"error_rate": 0.5}}],
    ids=["threshold-without-profile", "profile-without-threshold"],
)
def test_half_a_degradation_is_a_scenario_error_naming_the_profile(profile: dict[str, Any]) -> None:
    data = default_scenario_data()
    data["profiles"]["gpt-4o@2024-11-20"] = {**data["profiles"]["gpt-4o@2024-11-20"], **profile}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "my-scenario.yaml")
    text = str(info.value)
    assert "my-scenario.yaml" in text and "gpt-4o@2024-11-20" in text
    assert "degrades_after_requests and degraded go together" in text


def test_bad_degraded_values_are_rejected() -> None:
    data = default_scenario_data()
    data["profiles"][NANO] = {**data["profiles"][NANO], "degraded": {"error_rate": 1.5}}
    with pytest.raises(ScenarioError, match="error_rate"):
        parse_scenario(data, "my-scenario.yaml")


def test_default_scenario_degrades_only_after_more_requests_than_any_offline_evaluation_makes() -> None:
    """The demo's live-degrading successor passes offline: its threshold exceeds every golden data set."""
    data = default_scenario_data()
    profile = BehaviourProfile.model_validate(data["profiles"][NANO])
    assert profile.degraded is not None and profile.degrades_after_requests is not None
    assert (profile.degraded.error_rate or 0) >= 0.2
    largest = max(
        sum(1 for line in path.read_text().splitlines() if line.strip() and json.loads(line))
        for path in REPO.glob("bundles/*/shared/golden.jsonl")
    )
    assert profile.degrades_after_requests > largest
    replacement = next(m for m in data["catalog"] if m["name"] == "gpt-35-turbo" and m["version"] == "1106")[
        "replacement"
    ]
    assert f"{replacement['target_model_name']}@{replacement['target_model_version']}" == NANO


def test_a_fine_tuned_model_answers_with_its_bases_fine_tune_quality() -> None:
    """``fine_tune.quality`` of a base sets the quality of models fine-tuned from it, not of the base."""
    data = default_scenario_data()
    base = "gpt-4o-mini@2024-07-18"
    profile = data["profiles"][base]
    data["profiles"][base] = {
        **profile,
        "quality": 1.0,
        "fine_tune": {**profile["fine_tune"], "quality": 0.0},
    }
    context = "[kb-1] Backups run every night at 02:00 UTC.\n\n[kb-2] The VPN needs MFA."
    messages = rag_messages(context, "When do backups run?")
    with (
        running_emulator(data, latency_scale=0.0) as emu,
        httpx.Client(headers={"api-key": emu.api_key}, params={"api-version": DATA_VERSION}, timeout=10) as c,
    ):
        picked = {
            name: {
                c.post(chat_url(emu, account, name), json={"messages": messages, "seed": i}).headers[
                    "x-modelshift-answer-picked"
                ]
                for i in range(10)
            }
            for account, name in (("contoso-aoai-eus", "faq-4o-mini"), ("fabrikam-aoai-swc", "claims-ft"))
        }
    assert picked["faq-4o-mini"] == {"best"}  # the base model itself: quality 1.0
    assert "best" not in picked["claims-ft"]  # its fine-tune: quality 0.0
