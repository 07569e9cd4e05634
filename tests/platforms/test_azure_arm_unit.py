"""ArmClient on httpx.MockTransport: paging, the deployment LRO, delete, discovery, pinned api-version."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from azure_fakes import FakeTime, error, ok, scripted, sync_http

from modelshift.errors import DeploymentNotFoundError, OperationFailedError
from modelshift.platforms import base
from modelshift.platforms.azure.arm import ArmClient

ACCOUNT = base.AccountRef(subscription_id="sub1", resource_group="rg1", name="contoso-aoai")
SPEC = base.DeploymentSpec(
    model=base.ModelRef(name="gpt-4o", version="2024-08-06"), sku_name="Standard", capacity=10
)
ARM = "https://arm.test"


def deployment(state: str, name: str = "chat-4o", **props: Any) -> dict[str, Any]:
    return {
        "name": name,
        "sku": {"name": "Standard", "capacity": 10},
        "properties": {
            "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-08-06"},
            "provisioningState": state,
            **props,
        },
    }


def client(
    script: list[Any], fake: FakeTime | None = None, **kwargs: Any
) -> tuple[ArmClient, list[httpx.Request]]:
    handler, seen = scripted(script)
    http = sync_http(handler, fake or FakeTime())
    return ArmClient(http, base_url=ARM, poll_interval=2.0, **kwargs), seen


# ------------------------------------------------------------------------------------------ paging


def test_paging_follows_absolute_next_link_as_given() -> None:
    page1 = {
        "value": [deployment("Succeeded", "a")],
        "nextLink": "https://other.test/page2?api-version=X&$skip=1",
    }
    page2 = {"value": [deployment("Succeeded", "b")], "nextLink": f"{ARM}/page3?$skiptoken=z"}
    page3 = {"value": [deployment("Succeeded", "c")]}
    arm, seen = client([ok(page1), ok(page2), ok(page3)])
    assert [d.name for d in arm.list(ACCOUNT)] == ["a", "b", "c"]
    assert str(seen[0].url) == (
        f"{ARM}/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.CognitiveServices/accounts/"
        "contoso-aoai/deployments?api-version=2025-06-01"
    )
    assert (
        str(seen[1].url) == "https://other.test/page2?api-version=X&$skip=1"
    )  # not rewritten, no params added
    assert str(seen[2].url) == f"{ARM}/page3?$skiptoken=z"


def test_paging_resolves_relative_next_link_and_empty_pages() -> None:
    arm, seen = client([ok({"value": [], "nextLink": "/next?api-version=2025-06-01"}), ok({"value": []})])
    assert arm.list(ACCOUNT) == []
    assert str(seen[1].url) == f"{ARM}/next?api-version=2025-06-01"


def test_paging_loop_is_an_error_not_a_hang() -> None:
    loop = {"value": [], "nextLink": f"{ARM}/same"}
    arm, _ = client([ok(loop), ok(loop)])
    with pytest.raises(Exception, match="paging loops"):
        arm.list(ACCOUNT)


def test_location_models_paged_and_api_version_configurable() -> None:
    item = {
        "kind": "OpenAI",
        "model": {"name": "gpt-4o", "version": "2024-11-20", "lifecycleStatus": "GenerallyAvailable"},
    }
    arm, seen = client(
        [ok({"value": [item], "nextLink": f"{ARM}/p2"}), ok({"value": [item]})], api_version="2026-09-01"
    )
    models = arm.location_models("sub1", "eastus")
    assert len(models) == 2 and models[0].lifecycle_status is base.LifecycleStatus.GENERALLY_AVAILABLE
    assert (
        seen[0].url.path
        == "/subscriptions/sub1/providers/Microsoft.CognitiveServices/locations/eastus/models"
    )
    assert seen[0].url.params["api-version"] == "2026-09-01"


def test_discovery_subscriptions_accounts_usages_account_models() -> None:
    account = {
        "id": ACCOUNT.arm_path,
        "name": "contoso-aoai",
        "location": "eastus",
        "kind": "OpenAI",
        "sku": {"name": "S0"},
        "properties": {"endpoint": "https://contoso-aoai.openai.azure.com/", "somethingNew": 1},
    }
    arm, seen = client(
        [
            ok({"value": [{"subscriptionId": "sub1", "displayName": "Dev", "state": "Enabled"}]}),
            ok({"value": [account]}),
            ok({"value": [account]}),
            ok({"value": [{"name": {"value": "OpenAI.Standard.gpt-4o"}, "currentValue": 20, "limit": 450}]}),
            ok({"value": [{"name": "gpt-4o", "version": "2024-08-06", "format": "OpenAI"}]}),
        ]
    )
    assert arm.subscriptions() == [
        base.Subscription(subscription_id="sub1", display_name="Dev", state="Enabled")
    ]
    (acct,) = arm.accounts("sub1")
    assert acct.ref == ACCOUNT and acct.endpoint == "https://contoso-aoai.openai.azure.com/"
    assert arm.accounts("sub1", "rg1")[0].location == "eastus"
    assert arm.usages("sub1", "eastus")[0] == base.QuotaUsage(
        name="OpenAI.Standard.gpt-4o", current_value=20, limit=450
    )
    assert arm.account_models(ACCOUNT)[0].model.version == "2024-08-06"
    assert seen[0].url.params["api-version"] == "2022-12-01"
    assert seen[1].url.path == "/subscriptions/sub1/providers/Microsoft.CognitiveServices/accounts"
    assert (
        seen[2].url.path
        == "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.CognitiveServices/accounts"
    )
    assert seen[3].url.path.endswith("/locations/eastus/usages")
    assert seen[4].url.path.endswith("/accounts/contoso-aoai/models")


# ----------------------------------------------------------------------------------- deployments


def test_get_404_is_deployment_not_found_with_names() -> None:
    arm, _ = client([error(404, "DeploymentNotFound", "not there")])
    with pytest.raises(DeploymentNotFoundError, match="deployment chat-4o in account contoso-aoai"):
        arm.get(ACCOUNT, "chat-4o")


@pytest.mark.parametrize(
    ("option", "sent"),
    [
        (None, "NoAutoUpgrade"),
        (base.VersionUpgradeOption.ONCE_CURRENT_VERSION_EXPIRED, "OnceCurrentVersionExpired"),
        (base.VersionUpgradeOption.ONCE_NEW_DEFAULT_VERSION_AVAILABLE, "OnceNewDefaultVersionAvailable"),
    ],
)
def test_put_body_pins_no_auto_upgrade_unless_asked(
    option: base.VersionUpgradeOption | None, sent: str
) -> None:
    spec = SPEC if option is None else SPEC.model_copy(update={"version_upgrade_option": option})
    arm, seen = client([ok(deployment("Succeeded"))])
    result = arm.create_or_update(ACCOUNT, "chat-4o", spec)
    body = json.loads(seen[0].content)
    assert seen[0].method == "PUT"
    assert body == {
        "sku": {"name": "Standard", "capacity": 10},
        "properties": {
            "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-08-06"},
            "versionUpgradeOption": sent,
        },
    }
    assert result.provisioning_state is base.ProvisioningState.SUCCEEDED


def test_lro_201_accepted_polls_get_until_succeeded_honouring_retry_after() -> None:
    fake = FakeTime()
    arm, seen = client(
        [
            ok(deployment("Accepted"), status=201, headers={"retry-after": "7"}),
            ok(deployment("Creating")),
            ok(deployment("Succeeded")),
        ],
        fake,
    )
    result = arm.create_or_update(ACCOUNT, "chat-4o", SPEC)
    assert result.provisioning_state is base.ProvisioningState.SUCCEEDED
    assert [r.method for r in seen] == ["PUT", "GET", "GET"]
    assert fake.sleeps == [7.0, 2.0]  # Retry-After of the PUT, then the default poll interval


def test_lro_azure_async_operation_header() -> None:
    op = "https://arm.test/operations/op1?api-version=2025-06-01"
    arm, seen = client(
        [
            ok(deployment("Creating"), status=201, headers={"azure-asyncoperation": op}),
            ok({"status": "InProgress"}),
            ok({"status": "Succeeded"}),
            ok(deployment("Succeeded")),
        ]
    )
    assert (
        arm.create_or_update(ACCOUNT, "chat-4o", SPEC).provisioning_state is base.ProvisioningState.SUCCEEDED
    )
    assert [str(r.url) for r in seen[1:3]] == [op, op]
    assert seen[3].url.path.endswith("/deployments/chat-4o")


def test_lro_azure_async_operation_failed() -> None:
    op = "https://arm.test/operations/op1"
    arm, _ = client(
        [
            ok(deployment("Creating"), status=201, headers={"azure-asyncoperation": op}),
            ok({"status": "Failed", "error": {"code": "InsufficientQuota", "message": "no quota left"}}),
        ]
    )
    with pytest.raises(
        OperationFailedError, match="chat-4o in account contoso-aoai ended Failed: no quota left"
    ):
        arm.create_or_update(ACCOUNT, "chat-4o", SPEC)


def test_lro_location_header_202_then_200() -> None:
    loc = "https://arm.test/locations/op2"
    arm, seen = client(
        [
            ok(deployment("Accepted"), status=201, headers={"location": loc}),
            ok({}, status=202),
            ok({}, status=200),
            ok(deployment("Succeeded")),
        ]
    )
    assert (
        arm.create_or_update(ACCOUNT, "chat-4o", SPEC).provisioning_state is base.ProvisioningState.SUCCEEDED
    )
    assert [str(r.url) for r in seen[1:3]] == [loc, loc]


@pytest.mark.parametrize("terminal", ["Failed", "Canceled", "failed"])
def test_lro_terminal_failure_names_deployment(terminal: str) -> None:
    arm, _ = client([ok(deployment("Accepted"), status=201), ok(deployment(terminal))])
    with pytest.raises(OperationFailedError) as info:
        arm.create_or_update(ACCOUNT, "chat-4o", SPEC)
    assert "deployment chat-4o in account contoso-aoai ended" in info.value.message
    assert info.value.code in ("Failed", "Canceled")


def test_lro_put_itself_returns_failed() -> None:
    arm, seen = client([ok(deployment("Failed"))])
    with pytest.raises(OperationFailedError):
        arm.create_or_update(ACCOUNT, "chat-4o", SPEC)
    assert len(seen) == 1


@pytest.mark.parametrize(("timeout", "polls"), [(5.0, 2), (2.0, 1), (1.0, 0)])
def test_lro_total_timeout(timeout: float, polls: int) -> None:
    fake = FakeTime()
    arm, seen = client(
        [ok(deployment("Accepted"), status=201)] + [ok(deployment("Creating"))] * 5, fake, lro_timeout=timeout
    )
    with pytest.raises(OperationFailedError, match="did not finish within") as info:
        arm.create_or_update(ACCOUNT, "chat-4o", SPEC)
    assert info.value.code == "Timeout"
    assert len(seen) == 1 + polls
    assert sum(fake.sleeps) <= timeout


def test_lro_poll_survives_a_transient_error() -> None:
    arm, _ = client([ok(deployment("Accepted"), status=201), error(503), ok(deployment("Succeeded"))])
    assert (
        arm.create_or_update(ACCOUNT, "chat-4o", SPEC).provisioning_state is base.ProvisioningState.SUCCEEDED
    )


@pytest.mark.parametrize(
    ("script", "requests"),
    [
        ([ok({}, status=200)], 1),
        ([httpx.Response(204)], 1),
        ([error(404, "DeploymentNotFound")], 1),
        ([ok({}, status=202), ok(deployment("Deleting")), error(404, "DeploymentNotFound")], 3),
    ],
    ids=["200", "204", "already-gone", "202-then-poll"],
)
def test_delete(script: list[Any], requests: int) -> None:
    arm, seen = client(script)
    arm.delete(ACCOUNT, "chat-4o")
    assert len(seen) == requests and seen[0].method == "DELETE"


def test_delete_timeout() -> None:
    arm, _ = client([ok({}, status=202)] + [ok(deployment("Deleting"))] * 3, lro_timeout=4.0)
    with pytest.raises(OperationFailedError, match="deleting deployment chat-4o"):
        arm.delete(ACCOUNT, "chat-4o")


def test_arm_client_satisfies_the_protocols() -> None:
    arm, _ = client([])
    assert isinstance(arm, base.Deployments)
    assert isinstance(arm, base.ModelCatalog)
    assert isinstance(arm, base.AccountDirectory)
