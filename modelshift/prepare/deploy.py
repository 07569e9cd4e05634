"""The side-by-side deployment of a candidate that is not fine-tuned: the target model, pinned
(``NoAutoUpgrade``), with the baseline's SKU and capacity, next to the baseline's deployment.

Idempotent: a deployment of that name already serving the same model (and pinned) is reused without a PUT;
one that is still provisioning, failed or not pinned is PUT again (ARM's PUT is idempotent and the adapter
waits for ``Succeeded``); one serving another model is never touched — that is a name clash a person must
resolve. A fine-tuned candidate's deployment comes from :mod:`modelshift.finetune` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelshift import audit
from modelshift.errors import ConfigError, DeploymentNotFoundError
from modelshift.platforms.base import (
    AccountRef,
    Deployment,
    Deployments,
    DeploymentSpec,
    ModelRef,
    ProvisioningState,
    VersionUpgradeOption,
)
from modelshift.store import Store


@dataclass(frozen=True)
class SideBySideRequest:
    """Which deployment to make, where, of which model, with which SKU and capacity."""

    account: AccountRef
    name: str
    model: ModelRef
    sku_name: str
    capacity: int
    #: the deployment the baseline serves from; never the same name as the candidate's
    baseline_deployment: str | None = None


@dataclass(frozen=True)
class SideBySideResult:
    """The candidate's deployment as ARM reports it, and whether this call PUT it."""

    deployment: Deployment
    created: bool

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for reports and audit events."""
        d = self.deployment
        return {
            "deployment": d.name,
            "account": d.account.name,
            "model": str(d.model),
            "sku": d.sku_name,
            "capacity": d.capacity,
            "version_upgrade_option": d.version_upgrade_option.value if d.version_upgrade_option else None,
            "created": self.created,
        }


def _same_model(deployed: ModelRef, wanted: ModelRef) -> bool:
    return deployed.name.lower() == wanted.name.lower() and (deployed.version or "") == (wanted.version or "")


def _existing(deployments: Deployments, request: SideBySideRequest) -> Deployment | None:
    try:
        return deployments.get(request.account, request.name)
    except DeploymentNotFoundError:
        return None


def deploy_side_by_side(
    deployments: Deployments,
    request: SideBySideRequest,
    *,
    store: Store | None = None,
    migration_id: str | None = None,
    actor: str = "modelshift",
) -> SideBySideResult:
    """Create (or find) the candidate's deployment and wait for ``Succeeded``; audited as
    ``deployment.created`` when this call PUT it.

    Raises ConfigError when the name is the baseline's or serves another model; platform errors (quota,
    a failed provisioning) pass through as the adapter raised them."""
    r = request
    if r.baseline_deployment is not None and r.name == r.baseline_deployment:
        raise ConfigError(
            f"deployment {r.name} in account {r.account.name} is the baseline's own deployment; the "
            "candidate must go beside it under another name (plan the migration again)"
        )
    current = _existing(deployments, r)
    if current is not None and not _same_model(current.model, r.model):
        raise ConfigError(
            f"deployment {r.name} in account {r.account.name} already serves {current.model}, not {r.model}; "
            "it is not modelshift's to replace: delete or rename it "
            "(`az cognitiveservices account deployment delete`), then run the migration again"
        )
    if (
        current is not None
        and current.provisioning_state is ProvisioningState.SUCCEEDED
        and current.version_upgrade_option is VersionUpgradeOption.NO_AUTO_UPGRADE
    ):
        return SideBySideResult(deployment=current, created=False)
    spec = DeploymentSpec(
        model=r.model,
        sku_name=r.sku_name,
        capacity=r.capacity,
        version_upgrade_option=VersionUpgradeOption.NO_AUTO_UPGRADE,
    )
    deployed = deployments.create_or_update(r.account, r.name, spec)
    result = SideBySideResult(deployment=deployed, created=True)
    if store is not None:
        store.append_audit(
            audit.Reason.DEPLOYMENT_CREATED,
            f"deployment:{r.account.name}/{r.name}",
            {
                **result.summary(),
                "baseline_deployment": r.baseline_deployment,
                "replaced": current is not None,
            },
            actor=actor,
            migration_id=migration_id,
        )
    return result
