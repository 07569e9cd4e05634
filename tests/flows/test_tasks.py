"""Tasks called with ``.fn()`` (no flow run), the retry condition, the flow parameters and the launcher."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from prefect.states import Completed, Failed
from pydantic import ValidationError

from modelshift.errors import (
    ConfigError,
    MigrationConflictError,
    NotFoundError,
    RouterConflictError,
    StoreUnavailableError,
    ThrottledError,
    TransientPlatformError,
)
from modelshift.launcher import start_deployment_run, use_local_prefect_home
from modelshift.lifecycle import BundleRef
from modelshift.migration import MigrationStore
from modelshift.migration.params import MigrationParams
from modelshift.settings import Settings
from tasks.assess import as_of_datetime, assess_app, assess_fleet, matches_models
from tasks.plan import plan_app
from tasks.records import decide
from tasks.report import artifact_key, plan_markdown
from tasks.results import AppAssessment
from tasks.retry import retry_condition_fn
from tests.flows.conftest import Env

AS_OF = date(2026, 1, 15)


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (ThrottledError("429", retry_after=1.0), True),
        (TransientPlatformError("503"), True),
        (StoreUnavailableError("db down"), True),
        (RouterConflictError("cas lost"), True),
        (ConfigError("bad setting"), False),
        (NotFoundError("no app"), False),
        (MigrationConflictError("active"), False),
        (ValueError("a bug"), False),
    ],
)
def test_retry_condition_reads_the_errors_retryable_flag(exc: Exception, retry: bool) -> None:
    assert retry_condition_fn(None, None, Failed(data=exc)) is retry


def test_retry_condition_never_retries_a_completed_state() -> None:
    assert retry_condition_fn(None, None, Completed(data=1)) is False


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"app": "support-chat"}, None),
        ({"app": "support-chat", "target": "gpt-4o@2024-11-20"}, None),
        ({"app": "support-chat", "target": ""}, None),  # the UI's cleared field
        ({"app": "support-chat", "target": "gpt-4o"}, "target"),  # no version
        ({"app": "support-chat", "target": "gpt-4o@"}, "target"),
        ({"app": "support-chat", "target": "@2024-11-20"}, "target"),
        ({"app": ""}, "app"),
        ({"app": "../etc"}, "app"),
        ({"app": "a", "trigger": "webhook"}, "trigger"),
        ({"app": "a", "actor": ""}, "actor"),
        ({"app": "a", "surprise": 1}, "surprise"),
    ],
)
def test_migration_params_validation(values: dict[str, Any], error: str | None) -> None:
    if error is None:
        params = MigrationParams.model_validate(values)
        assert params.target in (None, "gpt-4o@2024-11-20")
        return
    with pytest.raises(ValidationError) as err:
        MigrationParams.model_validate(values)
    assert error in str(err.value)


def test_the_parameter_schema_is_a_form_with_every_field() -> None:
    schema = MigrationParams.model_json_schema()
    assert schema["required"] == ["app"]
    assert set(schema["properties"]) == {
        "app", "target", "reason", "trigger", "notice_id", "as_of", "dry_run", "approval_override", "actor",
    }  # fmt: skip
    assert all(p.get("description") for p in schema["properties"].values())


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (None, True),
        ([], True),
        (["  "], True),
        (["gpt-4o"], True),
        (["GPT-4o@2024-05-13"], True),
        (["gpt-4o@2024-11-20"], False),
        (["gpt-4o-mini"], False),
        (["gpt-4.1", "gpt-4o"], True),
    ],
)
def test_matches_models(models: list[str] | None, expected: bool) -> None:
    from modelshift.bundle.loader import load_bundle
    from tests.flows.conftest import REPO

    bundle = BundleRef.from_bundle(load_bundle(REPO / "bundles" / "support-chat" / "1.0.0"))
    assert matches_models(bundle, models) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 1, 15), datetime(2026, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 15, 8, 30), datetime(2026, 1, 15, 8, 30, tzinfo=UTC)),
    ],
)
def test_as_of_is_utc(value: date, expected: datetime) -> None:
    assert as_of_datetime(value) == expected


@pytest.mark.parametrize(
    ("parts", "key"),
    [
        (("migration-plan", "support-chat"), "migration-plan-support-chat"),
        (("x", "A_b.C"), "x-a-b-c"),
        (("",), "modelshift"),
    ],
)
def test_artifact_keys_are_valid(parts: tuple[str, ...], key: str) -> None:
    assert artifact_key(*parts) == key


def test_assess_and_plan_tasks_against_the_emulator(env: Env) -> None:
    assessment = assess_app.fn("support-chat", None, AS_OF)
    assert (assessment.status, assessment.days_left, assessment.target) == (
        "retiring",
        26,
        "gpt-4o@2024-11-20",
    )
    assert assessment.needs_migration and assessment.baseline_digest
    explicit = assess_app.fn("support-chat", "gpt-4.1@2025-04-14", AS_OF)
    assert explicit.target == "gpt-4.1@2025-04-14" and explicit.target_source == "explicit"
    plan = plan_app.fn(assessment, AS_OF)
    assert plan.target == "gpt-4o@2024-11-20" and plan.scope == "minor_version"
    assert plan.text.startswith("Migration plan for support-chat")
    page = plan_markdown(plan, assessment, migration_id="m-1", phase="planned")
    assert "# Migration plan: support-chat" in page and "26 days left" in page
    fleet = assess_fleet.fn(AS_OF, 90, None)
    assert sorted(a.app for a in fleet) == ["claims-assistant", "hr-handbook", "support-chat"]
    with pytest.raises(NotFoundError, match="no production bundle"):
        assess_app.fn("nobody", None, AS_OF)


def test_decide_holds_back_for_a_held_key_or_an_active_migration(env: Env) -> None:
    a = AppAssessment(
        app="support-chat",
        baseline_digest="d1",
        model="gpt-4o@2024-05-13",
        status="retiring",
        target="gpt-4o@2024-11-20",
    )
    with env.store() as store:
        ms = MigrationStore(store)
        fresh = decide(ms, a)
        assert fresh.start and fresh.prefect_key.endswith("-1")
        m = ms.start(
            app=a.app,
            baseline_digest="d1",
            target=a.target,
            trigger="cli",
            reason="t",
            actor="t",
            parameters={},
        )
        held = decide(ms, a)
        assert (
            not held.start and held.existing_migration_id == m.migration.id and "already covers" in held.why
        )
        other = decide(ms, a.model_copy(update={"target": "gpt-4.1@2025-04-14"}))
        assert not other.start and "is active" in other.why
        ms.advance(m.migration.id, "failed", actor="t")
        retry = decide(ms, a)
        # a new Prefect idempotency key, or run_deployment would hand back the failed run
        assert (
            retry.start
            and retry.prefect_key.endswith("-2")
            and retry.idempotency_key == fresh.idempotency_key
        )


def test_starting_a_deployment_that_was_never_deployed_names_the_fix(env: Env) -> None:
    with pytest.raises(ConfigError, match="prefect --no-prompt deploy --all"):
        start_deployment_run(MigrationParams(app="support-chat"), idempotency_key="k", deployment="nope/nope")


def test_local_prefect_home_cannot_change_after_prefect_was_imported(env: Env) -> None:
    with pytest.raises(ConfigError, match="PREFECT_HOME"):
        use_local_prefect_home(Settings(home=env.home))
