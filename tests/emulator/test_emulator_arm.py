"""The emulator's ARM surface over real HTTP: auth, api-version, shapes vs the contracts, paging, LRO."""

from __future__ import annotations

import httpx
import pytest
from emulator_helpers import ARM_VERSION, SUB, account_path, contract

from modelshift.emulator.testing import EmulatorHandle

PROVIDER = "providers/Microsoft.CognitiveServices"


def _keys(obj: dict[str, object]) -> set[str]:
    return set(obj)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "AuthenticationFailed"),
        ({"Authorization": "Bearer wrong"}, 401, "InvalidAuthenticationToken"),
        ({"api-key": "emulator-key"}, 401, "AuthenticationFailed"),  # ARM takes bearer tokens only
        ({"Authorization": "Bearer emulator-token"}, 200, None),
    ],
)
def test_arm_auth(emu: EmulatorHandle, headers: dict[str, str], status: int, code: str | None) -> None:
    r = httpx.get(f"{emu.arm_url}/subscriptions", params={"api-version": ARM_VERSION}, headers=headers)
    assert r.status_code == status
    assert r.headers["x-modelshift-emulator"] == "1"
    if code:
        assert r.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "MissingApiVersionParameter"),
        ({"api-version": "1999-01-01"}, 400, "InvalidApiVersionParameter"),
        ({"api-version": "2024-10-01"}, 200, None),
        ({"api-version": "2025-06-01"}, 200, None),
        ({"api-version": "2026-09-01"}, 200, None),
    ],
)
def test_arm_api_version(emu: EmulatorHandle, params: dict[str, str], status: int, code: str | None) -> None:
    r = httpx.get(
        f"{emu.arm_url}/subscriptions", params=params, headers={"Authorization": f"Bearer {emu.bearer_token}"}
    )
    assert r.status_code == status
    if code:
        assert r.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("version", "status"), [("2022-12-01", 200), ("2020-01-01", 200), ("2019-01-01", 400)]
)
def test_subscriptions_accept_resource_manager_versions(
    emu: EmulatorHandle, version: str, status: int
) -> None:
    # `az account list` calls Microsoft.Resources with its own api-versions; accounts routes refuse them
    headers = {"Authorization": f"Bearer {emu.bearer_token}"}
    r = httpx.get(f"{emu.arm_url}/subscriptions", params={"api-version": version}, headers=headers)
    assert r.status_code == status
    url = f"{emu.arm_url}/subscriptions/{SUB}/{PROVIDER}/accounts"
    assert httpx.get(url, params={"api-version": "2022-12-01"}, headers=headers).status_code == 400


def test_root_page_says_emulator(emu: EmulatorHandle) -> None:
    r = httpx.get(emu.base_url + "/")
    assert r.status_code == 200
    assert "emulator" in r.text and "not Azure" in r.text


def test_subscriptions_and_accounts(emu: EmulatorHandle, arm: httpx.Client) -> None:
    subs = arm.get("/subscriptions").json()["value"]
    assert [s["subscriptionId"] for s in subs] == [SUB]
    accounts = arm.get(f"/subscriptions/{SUB}/{PROVIDER}/accounts").json()["value"]
    by_name = {a["name"]: a for a in accounts}
    assert set(by_name) >= {"contoso-aoai-eus", "fabrikam-aoai-swc", "northwind-aoai-weu"}
    contoso = by_name["contoso-aoai-eus"]
    assert contoso["location"] == "eastus"
    assert contoso["properties"]["endpoint"] == emu.endpoint_for("contoso-aoai-eus")
    assert contoso["id"] == account_path("rg-support", "contoso-aoai-eus")
    in_rg = arm.get(f"/subscriptions/{SUB}/resourceGroups/rg-claims/{PROVIDER}/accounts").json()["value"]
    assert [a["name"] for a in in_rg] == ["fabrikam-aoai-swc"]


def test_unknown_subscription_and_account(arm: httpx.Client) -> None:
    r = arm.get(f"/subscriptions/ffffffff-0000-0000-0000-000000000000/{PROVIDER}/accounts")
    assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound"
    r = arm.get(account_path("rg-support", "nope") + "/deployments")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


def test_deployment_shapes_match_contracts(arm: httpx.Client) -> None:
    listed = arm.get(account_path("rg-support", "contoso-aoai-eus") + "/deployments").json()
    example_list = contract("arm-deployments-list.2024-10-01.json")["responses"]["200"]["body"]
    assert _keys(listed) >= _keys(example_list)
    example = contract("arm-deployment-get.2025-12-01.json")["responses"]["200"]["body"]
    got = arm.get(account_path("rg-support", "contoso-aoai-eus") + "/deployments/support-chat-4o").json()
    assert _keys(got) >= _keys(example)
    assert _keys(got["properties"]) >= _keys(example["properties"]) - {"serviceTier"}
    assert _keys(got["sku"]) >= _keys(example["sku"])
    assert got["properties"]["model"] == {"format": "OpenAI", "name": "gpt-4o", "version": "2024-05-13"}
    assert got["sku"] == {"name": "GlobalStandard", "capacity": 50}
    assert got["properties"]["provisioningState"] == "Succeeded"


@pytest.mark.parametrize(
    ("rg", "account", "deployment", "model", "version", "sku", "capacity"),
    [
        ("rg-support", "contoso-aoai-eus", "support-chat-4o", "gpt-4o", "2024-05-13", "GlobalStandard", 50),
        (
            "rg-claims",
            "fabrikam-aoai-swc",
            "claims-ft",
            "gpt-4o-mini-2024-07-18.ft-7c1f0e5a9b2d4c3e8f6a1b0c9d8e7f60",
            "1",
            "Standard",
            20,
        ),
        ("rg-hr", "northwind-aoai-weu", "hr-35t", "gpt-35-turbo", "0125", "Standard", 30),
    ],
)
def test_example_apps_are_deployed(
    arm: httpx.Client,
    rg: str,
    account: str,
    deployment: str,
    model: str,
    version: str,
    sku: str,
    capacity: int,
) -> None:
    got = arm.get(account_path(rg, account) + f"/deployments/{deployment}").json()
    assert got["properties"]["model"]["name"] == model
    assert got["properties"]["model"]["version"] == version
    assert got["sku"] == {"name": sku, "capacity": capacity}


def test_location_models_shape_and_lifecycle(arm: httpx.Client) -> None:
    body = arm.get(f"/subscriptions/{SUB}/{PROVIDER}/locations/eastus/models").json()
    example = contract("arm-location-models-list.2026-09-01.json")["responses"]["200"]["body"]["value"]
    example_item = next(m for m in example if m["model"].get("replacementConfig"))
    items = {(m["model"]["name"], m["model"]["version"]): m for m in body["value"]}
    old = items[("gpt-4o", "2024-05-13")]
    assert _keys(old) >= _keys(example_item) - {"description"}
    assert _keys(old["model"]) >= {
        "format",
        "name",
        "version",
        "lifecycleStatus",
        "deprecation",
        "skus",
        "capabilities",
    }
    assert old["model"]["lifecycleStatus"] == "Deprecating"
    assert old["model"]["deprecation"]["inference"] == "2026-02-10T00:00:00Z"
    assert old["model"]["replacementConfig"]["targetModelVersion"] == "2024-11-20"
    assert ("gpt-4o", "2024-08-06") in items and ("gpt-4o", "2024-11-20") in items
    assert items[("gpt-4o", "2024-11-20")]["model"]["isDefaultVersion"] is True
    assert ("DeepSeek-R1", "1") in items and items[("DeepSeek-R1", "1")]["kind"] == "AIServices"
    hr = arm.get(f"/subscriptions/{SUB}/{PROVIDER}/locations/westeurope/models").json()["value"]
    t35 = next(m for m in hr if m["model"]["name"] == "gpt-35-turbo" and m["model"]["version"] == "0125")
    assert t35["model"]["skus"][0]["deprecationDate"] == "2026-02-28T00:00:00Z"


@pytest.mark.parametrize("page_size", [1, 2, 3, 50])
def test_paging_through_next_link(emu: EmulatorHandle, arm: httpx.Client, page_size: int) -> None:
    emu.configure(page_size=page_size)
    url: str | None = f"/subscriptions/{SUB}/{PROVIDER}/locations/eastus/models"
    seen: list[str] = []
    pages = 0
    while url:
        body = arm.get(url).json()
        assert len(body["value"]) <= page_size
        seen += [f"{m['model']['name']}@{m['model']['version']}" for m in body["value"]]
        url = body.get("nextLink")
        pages += 1
        assert pages < 100
    emu.configure(page_size=50)
    full = arm.get(f"/subscriptions/{SUB}/{PROVIDER}/locations/eastus/models").json()
    assert "nextLink" not in full
    assert seen == [f"{m['model']['name']}@{m['model']['version']}" for m in full["value"]]
    assert pages == -(-len(seen) // page_size)


def test_bad_skip_token(arm: httpx.Client) -> None:
    r = arm.get(f"/subscriptions/{SUB}/{PROVIDER}/locations/eastus/models", params={"$skipToken": "x"})
    assert r.status_code == 400


def test_put_is_a_long_running_operation(emu: EmulatorHandle, arm: httpx.Client) -> None:
    path = account_path("rg-support", "contoso-aoai-eus") + "/deployments/support-chat-4o-1120"
    body = {
        "sku": {"name": "GlobalStandard", "capacity": 10},
        "properties": {
            "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"},
            "versionUpgradeOption": "NoAutoUpgrade",
        },
    }
    r = arm.put(path, json=body)
    assert r.status_code == 201
    example = contract("arm-deployment-put.2026-09-01.json")["responses"]["201"]["body"]
    assert set(r.json()) >= set(example)
    assert r.json()["properties"]["provisioningState"] == "Accepted"
    assert arm.get(path).json()["properties"]["provisioningState"] == "Creating"
    emu.advance_clock(5)
    done = arm.get(path).json()
    assert done["properties"]["provisioningState"] == "Succeeded"
    assert done["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"
    again = arm.put(path, json=body)
    assert again.status_code == 200
    listed = arm.get(account_path("rg-support", "contoso-aoai-eus") + "/deployments").json()["value"]
    assert "support-chat-4o-1120" in [d["name"] for d in listed]


def test_put_provisioning_failure_by_fault(emu: EmulatorHandle, arm: httpx.Client) -> None:
    emu.inject_faults("contoso-aoai-eus", "doomed", provision_fail=True)
    path = account_path("rg-support", "contoso-aoai-eus") + "/deployments/doomed"
    body = {"sku": {"name": "GlobalStandard", "capacity": 1}, "properties": {"model": {"name": "gpt-4o"}}}
    assert arm.put(path, json=body).status_code == 201
    emu.advance_clock(10)
    got = arm.get(path).json()
    assert got["properties"]["provisioningState"] == "Failed"
    assert got["properties"]["model"]["version"] == "2024-11-20"  # no version -> the default version


@pytest.mark.parametrize(
    ("account", "model", "sku", "capacity", "code"),
    [
        (
            "contoso-aoai-eus",
            {"format": "OpenAI", "name": "gpt-99", "version": "1"},
            "Standard",
            1,
            "DeploymentModelNotSupported",
        ),
        (
            "contoso-aoai-eus",
            {"format": "OpenAI", "name": "gpt-35-turbo", "version": "0613"},
            "Standard",
            1,
            "ServiceModelDeprecated",
        ),
        (
            "contoso-aoai-eus",
            {"format": "DeepSeek", "name": "DeepSeek-R1", "version": "1"},
            "GlobalStandard",
            1,
            "DeploymentModelNotSupported",
        ),
        (
            "contoso-aoai-eus",
            {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"},
            "Provisioned",
            1,
            "InvalidResourceProperties",
        ),
        (
            "contoso-aoai-eus",
            {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"},
            "GlobalStandard",
            451,
            "InvalidCapacity",
        ),
        # eastus gpt-4o GlobalStandard quota is 450 and support-chat-4o holds 50: 401 is one over
        (
            "contoso-aoai-eus",
            {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"},
            "GlobalStandard",
            401,
            "InsufficientQuota",
        ),
    ],
)
def test_put_rejections(
    arm: httpx.Client, account: str, model: dict[str, str], sku: str, capacity: int, code: str
) -> None:
    path = account_path("rg-support", account) + "/deployments/new-one"
    r = arm.put(path, json={"sku": {"name": sku, "capacity": capacity}, "properties": {"model": model}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code
    assert arm.get(path).status_code == 404


def test_put_at_quota_boundary_succeeds(arm: httpx.Client) -> None:
    path = account_path("rg-support", "contoso-aoai-eus") + "/deployments/big"
    model = {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"}
    r = arm.put(
        path, json={"sku": {"name": "GlobalStandard", "capacity": 400}, "properties": {"model": model}}
    )
    assert r.status_code == 201


def test_put_malformed_bodies(arm: httpx.Client) -> None:
    path = account_path("rg-support", "contoso-aoai-eus") + "/deployments/x"
    assert arm.put(path, content=b"{not json").status_code == 400
    assert (
        arm.put(path, json={"sku": {"name": "Standard"}}).json()["error"]["code"]
        == "InvalidResourceProperties"
    )
    r = arm.put(path, json={"properties": {"model": {"name": "gpt-4o"}}})
    assert r.status_code == 400


def test_retired_deployment_put_after_clock_passes_retirement(emu: EmulatorHandle, arm: httpx.Client) -> None:
    path = account_path("rg-support", "contoso-aoai-eus") + "/deployments/late"
    body = {
        "sku": {"name": "GlobalStandard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-05-13"}},
    }
    assert arm.put(path, json=body).status_code == 201
    emu.advance_clock(40 * 86400)
    r = arm.put(path, json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "ServiceModelDeprecated"


def test_delete_deployment(arm: httpx.Client) -> None:
    path = account_path("rg-support", "contoso-aoai-eus") + "/deployments/faq-4o-mini"
    assert arm.delete(path).status_code == 200
    assert arm.get(path).status_code == 404
    assert arm.get(path).json()["error"]["code"] == "DeploymentNotFound"
    assert arm.delete(path).status_code == 204


def test_pause_and_resume(arm: httpx.Client) -> None:
    path = account_path("rg-support", "contoso-aoai-eus") + "/deployments/faq-4o-mini"
    paused = arm.post(path + "/pause").json()
    example = contract("arm-deployment-pause.2025-12-01.json")["responses"]["200"]["body"]
    assert set(paused) >= set(example)
    assert paused["properties"]["deploymentState"] == "Paused"
    assert arm.post(path + "/resume").json()["properties"]["deploymentState"] == "Running"


def test_account_models_include_fine_tuned(arm: httpx.Client) -> None:
    body = arm.get(account_path("rg-claims", "fabrikam-aoai-swc") + "/models").json()
    names = {m["name"] for m in body["value"]}
    assert "gpt-4o-mini-2024-07-18.ft-7c1f0e5a9b2d4c3e8f6a1b0c9d8e7f60" in names
    ft = next(m for m in body["value"] if ".ft-" in m["name"])
    assert ft["baseModel"] == {"format": "OpenAI", "name": "gpt-4o-mini", "version": "2024-07-18"}
    assert "DeepSeek-R1" not in names  # an OpenAI-kind account cannot deploy AIServices-only models


def test_usages_count_deployments(arm: httpx.Client) -> None:
    body = arm.get(f"/subscriptions/{SUB}/{PROVIDER}/locations/eastus/usages").json()
    by_name = {u["name"]["value"]: u for u in body["value"]}
    gpt4o = by_name["OpenAI.GlobalStandard.gpt-4o"]
    assert set(gpt4o) >= {"name", "currentValue", "limit", "unit"}
    assert (gpt4o["currentValue"], gpt4o["limit"]) == (50, 450)
