"""assess(): status, dates, risks, drift and ranked targets — table-driven, with boundary rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelshift.lifecycle import AssessmentStatus, assess
from modelshift.platforms.base import LifecycleStatus, ModelRef, VersionUpgradeOption
from tests.lifecycle.conftest import AS_OF, day, deployment, entry, example, with_model

St = AssessmentStatus
GA = LifecycleStatus.GENERALLY_AVAILABLE


def _support_dep(version: str = "2024-05-13", **kw: object) -> object:
    return deployment("support-chat-4o", "gpt-4o", version, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("catalog", "dep_present", "horizon", "status", "days_left"),
    [
        # retirement exactly on as_of is retired; one day later is retiring (0 < days <= horizon)
        ([entry("gpt-4o", "2024-05-13", inference="2026-01-15")], True, 90, St.RETIRED, 0),
        ([entry("gpt-4o", "2024-05-13", inference="2026-01-16")], True, 90, St.RETIRING, 1),
        # horizon boundary: exactly 90 days is retiring, 91 is not
        ([entry("gpt-4o", "2024-05-13", inference="2026-04-15")], True, 90, St.RETIRING, 90),
        ([entry("gpt-4o", "2024-05-13", inference="2026-04-16")], True, 90, St.OK, 91),
        ([entry("gpt-4o", "2024-05-13", inference="2026-04-16")], True, 91, St.RETIRING, 91),
        # Deprecated lifecycle is retired whatever the date
        (
            [entry("gpt-4o", "2024-05-13", status=LifecycleStatus.DEPRECATED, inference="2027-01-01")],
            True,
            90,
            St.RETIRED,
            351,
        ),
        (
            [entry("gpt-4o", "2024-05-13", status=LifecycleStatus.DEPRECATING, inference="2027-01-01")],
            True,
            90,
            St.DEPRECATING,
            351,
        ),
        ([entry("gpt-4o", "2024-05-13", status=LifecycleStatus.LEGACY)], True, 90, St.DEPRECATING, None),
        # a newer GA default version makes an upgrade available
        (
            [
                entry("gpt-4o", "2024-05-13", inference="2027-01-01"),
                entry("gpt-4o", "2024-11-20", default=True),
            ],
            True,
            90,
            St.UPGRADE_AVAILABLE,
            351,
        ),
        ([], True, 90, St.UNKNOWN_MODEL, None),
        ([entry("gpt-4o", "2024-05-13", inference="2027-01-01")], False, 90, St.DEPLOYMENT_MISSING, 351),
        # retired beats missing: nothing could serve it anyway
        ([entry("gpt-4o", "2024-05-13", inference="2025-01-01")], False, 90, St.RETIRED, -379),
    ],
)
def test_status_table(catalog, dep_present, horizon, status, days_left) -> None:  # type: ignore[no-untyped-def]
    bundle = example("support-chat")
    dep = _support_dep() if dep_present else None
    result = assess(bundle, dep, catalog, as_of=AS_OF, horizon_days=horizon)  # type: ignore[arg-type]
    assert (result.status, result.days_left) == (status, days_left)


@pytest.mark.parametrize(
    ("inference", "sku_date", "expected", "source"),
    [
        (
            "2026-06-01",
            "2026-03-01",
            "2026-03-01",
            "skus[GlobalStandard].deprecationDate",
        ),  # SKU earlier wins
        ("2026-06-01", "2026-09-01", "2026-06-01", "deprecation.inference"),  # SKU later: inference
        ("2026-06-01", "2026-06-01", "2026-06-01", "deprecation.inference"),  # equal: inference
        (None, "2026-03-01", "2026-03-01", "skus[GlobalStandard].deprecationDate"),
        ("2026-06-01", None, "2026-06-01", "deprecation.inference"),
    ],
)
def test_sku_deprecation_date_wins_when_earlier(inference, sku_date, expected, source) -> None:  # type: ignore[no-untyped-def]
    cat = [
        entry(
            "gpt-4o",
            "2024-05-13",
            inference=inference,
            sku_dates={"GlobalStandard": sku_date, "Standard": None},
        )
    ]
    result = assess(example("support-chat"), _support_dep(), cat, as_of=AS_OF)  # type: ignore[arg-type]
    assert result.retirement == day(expected) and result.retirement_source == source


def test_other_skus_date_does_not_apply() -> None:
    cat = [
        entry(
            "gpt-4o",
            "2024-05-13",
            inference="2026-06-01",
            sku_dates={"Standard": "2026-02-01", "GlobalStandard": None},
        )
    ]
    result = assess(example("support-chat"), _support_dep(), cat, as_of=AS_OF)  # type: ignore[arg-type]
    assert result.retirement == day("2026-06-01")


@pytest.mark.parametrize(
    ("vuo", "repl_kwargs", "risk_date", "finding"),
    [
        (VersionUpgradeOption.NO_AUTO_UPGRADE, {"auto_upgrade": "2026-02-01"}, None, None),
        (
            VersionUpgradeOption.ONCE_NEW_DEFAULT_VERSION_AVAILABLE,
            {"auto_upgrade": "2026-02-01"},
            "2026-02-01",
            "not_pinned",
        ),
        (VersionUpgradeOption.ONCE_CURRENT_VERSION_EXPIRED, {"lead_days": 7}, "2026-05-25", "not_pinned"),
        (VersionUpgradeOption.ONCE_CURRENT_VERSION_EXPIRED, {}, "2026-06-01", "not_pinned"),
        (None, {}, None, "upgrade_option_unknown"),
    ],
)
def test_pending_auto_upgrade_is_a_risk(vuo, repl_kwargs, risk_date, finding) -> None:  # type: ignore[no-untyped-def]
    cat = [
        entry(
            "gpt-4o",
            "2024-05-13",
            inference="2026-06-01",
            replacement=("gpt-4o", "2024-11-20"),
            **repl_kwargs,
        ),
        entry("gpt-4o", "2024-11-20"),
    ]
    result = assess(example("support-chat"), _support_dep(vuo=vuo), cat, as_of=AS_OF)  # type: ignore[arg-type]
    dates = [r.date for r in result.risks]
    assert dates == ([day(risk_date)] if risk_date else [])
    if risk_date:
        assert result.risks[0].to == ModelRef(name="gpt-4o", version="2024-11-20")
        assert "NoAutoUpgrade" in result.risks[0].message
    assert [f.code for f in result.findings if f.code != "drift"] == ([finding] if finding else [])
    assert result.version_upgrade_option == vuo


def test_new_default_without_start_date_is_a_risk_without_date() -> None:
    cat = [entry("gpt-4o", "2024-05-13", inference="2027-01-01"), entry("gpt-4o", "2024-11-20", default=True)]
    dep = _support_dep(vuo=VersionUpgradeOption.ONCE_NEW_DEFAULT_VERSION_AVAILABLE)
    result = assess(example("support-chat"), dep, cat, as_of=AS_OF)  # type: ignore[arg-type]
    assert len(result.risks) == 1 and result.risks[0].date is None
    assert result.risks[0].to == ModelRef(name="gpt-4o", version="2024-11-20")


def test_drift_is_a_finding() -> None:
    cat = [entry("gpt-4o", "2024-05-13", inference="2027-01-01"), entry("gpt-4o", "2024-08-06")]
    result = assess(example("support-chat"), _support_dep("2024-08-06"), cat, as_of=AS_OF)  # type: ignore[arg-type]
    drift = [f for f in result.findings if f.code == "drift"]
    assert drift and "gpt-4o@2024-08-06" in drift[0].message and "gpt-4o@2024-05-13" in drift[0].message


def test_fine_tuned_bundle_deployed_as_its_ft_model_is_not_drift() -> None:
    bundle = example("claims-assistant")
    assert bundle.fine_tuned_model is not None
    dep = deployment("claims-ft", bundle.fine_tuned_model, "1", account="fabrikam-aoai-swc", sku="Standard")
    cat = [entry("gpt-4o-mini", "2024-07-18", inference="2026-03-01", fine_tune="2026-02-01")]
    result = assess(bundle, dep, cat, as_of=AS_OF)
    assert [f.code for f in result.findings] == ["fine_tune_retiring"]
    assert result.fine_tune_retirement == day("2026-02-01") and result.fine_tuned
    other = dep.model_copy(update={"model": ModelRef(name="gpt-4o-mini-2024-07-18.ft-0000", version="1")})
    assert "drift" in [f.code for f in assess(bundle, other, cat, as_of=AS_OF).findings]


def test_target_order_and_reasons() -> None:
    cat = [
        entry("gpt-4o", "2024-05-13", inference="2026-02-10", replacement=("gpt-4o", "2024-08-06")),
        entry("gpt-4o", "2024-08-06"),
        entry("gpt-4o", "2024-11-20", default=True),
        entry("gpt-4o", "2025-03-01"),  # newest GA, not default
        entry("gpt-4o", "2025-06-01", status=LifecycleStatus.PREVIEW),  # preview is never a target
        entry("gpt-4.1", "2025-04-14", default=True),
    ]
    explicit = ModelRef(name="gpt-4.1", version="2025-04-14")
    result = assess(example("support-chat"), _support_dep(), cat, as_of=AS_OF, target=explicit)
    assert [(str(t.model), t.source) for t in result.targets] == [
        ("gpt-4.1@2025-04-14", "explicit"),
        ("gpt-4o@2024-08-06", "replacement_config"),
        ("gpt-4o@2024-11-20", "default_version"),
        ("gpt-4o@2025-03-01", "newest_ga"),
    ]
    assert "replacementConfig" in result.targets[1].why


def test_duplicate_candidates_merge_their_reasons() -> None:
    cat = [
        entry("gpt-4o", "2024-05-13", inference="2026-02-10", replacement=("gpt-4o", "2024-11-20")),
        entry("gpt-4o", "2024-11-20", default=True),
    ]
    result = assess(example("support-chat"), _support_dep(), cat, as_of=AS_OF)
    assert len(result.targets) == 1
    assert "replacementConfig" in result.targets[0].why and "default version" in result.targets[0].why


def test_fine_tuned_bundle_needs_fine_tunable_target() -> None:
    bundle = example("claims-assistant")
    cat = [
        entry("gpt-4o-mini", "2024-07-18", inference="2026-03-01", replacement=("gpt-4o-mini", "2025-01-01")),
        entry(
            "gpt-4o-mini", "2025-01-01", default=True, caps={"chatCompletion": "true", "fineTune": "false"}
        ),
        entry("gpt-4o-mini", "2025-02-01", caps={"chatCompletion": "true"}),
    ]
    result = assess(bundle, None, cat, as_of=AS_OF, deployment_observed=False)
    assert result.targets == []
    assert {str(r.model) for r in result.rejected_targets} == {
        "gpt-4o-mini@2025-01-01",
        "gpt-4o-mini@2025-02-01",
    }
    assert all("fine-tuned" in r.why for r in result.rejected_targets)
    ok = [
        *cat,
        entry("gpt-4o-mini", "2025-03-01", caps={"fineTune": "false"}).model_copy(
            update={"fine_tune_capabilities": {"x": "1"}}
        ),
    ]
    assert [
        str(t.model) for t in assess(bundle, None, ok, as_of=AS_OF, deployment_observed=False).targets
    ] == ["gpt-4o-mini@2025-03-01"]


def test_retired_and_absent_candidates_are_rejected() -> None:
    cat = [
        entry(
            "gpt-35-turbo",
            "0613",
            status=LifecycleStatus.DEPRECATED,
            inference="2025-02-13",
            replacement=("gpt-4o-mini", "2024-07-18"),
        ),
        entry("gpt-35-turbo", "0125", inference="2026-01-10", default=True),
    ]
    dep = deployment("legacy", "gpt-35-turbo", "0613", sku="Standard")
    result = assess(None, dep, cat, as_of=AS_OF)
    assert result.status == St.RETIRED and not result.managed
    reasons = {str(r.model): r.why for r in result.rejected_targets}
    assert "not offered" in reasons["gpt-4o-mini@2024-07-18"]
    assert "retired" in reasons["gpt-35-turbo@0125"]


def test_explicit_target_not_in_catalog_is_kept_with_a_warning() -> None:
    cat = [entry("gpt-4o", "2024-05-13", inference="2027-01-01")]
    result = assess(
        example("support-chat"), _support_dep(), cat, as_of=AS_OF, target=ModelRef(name="gpt-9", version="1")
    )
    assert result.targets[0].source == "explicit" and not result.targets[0].in_catalog
    assert "not in this location's catalog" in result.targets[0].why


def test_version_order_without_dates_uses_retirement() -> None:
    # 0613 sorts after 0125 as text, but 0125 is the newer version (it retires later)
    cat = [
        entry("gpt-35-turbo", "0301", inference="2026-03-01"),
        entry("gpt-35-turbo", "0613", inference="2026-06-01"),
        entry("gpt-35-turbo", "0125", inference="2026-09-01"),
    ]
    bundle = with_model(example("hr-handbook"), version="0301")
    result = assess(bundle, None, cat, as_of=AS_OF, deployment_observed=False)
    assert str(result.targets[0].model) == "gpt-35-turbo@0125"


def test_not_recorded_deployment_is_assessed_from_the_pin() -> None:
    cat = [entry("gpt-4o", "2024-05-13", inference="2026-02-10")]
    result = assess(example("support-chat"), None, cat, as_of=AS_OF, deployment_observed=False)
    assert result.status == St.RETIRING
    assert [f.code for f in result.findings] == ["deployment_not_recorded"]


def test_naive_as_of_is_utc_and_urgency_orders() -> None:
    cat = [entry("gpt-4o", "2024-05-13", inference="2026-02-10")]
    naive = AS_OF.replace(tzinfo=None)
    a = assess(example("support-chat"), _support_dep(), cat, as_of=naive)
    b = assess(example("support-chat"), _support_dep(), cat, as_of=AS_OF + timedelta(days=400))
    assert a.as_of == AS_OF
    assert b.urgency_key() < a.urgency_key()  # retired before retiring
