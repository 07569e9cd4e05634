"""The fine-tune re-run of the prepare stage: validate the training data for the target, then hand over to
:class:`modelshift.finetune.FineTuneRun` (resumable: a re-run of the same migration finds its job)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelshift.bundle import Bundle
from modelshift.clock import Clock
from modelshift.errors import ConfigError
from modelshift.finetune import (
    CatalogFineTuneRequest,
    EventCallback,
    FineTuneRequest,
    FineTuneResult,
    FineTuneRun,
    PollPolicy,
    ResumableFineTuning,
)
from modelshift.finetune.catalog import is_catalog_bundle
from modelshift.platforms.base import AccountRef, Deployments, FineTuneJob, ModelRef
from modelshift.prepare.data import ReportSink, validate_fine_tune_data
from modelshift.settings import Settings
from modelshift.store import Store

if TYPE_CHECKING:
    from modelshift.platforms.azure.maap import MaapFineTuning
    from modelshift.platforms.azure.maap_deploy import AmlOnlineDeployments

#: the longest wait between two polls of a job
MAX_POLL_SECONDS = 300.0
#: tiktoken cannot count a catalog model's tokens exactly; its examples are checked with this encoding
CATALOG_ENCODING = "o200k_base"


def poll_policy(first_wait: float) -> PollPolicy:
    """Backoff from ``first_wait`` seconds up to five minutes (never below the first wait)."""
    return PollPolicy(initial=first_wait, maximum=max(first_wait, MAX_POLL_SECONDS))


def catalog_adapters(baseline: Bundle, settings: Settings) -> tuple[MaapFineTuning, AmlOnlineDeployments]:
    """The MaaP fine-tuning and deployment adapters for an ``azure-ml`` bundle's workspace and endpoint.

    The credential is MODELSHIFT_ARM_TOKEN when set, else azure-identity's DefaultAzureCredential; the
    requests go where MODELSHIFT_ARM_URL says
    (:func:`~modelshift.platforms.azure.maap_deploy.maap_routes`)."""
    from modelshift.platforms.azure.maap_deploy import StaticTokenCredential, maap_adapters, maap_routes

    model = baseline.manifest.model
    if not is_catalog_bundle(baseline) or not (
        model.subscription and model.resource_group and model.account and model.endpoint
    ):
        raise ConfigError(
            f"{baseline.yaml_path}: model: catalog-model fine-tuning needs platform azure-ml with "
            f"subscription, resource_group, account (the workspace) and endpoint; {baseline.app} has "
            f"platform {model.platform}"
        )
    credential: Any
    if settings.arm_token is not None:
        credential = StaticTokenCredential(settings.arm_token.get_secret_value())
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    workspace = AccountRef(
        subscription_id=model.subscription, resource_group=model.resource_group, name=model.account
    )
    return maap_adapters(credential, workspace, model.endpoint, routes=maap_routes(settings.arm_url))


def rerun_fine_tune(
    store: Store,
    baseline: Bundle,
    target: ModelRef,
    *,
    migration_id: str,
    fine_tuning: ResumableFineTuning,
    deployments: Deployments,
    clock: Clock,
    policy: PollPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    actor: str = "modelshift",
    on_event: EventCallback | None = None,
    on_poll: Callable[[FineTuneJob], None] | None = None,
    sink: ReportSink | None = None,
) -> FineTuneResult:
    """Validate ``baseline``'s fine-tuning files for ``target`` (DataValidationError with the report when
    they fail; nothing is uploaded), then re-run its fine-tune on ``target`` and deploy the result.

    An Azure OpenAI bundle re-runs through ``FineTuneRequest``; an ``azure-ml`` bundle (a catalog model)
    through ``CatalogFineTuneRequest``, so pass it the MaaP adapters
    (:func:`modelshift.platforms.azure.maap_deploy.maap_adapters`)."""
    catalog = is_catalog_bundle(baseline)
    validate_fine_tune_data(
        baseline,
        target,
        store=store,
        migration_id=migration_id,
        actor=actor,
        sink=sink,
        encoding=CATALOG_ENCODING if catalog else None,
    )
    request: FineTuneRequest = (
        CatalogFineTuneRequest.from_catalog_bundle(baseline, target=target, migration_id=migration_id)
        if catalog
        else FineTuneRequest.from_bundle(baseline, target=target, migration_id=migration_id)
    )
    run = FineTuneRun(
        request,
        fine_tuning=fine_tuning,
        deployments=deployments,
        store=store,
        clock=clock,
        sleep=sleep,
        policy=policy,
        actor=actor,
    )
    return run.run(on_event=on_event, on_poll=on_poll)
