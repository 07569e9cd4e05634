"""The side-by-side deployment on the emulator: created pinned with the baseline's SKU, reused, refused."""

from __future__ import annotations

import pytest

from modelshift.errors import ConfigError, QuotaExceededError
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.base import AccountRef, DeploymentSpec, ModelRef, VersionUpgradeOption
from modelshift.prepare.deploy import SideBySideRequest, deploy_side_by_side
from tests.prepare.conftest import Workspace

ACCOUNT = AccountRef(
    subscription_id="00000000-0000-0000-0000-000000000001",
    resource_group="rg-support",
    name="contoso-aoai-eus",
)
TARGET = ModelRef(name="gpt-4o", version="2024-11-20")


def _request(name: str = "support-chat-gpt-4o-2024-11-20", **changes: object) -> SideBySideRequest:
    values: dict[str, object] = {
        "account": ACCOUNT,
        "name": name,
        "model": TARGET,
        "sku_name": "GlobalStandard",
        "capacity": 50,
        "baseline_deployment": "support-chat-4o",
    }
    values.update(changes)
    return SideBySideRequest(**values)  # type: ignore[arg-type]


def test_creates_a_pinned_deployment_with_the_baselines_sku_and_audits_it(
    arm: ArmClient, workspace: Workspace, puts: list[str]
) -> None:
    before = {d.name for d in arm.list(ACCOUNT)}
    result = deploy_side_by_side(arm, _request(), store=workspace.store, migration_id="m-1", actor="tester")
    assert result.created
    d = arm.get(ACCOUNT, "support-chat-gpt-4o-2024-11-20")
    assert (d.model.name, d.model.version) == ("gpt-4o", "2024-11-20")
    assert (d.sku_name, d.capacity) == ("GlobalStandard", 50)
    assert d.version_upgrade_option is VersionUpgradeOption.NO_AUTO_UPGRADE
    assert d.provisioning_state == "Succeeded"
    assert {x.name for x in arm.list(ACCOUNT)} == before | {d.name}
    # the baseline is untouched
    baseline = arm.get(ACCOUNT, "support-chat-4o")
    assert (baseline.model.version, baseline.capacity) == ("2024-05-13", 50)
    (event,) = [e for e in workspace.store.audit_events(migration_id="m-1")]
    assert event.reason == "deployment.created" and event.data["model"] == "gpt-4o@2024-11-20"
    assert event.data["baseline_deployment"] == "support-chat-4o" and event.data["replaced"] is False
    assert len(puts) == 1


def test_a_rerun_reuses_the_deployment_without_a_put(arm: ArmClient, puts: list[str]) -> None:
    deploy_side_by_side(arm, _request())
    again = deploy_side_by_side(arm, _request())
    assert not again.created and again.deployment.name == "support-chat-gpt-4o-2024-11-20"
    assert len(puts) == 1
    assert [d.name for d in arm.list(ACCOUNT)].count("support-chat-gpt-4o-2024-11-20") == 1


def test_an_unpinned_deployment_of_the_same_model_is_pinned_by_a_put(arm: ArmClient, puts: list[str]) -> None:
    spec = DeploymentSpec(
        model=TARGET,
        sku_name="GlobalStandard",
        capacity=50,
        version_upgrade_option=VersionUpgradeOption.ONCE_NEW_DEFAULT_VERSION_AVAILABLE,
    )
    arm.create_or_update(ACCOUNT, "support-chat-gpt-4o-2024-11-20", spec)
    result = deploy_side_by_side(arm, _request())
    assert result.created and len(puts) == 2
    pinned = arm.get(ACCOUNT, "support-chat-gpt-4o-2024-11-20")
    assert pinned.version_upgrade_option is VersionUpgradeOption.NO_AUTO_UPGRADE


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        # faq-4o-mini exists in the scenario and serves gpt-4o-mini
        (_request("faq-4o-mini"), r"already serves gpt-4o-mini@2024-07-18, not gpt-4o@2024-11-20"),
        (_request("support-chat-4o"), "is the baseline's own deployment"),
    ],
)
def test_a_name_clash_is_refused_and_changes_nothing(
    arm: ArmClient, puts: list[str], request_: SideBySideRequest, message: str
) -> None:
    before = {d.name: d.model for d in arm.list(ACCOUNT)}
    with pytest.raises(ConfigError, match=message):
        deploy_side_by_side(arm, request_)
    assert puts == []
    assert {d.name: d.model for d in arm.list(ACCOUNT)} == before


def test_capacity_beyond_the_quota_is_the_platforms_quota_error(arm: ArmClient) -> None:
    # eastus GlobalStandard gpt-4o: limit 450, the baseline holds 50
    with pytest.raises(QuotaExceededError):
        deploy_side_by_side(arm, _request(capacity=420))
    assert "support-chat-gpt-4o-2024-11-20" not in {d.name for d in arm.list(ACCOUNT)}
