"""Fleet sources: az-rest recordings (any shape we support, errors naming the file), no network when recorded,
and live ARM against the emulator with bounded concurrency; scan_fleet over both."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshift.emulator.scenario import default_scenario_data
from modelshift.emulator.testing import running_emulator
from modelshift.errors import ConfigError
from modelshift.lifecycle import AssessmentStatus, AsyncArmReader, fetch_live, load_recordings, scan_fleet
from modelshift.settings import Settings
from tests.lifecycle.conftest import AS_OF, example

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts" / "azure"
SUB = "00000000-0000-0000-0000-000000000001"
BUNDLES = [example(a) for a in ("support-chat", "claims-assistant", "hr-handbook", "backup-faq")]


def _dep(
    account: str, rg: str, name: str, model: str, version: str, sku: str = "Standard", **props: Any
) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/"
        f"{account}/deployments/{name}",
        "name": name,
        "sku": {"name": sku, "capacity": 50},
        "properties": {"model": {"format": "OpenAI", "name": model, "version": version}, **props},
    }


def _model(name: str, version: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "OpenAI",
        "skuName": "S0",
        "model": {"format": "OpenAI", "name": name, "version": version, **fields},
    }


def _write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def _catalog() -> list[dict[str, Any]]:
    return [
        _model(
            "gpt-4o",
            "2024-05-13",
            lifecycleStatus="Deprecating",
            deprecation={"inference": "2026-02-10T00:00:00Z"},
            replacementConfig={"targetModelName": "gpt-4o", "targetModelVersion": "2024-11-20"},
            skus=[{"name": "GlobalStandard"}],
        ),
        _model("gpt-4o", "2024-11-20", lifecycleStatus="GenerallyAvailable", isDefaultVersion=True),
    ]


def test_recordings_scan_without_network(tmp_path: Path) -> None:
    """Recorded input never touches the network: a transport that fails every request sees no call."""
    cat = _write(tmp_path / "models.json", {"value": _catalog()})  # az rest shape
    deps = _write(
        tmp_path / "deps.json",
        [  # bare list shape
            _dep(
                "contoso-aoai-eus", "rg-support", "support-chat-4o", "gpt-4o", "2024-05-13", "GlobalStandard"
            ),
            _dep(
                "contoso-aoai-eus",
                "rg-support",
                "stray",
                "gpt-4o",
                "2024-05-13",
                "GlobalStandard",
                versionUpgradeOption="OnceNewDefaultVersionAvailable",
            ),
        ],
    )
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("network is off in this test", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)):
        snapshot = load_recordings([f"eastus={cat}"], [deps])
        report = scan_fleet(BUNDLES[:1], snapshot, as_of=AS_OF)
    assert calls == []
    assert snapshot.origin == "recorded"
    support = report.managed[0]
    assert (support.status, support.days_left, str(support.target.model)) == (  # type: ignore[union-attr]
        AssessmentStatus.RETIRING,
        26,
        "gpt-4o@2024-11-20",
    )
    stray = report.unmanaged[0]
    assert stray.deployment == "stray" and stray.account == "contoso-aoai-eus" and stray.risks


def test_spec_example_recordings_from_the_contracts() -> None:
    files = [
        CONTRACTS / "arm-location-models-list.2026-09-01.json",
        CONTRACTS / "arm-deployments-list.2024-10-01.json",
    ]
    snapshot = load_recordings([str(files[0])], [str(files[1])])
    assert snapshot.catalogs and "westus" in snapshot.catalogs  # location read from the example's parameters
    assert snapshot.deployments and snapshot.deployments[0].account.name == "accountName"
    report = scan_fleet([], snapshot, as_of=AS_OF)
    assert [r.deployment for r in report.unmanaged] == ["deploymentName"]


def test_catalog_only_recording_assesses_the_pins(tmp_path: Path) -> None:
    cat = _write(tmp_path / "models.json", {"value": _catalog()})
    report = scan_fleet(BUNDLES[:1], load_recordings([cat]), as_of=AS_OF)
    assert report.managed[0].status == AssessmentStatus.RETIRING
    assert "deployment_not_recorded" in [f.code for f in report.managed[0].findings]
    assert report.unmanaged == []


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        ("{not json", "catalog", "not JSON (line 1"),
        ('{"value": 3}', "catalog", "expected an ARM list"),
        ('"text"', "deployments", "expected an ARM list"),
        ('{"value": [{"kind": "OpenAI"}]}', "catalog", "value[0].model: Field required"),
        ('[{"name": "x", "properties": {}}]', "deployments", "value[0].id"),
        ('[{"id": "/subscriptions/s/whatever", "name": "x"}]', "deployments", "not a deployment ARM id"),
        ('{"value": []}', "usages", "needs its location"),
    ],
)
def test_invalid_recordings_name_the_file(tmp_path: Path, content: str, kind: str, expected: str) -> None:
    path = tmp_path / f"{kind}.json"
    path.write_text(content, encoding="utf-8")
    args: dict[str, list[str]] = {"catalog_files": [], "deployment_files": [], "usage_files": []}
    args[{"catalog": "catalog_files", "deployments": "deployment_files", "usages": "usage_files"}[kind]] = [
        str(path)
    ]
    with pytest.raises(ConfigError) as info:
        load_recordings(**args)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_unreadable_recording(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the recording"):
        load_recordings([str(tmp_path / "missing.json")])


def test_usages_recording_with_location(tmp_path: Path) -> None:
    use = _write(
        tmp_path / "u.json",
        {"value": [{"name": {"value": "OpenAI.Standard.gpt-4o"}, "currentValue": 5, "limit": 10}]},
    )
    snapshot = load_recordings(usage_files=[f"EastUS={use}"])
    assert (
        snapshot.usages_for("eastus") == snapshot.usages["eastus"] and snapshot.usages_for("westus") is None
    )


def _scan_live(data: dict[str, Any] | None, concurrency: int) -> Any:
    with running_emulator(data) as emu:
        settings = Settings(arm_url=emu.arm_url, arm_token=emu.bearer_token)

        async def go() -> Any:
            async with httpx.AsyncClient() as client:
                return await fetch_live(
                    AsyncArmReader.from_settings(client, settings), BUNDLES, concurrency=concurrency
                )

        return asyncio.run(go())


@pytest.mark.slow
def test_live_scan_against_the_emulator() -> None:
    snapshot = _scan_live(None, concurrency=4)
    report = scan_fleet(BUNDLES, snapshot, as_of=AS_OF)
    by_app = {r.app: r for r in report.managed}
    assert by_app["support-chat"].status == AssessmentStatus.RETIRING
    assert by_app["hr-handbook"].retirement_source == "skus[Standard].deprecationDate"  # 02-28 beats 03-31
    assert by_app["claims-assistant"].status == AssessmentStatus.OK
    assert not [f for r in report.managed for f in r.findings if f.code == "drift"]
    unmanaged = {r.deployment: r for r in report.unmanaged}
    assert unmanaged["legacy-35-0613"].status == AssessmentStatus.RETIRED  # account found by listing the sub
    assert report.rows[0].app == "support-chat"  # most urgent managed row first
    assert snapshot.usages_for("eastus")


@pytest.mark.slow
def test_live_scan_pages_and_finds_missing_deployment() -> None:
    data = default_scenario_data()
    data["page_size"] = 1  # every list is paged
    rg = data["subscriptions"][0]["resource_groups"][0]
    rg["accounts"][0]["deployments"] = [
        d for d in rg["accounts"][0]["deployments"] if d["name"] != "support-chat-4o"
    ]
    report = scan_fleet(BUNDLES, _scan_live(data, concurrency=1), as_of=AS_OF)
    by_app = {r.app: r for r in report.managed}
    assert by_app["support-chat"].status == AssessmentStatus.DEPLOYMENT_MISSING
    assert {r.deployment for r in report.unmanaged} == {"support-embed", "faq-4o-mini", "legacy-35-0613"}
