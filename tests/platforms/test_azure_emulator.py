"""The Azure adapters against the local emulator over real HTTP (the same code that talks to Azure)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from conftest import emulator_settings

from modelshift.emulator.testing import EmulatorHandle, resolve_scenario, running_emulator
from modelshift.errors import AuthError, DeploymentNotFoundError, ModelRetiredError
from modelshift.platforms import base
from modelshift.platforms.azure import arm_client, async_openai_client, openai_client
from modelshift.platforms.azure.arm import ArmClient
from modelshift.platforms.azure.auth import ApiKeyCredential, StaticBearerCredential
from modelshift.platforms.azure.http import AzureHttp
from modelshift.platforms.azure.openai import AzureOpenAIClient
from modelshift.platforms.azure.retry import RetryPolicy

TRAINING = Path(__file__).parents[1] / "contracts" / "azure" / "finetune-training-data.chat.jsonl"
USER = [{"role": "user", "content": "What does the backup service do?"}]


def account(arm: ArmClient, sub: str, name: str) -> base.Account:
    return next(a for a in arm.accounts(sub) if a.ref.name == name)


def test_discover_subscriptions(arm: ArmClient, emulator: EmulatorHandle) -> None:
    subs = arm.subscriptions()
    assert emulator.subscription_id in [s.subscription_id for s in subs]


def test_discover_accounts_and_endpoints(arm: ArmClient, emulator: EmulatorHandle) -> None:
    accounts = arm.accounts(emulator.subscription_id)
    assert {"contoso-aoai-eus", "fabrikam-aoai-swc", "northwind-aoai-weu", "tailspin-ai-eus2"} <= {
        a.ref.name for a in accounts
    }
    (support,) = arm.accounts(emulator.subscription_id, "rg-support")
    assert support.ref.resource_group == "rg-support" and support.location == "eastus"
    assert support.endpoint == emulator.endpoint_for("contoso-aoai-eus")


def test_location_models_across_pages(arm: ArmClient, emulator: EmulatorHandle) -> None:
    whole = arm.location_models(emulator.subscription_id, "eastus")
    emulator.configure(page_size=2)
    try:
        paged = arm.location_models(emulator.subscription_id, "eastus")
    finally:
        emulator.configure(page_size=50)
    assert len(whole) >= 8 and paged == whole
    by_key = {(m.model.name, m.model.version): m for m in paged}
    old = by_key[("gpt-4o", "2024-05-13")]
    assert old.lifecycle_status is base.LifecycleStatus.DEPRECATING
    assert old.replacement is not None and old.replacement.model.version == "2024-11-20"
    assert old.inference_retirement == datetime(2026, 2, 10, tzinfo=UTC)
    turbo = by_key[("gpt-35-turbo", "0125")]
    standard = turbo.sku("Standard")
    assert standard is not None and standard.deprecation_date == datetime(2026, 2, 28, tzinfo=UTC)
    assert by_key[("gpt-35-turbo", "0613")].lifecycle_status is base.LifecycleStatus.DEPRECATED
    assert by_key[("gpt-4o", "2024-11-20")].is_default_version


def test_usages_and_account_models(arm: ArmClient, emulator: EmulatorHandle) -> None:
    usages = arm.usages(emulator.subscription_id, "eastus")
    assert any(u.name == "OpenAI.GlobalStandard.gpt-4o" and u.limit == 450 for u in usages)
    claims = account(arm, emulator.subscription_id, "fabrikam-aoai-swc")
    names = {m.model.name for m in arm.account_models(claims.ref)}
    assert "gpt-4o-mini-2024-07-18.ft-7c1f0e5a9b2d4c3e8f6a1b0c9d8e7f60" in names


def test_deployments_list_get_create_delete(arm: ArmClient, emulator: EmulatorHandle) -> None:
    ref = account(arm, emulator.subscription_id, "contoso-aoai-eus").ref
    names = {d.name for d in arm.list(ref)}
    assert {"support-chat-4o", "support-embed", "faq-4o-mini"} <= names
    current = arm.get(ref, "support-chat-4o")
    assert current.model == base.ModelRef(name="gpt-4o", version="2024-05-13")
    assert current.sku_name == "GlobalStandard" and current.capacity == 50

    spec = base.DeploymentSpec(
        model=base.ModelRef(name="gpt-4o", version="2024-11-20"), sku_name="GlobalStandard", capacity=50
    )
    created = arm.create_or_update(ref, "support-chat-4o-1120", spec)
    assert created.provisioning_state is base.ProvisioningState.SUCCEEDED
    assert created.version_upgrade_option is base.VersionUpgradeOption.NO_AUTO_UPGRADE
    assert arm.get(ref, "support-chat-4o-1120").model.version == "2024-11-20"

    arm.delete(ref, "support-chat-4o-1120")
    with pytest.raises(DeploymentNotFoundError, match="support-chat-4o-1120"):
        arm.get(ref, "support-chat-4o-1120")
    arm.delete(ref, "support-chat-4o-1120")  # deleting again is fine


def test_chat_embeddings_and_models(emulator: EmulatorHandle, http_client: httpx.Client) -> None:
    dp = openai_client(
        emulator.endpoint_for("contoso-aoai-eus"), emulator_settings(emulator), client=http_client
    )
    context = "The backup service copies your files every night. Restores take minutes."
    result = dp.chat(
        "faq-4o-mini",
        [{"role": "system", "content": f"Answer from this context: {context}"}, *USER],
        max_tokens=64,
        temperature=0,
    )
    assert result.content and result.finish_reason
    assert result.usage.prompt_tokens > 0 and result.usage.total_tokens >= result.usage.prompt_tokens
    assert result.latency_ms > 0
    assert result.rate_limit.remaining_requests is not None
    emb = dp.embed("support-embed", ["first", "second"])
    assert len(emb.vectors) == 2 and len(emb.vectors[0]) == 1536 and emb.vectors[0] != emb.vectors[1]
    models = {m.model.name: m for m in dp.list_models()}
    assert models and all(m.lifecycle_status is not base.LifecycleStatus.UNKNOWN for m in models.values())
    one = dp.get_model(next(iter(models)))
    assert one.inference_retirement is None or one.inference_retirement.tzinfo is not None


def test_async_chat_concurrently(emulator: EmulatorHandle) -> None:
    async def go() -> list[base.ChatResult]:
        async with httpx.AsyncClient(timeout=30) as client:
            dp = async_openai_client(
                emulator.endpoint_for("contoso-aoai-eus"), emulator_settings(emulator), client=client
            )
            return list(
                await asyncio.gather(*(dp.chat("faq-4o-mini", USER, max_tokens=16) for _ in range(5)))
            )

    results = asyncio.run(go())
    assert len(results) == 5 and all(r.usage.total_tokens > 0 for r in results)


def test_wrong_credentials_are_auth_errors_naming_the_credential(
    emulator: EmulatorHandle, http_client: httpx.Client
) -> None:
    dp = AzureOpenAIClient(
        AzureHttp(http_client, ApiKeyCredential("not-the-key")), emulator.endpoint_for("contoso-aoai-eus")
    )
    with pytest.raises(AuthError, match="api-key from MODELSHIFT_API_KEY") as info:
        dp.chat("faq-4o-mini", USER)
    assert info.value.status_code == 401
    arm = ArmClient(AzureHttp(http_client, StaticBearerCredential("nope")), base_url=emulator.arm_url)
    with pytest.raises(AuthError, match="static bearer token from MODELSHIFT_ARM_TOKEN"):
        arm.subscriptions()


def test_missing_deployment_and_retired_deployment(
    emulator: EmulatorHandle, http_client: httpx.Client
) -> None:
    settings = emulator_settings(emulator)
    contoso = openai_client(emulator.endpoint_for("contoso-aoai-eus"), settings, client=http_client)
    with pytest.raises(DeploymentNotFoundError, match="deployment nope in account contoso-aoai-eus"):
        contoso.chat("nope", USER)
    legacy = openai_client(emulator.endpoint_for("tailspin-ai-eus2"), settings, client=http_client)
    with pytest.raises(ModelRetiredError) as info:
        legacy.chat("legacy-35-0613", USER)
    assert info.value.status_code == 410
    assert "deployment legacy-35-0613 in account tailspin-ai-eus2 is retired" in info.value.message


@pytest.mark.slow
def test_429_is_absorbed_by_the_retry_policy(emulator: EmulatorHandle) -> None:
    """hr-35t has capacity 30 → 30 requests per 10 s window; the 31st gets a 429 with retry-after."""
    statuses: list[int] = []
    sleeps: list[float] = []

    def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)  # the emulator's limiter runs on real time

    with httpx.Client(timeout=30, event_hooks={"response": [record]}) as client:
        dp = openai_client(
            emulator.endpoint_for("northwind-aoai-weu"),
            emulator_settings(emulator),
            client=client,
            policy=RetryPolicy(sleep=sleep, total_budget=60),
        )
        results = [dp.chat("hr-35t", USER, max_tokens=8) for _ in range(33)]
    assert len(results) == 33
    assert 429 in statuses
    assert sleeps and all(0 < s <= 10.5 for s in sleeps)


@pytest.mark.slow
def test_fine_tune_upload_create_poll_events_cancel_and_deploy(http_client: httpx.Client) -> None:
    scenario = resolve_scenario(None).model_copy(update={"lro_delay_seconds": 0.5})
    with running_emulator(scenario, latency_scale=0.001) as emu:
        settings = emulator_settings(emu)
        dp = openai_client(emu.endpoint_for("fabrikam-aoai-swc"), settings, client=http_client)
        uploaded = dp.upload_file("claims-train-1a2b3c.jsonl", TRAINING.read_bytes())
        assert uploaded.id and uploaded.filename == "claims-train-1a2b3c.jsonl"
        assert uploaded.bytes in (None, len(TRAINING.read_bytes()))
        # the same upload again is found, not duplicated, by the guard's lookup path
        assert [f.id for f in dp.list_files("fine-tune") if f.filename == uploaded.filename] == [uploaded.id]

        spec = base.FineTuneJobSpec(
            model="gpt-4o-mini-2024-07-18", training_file=uploaded.id, suffix="claims-v2", seed=7
        )
        job = dp.create_job(spec)
        assert job.status in (base.FineTuneStatus.CREATED, base.FineTuneStatus.PENDING)
        assert job.suffix == "claims-v2"

        emu.advance_clock(4 * 3600)
        done = dp.get_job(job.id)
        assert done.status is base.FineTuneStatus.SUCCEEDED
        assert done.fine_tuned_model and done.fine_tuned_model.startswith("gpt-4o-mini-2024-07-18.ft-")
        events = dp.list_events(job.id)
        assert events and [e.created_at for e in events] == sorted(e.created_at for e in events)
        assert job.id in [j.id for j in dp.list_jobs()]

        second = dp.create_job(spec.model_copy(update={"suffix": "claims-v3"}))
        assert dp.cancel_job(second.id).status is base.FineTuneStatus.CANCELLED

        arm = arm_client(settings, client=http_client)
        arm.poll_interval = 0.2
        ref = account(arm, emu.subscription_id, "fabrikam-aoai-swc").ref
        deployed = arm.create_or_update(
            ref,
            "claims-ft-v2",
            base.DeploymentSpec(model=base.ModelRef(name=done.fine_tuned_model, version="1"), capacity=20),
        )
        assert deployed.provisioning_state is base.ProvisioningState.SUCCEEDED
        answer = dp.chat("claims-ft-v2", USER, max_tokens=16)
        assert answer.usage.total_tokens > 0
