"""Scenario loading: the packaged default's promises, and validation errors that name file and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from modelshift.emulator import shell_exports
from modelshift.emulator.ratelimit import SlidingWindowLimiter, limits_for_capacity
from modelshift.emulator.scenario import default_scenario_data, load_scenario, parse_scenario
from modelshift.emulator.simclock import ScenarioClock
from modelshift.errors import ScenarioError


def test_default_scenario_promises() -> None:
    s = load_scenario()
    start = s.clock.start
    deployments = {
        d.name: (a, d)
        for sub in s.subscriptions
        for g in sub.resource_groups
        for a in g.accounts
        for d in a.deployments
    }
    catalog = {m.key: m for m in s.catalog}
    inference = {k: m.deprecation.inference for k, m in catalog.items()}
    # one retiring within 30 days, one already retired, the rest healthy for > 30 days
    assert start < inference["gpt-4o@2024-05-13"] <= start + timedelta(days=30)  # type: ignore[operator]
    assert inference["gpt-35-turbo@0613"] < start  # type: ignore[operator]
    assert inference["gpt-4o-mini@2024-07-18"] > start + timedelta(days=180)  # type: ignore[operator]
    assert "faq-4o-mini" in deployments and "legacy-35-0613" in deployments
    assert catalog["gpt-4o@2024-05-13"].replacement.target_model_version == "2024-11-20"  # type: ignore[union-attr]
    for key in (
        "gpt-4o@2024-08-06",
        "gpt-4o@2024-11-20",
        "gpt-4o-mini@2024-07-18",
        "gpt-4.1@2025-04-14",
        "gpt-4.1-mini@2025-04-14",
        "gpt-35-turbo@0125",
        "text-embedding-3-small@1",
    ):
        assert key in catalog
    assert any(m.format != "OpenAI" for m in s.catalog)
    worse, good = s.profiles["gpt-4o@2024-08-06"], s.profiles["gpt-4o@2024-11-20"]
    assert worse.quality < good.quality and worse.error_rate > good.error_rate
    assert worse.latency.median_ms > good.latency.median_ms
    assert s.profiles["gpt-35-turbo@0125"].context_window == 16385
    account, dep = deployments["claims-ft"]
    assert (account.name, account.location, dep.sku.capacity) == ("fabrikam-aoai-swc", "swedencentral", 20)


def _broken(path: list[str | int], value: object) -> dict[str, object]:
    data = default_scenario_data()
    node: object = data
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["clock", "speed"], 0, "clock.speed"),
        (["clock", "start"], "yesterday", "clock.start"),
        (["clock", "tick"], 1, "clock.tick"),  # extra=forbid
        (["profiles", "gpt-4o@2024-08-06", "quality"], 1.5, "profiles.gpt-4o@2024-08-06.quality"),
        (["profiles", "gpt-4o@2024-08-06", "latency"], {"median_ms": 900, "p95_ms": 100}, "latency"),
        (
            ["subscriptions", 0, "resource_groups", 0, "accounts", 0, "kind"],
            "Bogus",
            "subscriptions.0.resource_groups.0.accounts.0.kind",
        ),
        (
            ["subscriptions", 0, "resource_groups", 0, "accounts", 0, "deployments", 0, "sku", "capacity"],
            0,
            "subscriptions.0.resource_groups.0.accounts.0.deployments.0.sku.capacity",
        ),
        (["subscriptions"], [], "subscriptions"),
        (["profiles", "no-at-sign"], {}, "name@version"),
    ],
)
def test_validation_errors_name_file_and_field(
    tmp_path: Path, path: list[str | int], value: object, field: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(_broken(path, value)), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert str(file) in str(info.value)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("clock: [unclosed", "not valid YAML"), ("- a\n- b\n", "expected a mapping")],
)
def test_unparseable_files(tmp_path: Path, text: str, needle: str) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=needle):
        load_scenario(file)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "nope.yaml")


def test_duplicate_and_dangling_references() -> None:
    data = default_scenario_data()
    data["catalog"].append(dict(data["catalog"][0]))
    with pytest.raises(ScenarioError, match="duplicate catalog entries"):
        parse_scenario(data, "dup.yaml")
    data = _broken(
        ["subscriptions", 0, "resource_groups", 0, "accounts", 0, "deployments", 0, "profile"], "ghost"
    )
    with pytest.raises(ScenarioError, match="ghost"):
        parse_scenario(data, "ref.yaml")


def test_shell_exports() -> None:
    text = shell_exports("http://127.0.0.1:9000/")
    assert "export MODELSHIFT_ARM_URL=http://127.0.0.1:9000\n" in text
    assert "export MODELSHIFT_API_KEY=emulator-key" in text
    assert "export MODELSHIFT_ARM_TOKEN=emulator-token" in text
    assert "NOT Azure" in text


class FakeMonotonic:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("capacity", "rpm", "tpm"), [(1, 6, 1000), (50, 300, 50_000), (120, 720, 120_000)])
def test_limits_for_capacity(capacity: int, rpm: int, tpm: int) -> None:
    assert limits_for_capacity(capacity) == (rpm, tpm)


def test_request_window_is_ten_seconds() -> None:
    clock = FakeMonotonic()
    limiter = SlidingWindowLimiter(2, monotonic=clock)  # 12 RPM -> 2 per 10 s
    assert [limiter.acquire(1).allowed for _ in range(3)] == [True, True, False]
    clock.now += 4.0
    refused = limiter.acquire(1)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(6.0)
    clock.now += 6.0  # exactly 10 s after the first request: it has left the window
    assert limiter.acquire(1).allowed


def test_token_window_is_sixty_seconds() -> None:
    clock = FakeMonotonic()
    limiter = SlidingWindowLimiter(100, monotonic=clock)  # 100k TPM, 100 requests / 10 s
    assert limiter.acquire(60_000).allowed
    clock.now += 20
    decision = limiter.acquire(40_001)
    assert not decision.allowed and decision.retry_after_s == pytest.approx(40.0)
    assert decision.remaining_tokens == 40_000
    assert limiter.acquire(40_000).allowed  # boundary: exactly the limit fits
    assert not limiter.acquire(200_000).allowed


def test_scenario_clock_speed_and_moves() -> None:
    mono = FakeMonotonic()
    s = load_scenario()
    clock = ScenarioClock(s.clock.start, speed=60.0, monotonic=mono)
    mono.now += 10
    assert clock() == s.clock.start + timedelta(minutes=10)
    clock.advance(3600)
    assert clock() == s.clock.start + timedelta(minutes=70)
    clock.reset()
    assert clock() == s.clock.start
