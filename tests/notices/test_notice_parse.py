"""The notice parser and classifier on every recorded payload and on realistic variants of our own."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from notice_payloads import DROP, PAYLOADS, SUBSCRIPTION, common, dumps, legacy, load, properties

from modelshift.errors import ConfigError
from modelshift.notices import (
    NoticeKind,
    NoticeParseError,
    NoticeProblem,
    NoticeSchema,
    classify,
    parse_notice,
)
from modelshift.notices.text import extract_models, html_to_text

RETIRE = NoticeKind.AZURE_OPENAI_RETIREMENT
OTHER = NoticeKind.AZURE_OPENAI_OTHER
UNRELATED = NoticeKind.UNRELATED


# --- every recorded payload ---------------------------------------------------------------------------------

RECORDED = [
    # file, schema, tracking id, stage, kind, regions, services
    (
        "servicehealth-alert-webhook.common-schema.test-action.json",
        NoticeSchema.COMMON,
        "TEST-TTT",
        "Resolved",
        UNRELATED,
        ["Global"],
        ["AzureServiceName"],
    ),
    (
        "servicehealth-alert-webhook.activitylog-legacy-schema.json",
        NoticeSchema.ACTIVITY_LOG,
        "0NIH-U2O",
        "Active",
        UNRELATED,
        ["Australia East"],
        ["Virtual Machines"],
    ),
    (
        "resourcehealth-alert.common-schema.test-action.json",
        NoticeSchema.COMMON,
        None,
        None,
        UNRELATED,
        [],
        [],
    ),
    ("common-alert-schema.metric-sample.json", NoticeSchema.COMMON, None, None, UNRELATED, [], []),
    (
        "aoai-retirement.common-schema.json",
        NoticeSchema.COMMON,
        "4L7Q-9RZ",
        "Active",
        RETIRE,
        ["East US", "Sweden Central"],
        ["Azure OpenAI Service"],
    ),
    (
        "aoai-retirement-reminder.activitylog-legacy-schema.json",
        NoticeSchema.ACTIVITY_LOG,
        "ZT2K-5PQ",
        "Active",
        RETIRE,
        ["West Europe"],
        ["Azure OpenAI Service"],
    ),
]


def test_every_payload_file_has_a_row() -> None:
    assert sorted(p.name for p in PAYLOADS.glob("*.json")) == sorted(row[0] for row in RECORDED)


@pytest.mark.parametrize(("name", "schema", "tracking", "stage", "kind", "regions", "services"), RECORDED)
def test_recorded_payloads(
    name: str,
    schema: NoticeSchema,
    tracking: str | None,
    stage: str | None,
    kind: NoticeKind,
    regions: list[str],
    services: list[str],
) -> None:
    notice = parse_notice((PAYLOADS / name).read_bytes())
    assert notice.schema_id is schema
    assert notice.tracking_id == tracking
    assert notice.stage == stage
    assert notice.regions == regions
    assert notice.services == services
    assert classify(notice).kind is kind


def test_legacy_sample_fields() -> None:
    notice = parse_notice(load("servicehealth-alert-webhook.activitylog-legacy-schema.json"))
    assert notice.incident_type == "Incident"
    assert notice.communication_id == "636439673646212912"
    assert notice.impact_start == datetime(2017, 10, 18, 2, 48, tzinfo=UTC)
    assert notice.event_time == datetime(2017, 10, 18, 23, 49, 25, 373608, tzinfo=UTC)
    assert notice.subscription_ids == ["cccc2c2c-dd3d-ee4e-ff5f-aaaaaa6a6a6a"]
    assert notice.monitor_condition == "Activated"
    assert notice.status == "Active"
    assert '"deallocated"' in notice.text  # &quot; decoded
    assert notice.key == "0NIH-U2O|Active|636439673646212912"


def test_common_sample_fields() -> None:
    notice = parse_notice(load("servicehealth-alert-webhook.common-schema.test-action.json"))
    assert notice.text == "ThisisatestfromServiceHealthAlert"  # HTML stripped
    assert notice.impact_mitigation == datetime(2025, 4, 15, 18, 20, 36, 256000, tzinfo=UTC)
    assert notice.subscription_ids == ["aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"]
    assert notice.monitor_condition == "Fired"
    assert notice.status == "Resolved"
    assert notice.communication_id == "11223344556677"


def test_retirement_notice_fields_and_summary() -> None:
    notice = parse_notice(load("aoai-retirement.common-schema.json"))
    assert notice.concerns_azure_openai
    assert [(m.ref, m.retirement_date, m.replacement) for m in notice.models] == [
        ("gpt-4o@2024-05-13", date(2026, 3, 31), False),
        ("gpt-4.1@2025-04-14", None, True),
    ]
    assert notice.retirement_dates == [date(2026, 3, 31)]
    summary = notice.summary()
    assert summary["tracking_id"] == "4L7Q-9RZ"
    assert summary["model_refs"] == ["gpt-4o@2024-05-13", "gpt-4.1@2025-04-14"]
    assert summary["retirement_dates"] == ["2026-03-31"]
    assert summary["notice_id"] == notice.notice_id
    json.dumps(summary)  # plain JSON


def test_notice_id_is_deterministic_and_key_based() -> None:
    a = parse_notice(common())
    b = parse_notice(legacy())  # same properties, other schema: the same notice
    c = parse_notice(common(properties(stage="Resolved")))
    assert a.notice_id == b.notice_id
    assert a.notice_id != c.notice_id


def test_missing_communication_id_falls_back_to_content_hash() -> None:
    a = parse_notice(common(properties(communicationId=DROP)))
    b = parse_notice(common(properties(communicationId=DROP)))
    c = parse_notice(common(properties(communicationId=DROP, communication="<p>other text</p>")))
    assert a.key == b.key and a.key.startswith("4L7Q-9RZ|Active|sha256:")
    assert a.key != c.key


# --- model mentions ----------------------------------------------------------------------------------------

D = date(2026, 3, 31)
MODEL_ROWS: list[tuple[str, list[tuple[str, date | None]]]] = [
    ("gpt-4o (2024-05-13) will be retired on March 31, 2026.", [("gpt-4o@2024-05-13", D)]),
    ("gpt-4o version 2024-05-13 retires on 2026-03-31.", [("gpt-4o@2024-05-13", D)]),
    ("gpt-35-turbo 0613 will be retired on 31 March 2026.", [("gpt-35-turbo@0613", D)]),
    ("GPT-4 version 0125-Preview is deprecated and retires on 03/31/2026.", [("gpt-4@0125-Preview", D)]),
    ("gpt-4o-mini, version 2024-07-18 will retire on Mar 31, 2026.", [("gpt-4o-mini@2024-07-18", D)]),
    ("text-embedding-ada-002 (version 2) retirement: March 31st, 2026.", [("text-embedding-ada-002@2", D)]),
    ("o1-preview (2024-09-12) will be retired on March 31, 2026", [("o1-preview@2024-09-12", D)]),
    (
        "GPT-3.5 Turbo versions 0301 and 0613 retire on 2026-03-31.",
        [("gpt-35-turbo@0301", D), ("gpt-35-turbo@0613", D)],
    ),
    ("GPT-4 Turbo (2024-04-09) retires on March 31, 2026.", [("gpt-4@turbo-2024-04-09", D)]),
    ("GPT-4o mini will be retired on March 31, 2026.", [("gpt-4o-mini", D)]),
    ("gpt-4o-2024-05-13 is being retired on 2026-03-31.", [("gpt-4o@2024-05-13", D)]),
    ("GPT4o (2024-08-06) retires 2026-03-31.", [("gpt-4o@2024-08-06", D)]),
    (
        "gpt-35-turbo 0613 will retire on Feb 13, 2025 and gpt-4 0613 on June 6, 2025.",
        [("gpt-35-turbo@0613", date(2025, 2, 13)), ("gpt-4@0613", date(2025, 6, 6))],
    ),
    # a list under a heading that states the one date
    (
        "The following models will be retired on March 31, 2026:\n"
        "gpt-4o (2024-05-13)\ngpt-4o-mini (2024-07-18)",
        [("gpt-4o@2024-05-13", D), ("gpt-4o-mini@2024-07-18", D)],
    ),
    # one model, two dates: the one next to "retire" wins
    (
        "From January 15, 2026 no new deployments; gpt-4 0613 retires on March 31, 2026.",
        [("gpt-4@0613", D)],
    ),
    # no retirement words: models, no dates
    ("gpt-4o (2024-11-20) is now generally available since 2025-01-01.", [("gpt-4o@2024-11-20", None)]),
    # impossible dates are skipped, not fatal
    ("gpt-4 0613 retires on 02/30/2026.", [("gpt-4@0613", None)]),
    # named twice: one mention
    ("gpt-4o (2024-05-13) retires March 31, 2026. Again: gpt-4o (2024-05-13).", [("gpt-4o@2024-05-13", D)]),
    # not model names
    ("Upgrade your gpt4all or rgpt-4 tool; also 4o and o9 are not models.", []),
]


@pytest.mark.parametrize(("text", "expected"), MODEL_ROWS)
def test_extract_models(text: str, expected: list[tuple[str, date | None]]) -> None:
    mentions, _ = extract_models(text)
    assert [(m.ref, m.retirement_date) for m in mentions if not m.replacement] == expected


@pytest.mark.parametrize(
    ("text", "replacements"),
    [
        (
            "gpt-4o (2024-05-13) retires on March 31, 2026; migrate to gpt-4.1 (2025-04-14).",
            ["gpt-4.1@2025-04-14"],
        ),
        ("Replacement model: gpt-5-mini. gpt-4o-mini retires on 2026-03-31.", ["gpt-5-mini"]),
        ("Use gpt-4.1 instead of gpt-4o-2024-05-13 before retirement on 2026-03-31.", ["gpt-4.1"]),
        (
            "GPT-4o (2024-05-13) retires March 31, 2026; upgrade to GPT-4o (2024-11-20).",
            ["gpt-4o@2024-11-20"],
        ),
    ],
)
def test_replacement_models_are_not_retiring(text: str, replacements: list[str]) -> None:
    mentions, _ = extract_models(text)
    assert [m.ref for m in mentions if m.replacement] == replacements
    assert all(m.retirement_date is None for m in mentions if m.replacement)
    assert any(not m.replacement and m.retirement_date == D for m in mentions)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>a</p><p>b</p>", "a\nb"),
        ("<ul><li>x</li><li>y &amp; z</li></ul>", "x\ny & z"),
        ("plain   text&nbsp;here", "plain text here"),
        ("&amp;quot;double&amp;quot;", '"double"'),
        ("<table><tr><td>A</td><td>B</td></tr></table>", "A B"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


# --- classification on our own variants ---------------------------------------------------------------------

MULTI_HTML = (
    "<p>Azure OpenAI Service: retirement of older model versions.</p><ul>"
    "<li>gpt-35-turbo 0613 and GPT-35-Turbo 1106 retire on November 14, 2025</li>"
    "<li>GPT-4 version 0125-Preview retires on 2026-01-15</li></ul>"
)
ARRAY_SERVICES = [
    {
        "ImpactedRegions": [{"RegionName": "East US 2"}, {"RegionName": "Japan East"}],
        "ServiceName": "Azure OpenAI Service",
    },
    {"ImpactedRegions": [{"RegionName": "East US 2"}], "ServiceName": "Azure AI Foundry"},
]
CLASSIFY_ROWS: list[tuple[str, dict[str, Any], NoticeKind, str]] = [
    ("action-required common", common(), RETIRE, "gpt-4o@2024-05-13"),
    ("action-required legacy", legacy(), RETIRE, "gpt-4o@2024-05-13"),
    (
        "informational reminder, warning level (legacy)",
        legacy(properties(incidentType="Informational"), level="Warning"),
        RETIRE,
        "retirement 2026-03-31",
    ),
    (
        "array impactedServices, two services",
        common(properties(impactedServices=ARRAY_SERVICES, service=DROP, region=DROP)),
        RETIRE,
        "gpt-4o",
    ),
    (
        "several models, two dates",
        common(properties(communication=MULTI_HTML, defaultLanguageContent=DROP)),
        RETIRE,
        "gpt-35-turbo@0613, gpt-35-turbo@1106, gpt-4@0125-Preview",
    ),
    (
        "no communication, defaultLanguageContent only",
        common(properties(communication=DROP)),
        RETIRE,
        "gpt-4o@2024-05-13",
    ),
    (
        "umbrella service naming an OpenAI model",
        common(properties(service="Azure AI Services", impactedServices=DROP)),
        RETIRE,
        "gpt-4o",
    ),
    (
        "Azure OpenAI retirement without models",
        common(
            properties(
                communication="<p>Some Azure OpenAI models will be retired soon.</p>", title="Retirements"
            )
        ),
        RETIRE,
        "no model named",
    ),
    ("resolved advisory", common(properties(stage="Resolved")), OTHER, "stage Resolved"),
    (
        "incident",
        common(
            properties(incidentType="Incident", title="Degraded latency", communication="<p>Mitigated.</p>")
        ),
        OTHER,
        "Incident",
    ),
    (
        "maintenance",
        legacy(properties(incidentType="Maintenance", stage="Planned", maintenanceId="MNT-1")),
        OTHER,
        "Maintenance",
    ),
    (
        "advisory that is not a retirement",
        common(
            properties(
                title="New quota policy",
                communication="<p>Azure OpenAI Service quota limits change for GlobalStandard.</p>",
            )
        ),
        OTHER,
        "speaks of no retirement",
    ),
    (
        "umbrella service, speech only",
        common(
            properties(
                service="Azure AI Services",
                impactedServices=DROP,
                title="Azure AI Speech: retirement of voices",
                communication="<p>Standard voices will be retired on March 31, 2026.</p>",
            )
        ),
        UNRELATED,
        "not Azure OpenAI",
    ),
    (
        "other service",
        common(properties(service="Virtual Machines", impactedServices=DROP, communication="<p>VMs.</p>")),
        UNRELATED,
        "Virtual Machines",
    ),
    (
        "resource health",
        load("resourcehealth-alert.common-schema.test-action.json"),
        UNRELATED,
        "Resource Health",
    ),
    ("metric alert", load("common-alert-schema.metric-sample.json"), UNRELATED, "Platform"),
    ("legacy administrative", legacy(eventSource="Administrative"), UNRELATED, "Administrative"),
]


@pytest.mark.parametrize(
    ("label", "payload", "kind", "reason_part"), CLASSIFY_ROWS, ids=[r[0] for r in CLASSIFY_ROWS]
)
def test_classify(label: str, payload: dict[str, Any], kind: NoticeKind, reason_part: str) -> None:
    verdict = classify(parse_notice(dumps(payload)))
    assert verdict.kind is kind
    assert reason_part in verdict.reason


def test_array_and_escaped_impacted_services_agree() -> None:
    escaped = parse_notice(common(properties(impactedServices=json.dumps(ARRAY_SERVICES))))
    array = parse_notice(common(properties(impactedServices=ARRAY_SERVICES)))
    assert escaped.regions == array.regions == ["East US 2", "Japan East", "East US", "Sweden Central"]
    assert escaped.services == array.services == ["Azure OpenAI Service", "Azure AI Foundry"]


def test_multi_model_dates() -> None:
    notice = parse_notice(
        common(properties(communication=MULTI_HTML, title="Azure OpenAI model retirements"))
    )
    assert [(m.ref, m.retirement_date) for m in notice.models] == [
        ("gpt-35-turbo@0613", date(2025, 11, 14)),
        ("gpt-35-turbo@1106", date(2025, 11, 14)),
        ("gpt-4@0125-Preview", date(2026, 1, 15)),
    ]
    assert notice.retirement_dates == [date(2025, 11, 14), date(2026, 1, 15)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-05T17:00:00.0000000Z", datetime(2026, 1, 5, 17, tzinfo=UTC)),
        ("2026-01-05T17:00:00.1234567+02:00", datetime(2026, 1, 5, 15, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-05T17:00:00", datetime(2026, 1, 5, 17, tzinfo=UTC)),  # naive means UTC
        ("1/5/2026 5:00:00 PM", datetime(2026, 1, 5, 17, tzinfo=UTC)),
        ("", None),
    ],
)
def test_times_are_aware_utc(raw: str, expected: datetime | None) -> None:
    assert parse_notice(common(properties(impactStartTime=raw))).impact_start == expected


def test_subscription_from_common_targets_and_legacy_field() -> None:
    assert parse_notice(common()).subscription_ids == [SUBSCRIPTION]
    assert parse_notice(legacy()).subscription_ids == [SUBSCRIPTION]


def test_property_keys_match_regardless_of_case() -> None:
    props = {k[0].upper() + k[1:]: v for k, v in properties().items()}
    assert parse_notice(common(props)).tracking_id == "4L7Q-9RZ"


def test_numeric_communication_id_is_accepted() -> None:
    assert parse_notice(common(properties(communicationId=638712345678901234))).communication_id == (
        "638712345678901234"
    )


# --- bad input ----------------------------------------------------------------------------------------------

BAD_ROWS: list[tuple[str, bytes | Any, NoticeProblem, str | None]] = [
    ("not json", b"{not json", NoticeProblem.NOT_JSON, None),
    ("not utf-8", b"\xff\xfe\x00", NoticeProblem.NOT_JSON, None),
    ("empty body", b"", NoticeProblem.NOT_JSON, None),
    ("json array", b"[]", NoticeProblem.WRONG_TYPE, "$"),
    ("json string", b'"hello"', NoticeProblem.WRONG_TYPE, "$"),
    ("no schemaId", {"data": {}}, NoticeProblem.MISSING_FIELD, "schemaId"),
    (
        "unknown schema",
        {"schemaId": "AzureMonitorMetricAlert", "data": {}},
        NoticeProblem.UNKNOWN_SCHEMA,
        "schemaId",
    ),
    ("no data", {"schemaId": "azureMonitorCommonAlertSchema"}, NoticeProblem.MISSING_FIELD, "data"),
    (
        "data is a list",
        {"schemaId": "azureMonitorCommonAlertSchema", "data": []},
        NoticeProblem.WRONG_TYPE,
        "data",
    ),
    (
        "no essentials",
        {"schemaId": "azureMonitorCommonAlertSchema", "data": {}},
        NoticeProblem.MISSING_FIELD,
        "data.essentials",
    ),
    (
        "missing trackingId",
        common(properties(trackingId=DROP)),
        NoticeProblem.MISSING_FIELD,
        "data.alertContext.properties.trackingId",
    ),
    (
        "missing stage (legacy)",
        legacy(properties(stage=DROP)),
        NoticeProblem.MISSING_FIELD,
        "data.context.activityLog.properties.stage",
    ),
    (
        "trackingId is a number",
        common(properties(trackingId=12345)),
        NoticeProblem.WRONG_TYPE,
        "data.alertContext.properties.trackingId",
    ),
    (
        "trackingId too long",
        common(properties(trackingId="X" * 101)),
        NoticeProblem.BAD_VALUE,
        "data.alertContext.properties.trackingId",
    ),
    (
        "stage with spaces",
        common(properties(stage="In progress now")),
        NoticeProblem.BAD_VALUE,
        "data.alertContext.properties.stage",
    ),
    (
        "impactedServices broken string",
        common(properties(impactedServices="[{")),
        NoticeProblem.BAD_VALUE,
        "data.alertContext.properties.impactedServices",
    ),
    (
        "impactedServices object",
        common(properties(impactedServices={"ServiceName": "x"})),
        NoticeProblem.WRONG_TYPE,
        "data.alertContext.properties.impactedServices",
    ),
    (
        "region entry is a string",
        common(
            properties(
                impactedServices=[{"ServiceName": "Azure OpenAI Service", "ImpactedRegions": ["East US"]}]
            )
        ),
        NoticeProblem.WRONG_TYPE,
        "data.alertContext.properties.impactedServices[0].ImpactedRegions[0]",
    ),
    (
        "bad time",
        common(properties(impactStartTime="yesterday")),
        NoticeProblem.BAD_VALUE,
        "data.alertContext.properties.impactStartTime",
    ),
    (
        "communication is a list",
        common(properties(communication=["a"])),
        NoticeProblem.WRONG_TYPE,
        "data.alertContext.properties.communication",
    ),
    (
        "properties is a string",
        common(properties())
        | {
            "data": {
                "essentials": {"monitoringService": "ServiceHealth"},
                "alertContext": {"properties": "x"},
            }
        },
        NoticeProblem.WRONG_TYPE,
        "data.alertContext.properties",
    ),
    (
        "alertTargetIDs is a string",
        common(alertTargetIDs="/subscriptions/x"),
        NoticeProblem.WRONG_TYPE,
        "data.essentials.alertTargetIDs",
    ),
]


@pytest.mark.parametrize(("label", "raw", "problem", "field"), BAD_ROWS, ids=[r[0] for r in BAD_ROWS])
def test_bad_input_names_the_problem(
    label: str, raw: bytes | Any, problem: NoticeProblem, field: str | None
) -> None:
    body = raw if isinstance(raw, bytes) else dumps(raw)
    with pytest.raises(NoticeParseError) as caught:
        parse_notice(body)
    assert caught.value.problem is problem
    assert caught.value.field == field
    assert isinstance(caught.value, ConfigError)  # the CLI turns it into exit 2
    if field:
        assert field in caught.value.message
