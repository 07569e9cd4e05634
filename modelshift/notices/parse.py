"""Parse Azure Monitor alert payloads (common alert schema and legacy activity-log schema) into a ``Notice``.

Pure: bytes or a decoded JSON value in, a ``Notice`` out, or a ``NoticeParseError`` that names the field.
Field names follow Azure's docs (contracts README §4); lookups inside ``properties`` ignore case because
Azure's own samples mix ``IsSynthetic`` and ``isHIR``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from modelshift.clock import ensure_utc
from modelshift.notices.model import (
    Classification,
    Notice,
    NoticeKind,
    NoticeParseError,
    NoticeProblem,
    NoticeSchema,
)
from modelshift.notices.text import extract_models, html_to_text, mentions_retirement

#: service names under which Azure files Azure OpenAI notices (compared lowercased)
AZURE_OPENAI_SERVICES = frozenset(
    {
        "azure openai service",
        "azure openai",
        "azure openai in foundry models",
        "azure ai foundry models",
        "foundry models",
        "azure openai service in azure ai foundry",
    }
)
#: umbrella services that carry Azure OpenAI notices among others (Speech, Vision, ...)
AZURE_AI_UMBRELLA_SERVICES = frozenset(
    {
        "azure ai services",
        "azure ai foundry",
        "cognitive services",
        "azure cognitive services",
        "azure ai studio",
    }
)
_ADVISORY_TYPES = frozenset({"actionrequired", "informational"})
_CLOSED_STAGES = frozenset({"resolved", "canceled", "cancelled", "complete", "rca"})


def parse_notice(raw: bytes | str | Any) -> Notice:
    """Parse one webhook body (bytes, text, or an already-decoded JSON value) into a ``Notice``."""
    if isinstance(raw, bytes | str):
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise NoticeParseError(
                NoticeProblem.NOT_JSON,
                f"the body is not JSON ({exc}); Azure action groups post a JSON alert payload",
            ) from None
    else:
        payload = raw
    body = _obj(payload, "$")
    schema_id = body.get("schemaId")
    if schema_id == NoticeSchema.COMMON:
        return _parse_common(body)
    if schema_id == NoticeSchema.ACTIVITY_LOG:
        return _parse_activity_log(body)
    if schema_id is None:
        raise NoticeParseError(
            NoticeProblem.MISSING_FIELD,
            "missing field schemaId; expected an Azure Monitor alert with schemaId "
            f"{NoticeSchema.COMMON.value!r} or {NoticeSchema.ACTIVITY_LOG.value!r}",
            field="schemaId",
        )
    raise NoticeParseError(
        NoticeProblem.UNKNOWN_SCHEMA,
        f"unknown schemaId {str(schema_id)[:80]!r}; modelshift reads {NoticeSchema.COMMON.value!r} and "
        f"{NoticeSchema.ACTIVITY_LOG.value!r} (turn on the common alert schema in the action group)",
        field="schemaId",
    )


def _parse_common(body: Mapping[str, Any]) -> Notice:
    data = _obj(_require(body, "data", "$"), "data")
    essentials = _obj(_require(data, "essentials", "data"), "data.essentials")
    monitoring_service = _str(
        _require(essentials, "monitoringService", "data.essentials"), "data.essentials.monitoringService"
    )
    targets = _list(essentials.get("alertTargetIDs"), "data.essentials.alertTargetIDs")
    subscription_ids = _subscriptions([_str(t, "data.essentials.alertTargetIDs[]") for t in targets])
    common = {
        "schema_id": NoticeSchema.COMMON,
        "monitoring_service": monitoring_service,
        "monitor_condition": _opt_str(essentials.get("monitorCondition"), "data.essentials.monitorCondition"),
        "subscription_ids": subscription_ids,
    }
    if _squash(monitoring_service) != "servicehealth":
        return Notice(
            is_service_health=False, title=_opt_str(essentials.get("alertRule"), "alertRule") or "", **common
        )
    context = _obj(_require(data, "alertContext", "data"), "data.alertContext")
    fired = _opt_time(essentials.get("firedDateTime"), "data.essentials.firedDateTime")
    return _service_health(context, "data.alertContext", fallback_time=fired, **common)


def _parse_activity_log(body: Mapping[str, Any]) -> Notice:
    data = _obj(_require(body, "data", "$"), "data")
    context = _obj(_require(data, "context", "data"), "data.context")
    log = _obj(_require(context, "activityLog", "data.context"), "data.context.activityLog")
    subscription = _opt_str(log.get("subscriptionId"), "data.context.activityLog.subscriptionId")
    event_source = _opt_str(log.get("eventSource"), "data.context.activityLog.eventSource") or ""
    common = {
        "schema_id": NoticeSchema.ACTIVITY_LOG,
        "monitoring_service": event_source,
        "monitor_condition": _opt_str(data.get("status"), "data.status"),
        "subscription_ids": [subscription] if subscription else [],
    }
    if _squash(event_source) != "servicehealth":
        return Notice(is_service_health=False, **common)
    return _service_health(log, "data.context.activityLog", fallback_time=None, **common)


def _service_health(
    context: Mapping[str, Any], where: str, *, fallback_time: datetime | None, **common: Any
) -> Notice:
    props = _Caseless(_obj(_require(context, "properties", where), f"{where}.properties"))
    at = f"{where}.properties"
    communication_html = _opt_str(props.get("communication"), f"{at}.communication") or _opt_str(
        props.get("defaultLanguageContent"), f"{at}.defaultLanguageContent"
    )
    title = _str(_require(props, "title", at), f"{at}.title")
    text = html_to_text(communication_html or "")
    services, regions = _impacted(props.get("impactedServices"), f"{at}.impactedServices")
    service = _opt_str(props.get("service"), f"{at}.service")
    if service and service not in services:
        services.insert(0, service)
    region = _opt_str(props.get("region"), f"{at}.region")
    for name in (r.strip() for r in (region or "").split(",")):
        if name and name not in regions:
            regions.append(name)
    models, retirement_dates = extract_models(f"{html_to_text(title)}.\n{text}")
    return Notice(
        is_service_health=True,
        tracking_id=_ident(_require(props, "trackingId", at), f"{at}.trackingId"),
        incident_type=_ident(_require(props, "incidentType", at), f"{at}.incidentType"),
        stage=_ident(_require(props, "stage", at), f"{at}.stage"),
        title=html_to_text(title),
        services=services,
        regions=regions,
        impact_start=_opt_time(props.get("impactStartTime"), f"{at}.impactStartTime"),
        impact_mitigation=_opt_time(props.get("impactMitigationTime"), f"{at}.impactMitigationTime"),
        event_time=_opt_time(context.get("eventTimestamp"), f"{where}.eventTimestamp") or fallback_time,
        communication_id=_opt_id(props.get("communicationId"), f"{at}.communicationId"),
        status=_opt_str(context.get("status"), f"{where}.status"),
        text=text,
        concerns_azure_openai=_concerns_azure_openai(services, title, text, bool(models)),
        models=models,
        retirement_dates=retirement_dates,
        content_hash=hashlib.sha256((communication_html or title).encode()).hexdigest()[:40],
        **common,
    )


def classify(notice: Notice) -> Classification:
    """Whether a notice announces an Azure OpenAI retirement, is other Azure OpenAI news, or is unrelated."""
    if not notice.is_service_health:
        return Classification(
            kind=NoticeKind.UNRELATED,
            reason=f"not a Service Health notice (monitoring service {notice.monitoring_service or '?'!r})",
        )
    if not notice.concerns_azure_openai:
        return Classification(
            kind=NoticeKind.UNRELATED,
            reason=f"Service Health notice for {', '.join(notice.services) or '?'}, not Azure OpenAI",
        )
    incident_type = (notice.incident_type or "").lower()
    stage = (notice.stage or "").lower()
    if incident_type not in _ADVISORY_TYPES:
        return Classification(
            kind=NoticeKind.AZURE_OPENAI_OTHER,
            reason=f"Azure OpenAI {notice.incident_type} notice, not an ActionRequired/Informational one",
        )
    if stage in _CLOSED_STAGES:
        return Classification(
            kind=NoticeKind.AZURE_OPENAI_OTHER,
            reason=f"Azure OpenAI advisory in stage {notice.stage}: nothing to act on",
        )
    if not mentions_retirement(f"{notice.title}\n{notice.text}"):
        return Classification(
            kind=NoticeKind.AZURE_OPENAI_OTHER,
            reason="Azure OpenAI advisory that speaks of no retirement, deprecation or upgrade",
        )
    retiring = [m.ref for m in notice.models if not m.replacement]
    named = f"models {', '.join(retiring)}" if retiring else "no model named (scan every bundle)"
    dates = ", ".join(d.isoformat() for d in notice.retirement_dates) or "no date stated"
    return Classification(
        kind=NoticeKind.AZURE_OPENAI_RETIREMENT,
        reason=f"Azure OpenAI {notice.incident_type} retirement advisory: {named}; retirement {dates}",
    )


# --- helpers ------------------------------------------------------------------------------------------------


class _Caseless(Mapping[str, Any]):
    """A read-only view of a JSON object whose keys match regardless of case."""

    def __init__(self, source: Mapping[str, Any]) -> None:
        self._source = source
        self._lower = {str(k).lower(): k for k in source}

    def __getitem__(self, key: str) -> Any:
        return self._source[self._lower[key.lower()]]

    def __iter__(self) -> Any:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower


def _squash(value: str) -> str:
    return re.sub(r"[\s_-]+", "", value).lower()


def _concerns_azure_openai(services: list[str], title: str, text: str, names_models: bool) -> bool:
    lowered = {s.strip().lower() for s in services}
    if lowered & AZURE_OPENAI_SERVICES:
        return True
    # under an umbrella service, only a notice that names OpenAI or an OpenAI model is about us
    if lowered & AZURE_AI_UMBRELLA_SERVICES:
        return names_models or "openai" in f"{title} {text}".lower()
    return False


def _impacted(value: Any, where: str) -> tuple[list[str], list[str]]:
    if value is None:
        return [], []
    if isinstance(value, str):
        # real events carry impactedServices as an escaped JSON string; the doc's test action as an array
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            raise NoticeParseError(
                NoticeProblem.BAD_VALUE,
                f"{where} is a string but not the JSON array Azure escapes",
                field=where,
            ) from None
    services: list[str] = []
    regions: list[str] = []
    for i, item in enumerate(_list(value, where)):
        entry = _Caseless(_obj(item, f"{where}[{i}]"))
        name = _opt_str(entry.get("ServiceName"), f"{where}[{i}].ServiceName")
        if name and name not in services:
            services.append(name)
        for j, region in enumerate(_list(entry.get("ImpactedRegions"), f"{where}[{i}].ImpactedRegions")):
            at = f"{where}[{i}].ImpactedRegions[{j}]"
            region_name = _opt_str(_Caseless(_obj(region, at)).get("RegionName"), f"{at}.RegionName")
            if region_name and region_name not in regions:
                regions.append(region_name)
    return services, regions


def _subscriptions(target_ids: list[str]) -> list[str]:
    found: list[str] = []
    for target in target_ids:
        match = re.match(r"/subscriptions/([^/]+)", target, re.IGNORECASE)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj or obj[key] is None:
        path = key if where == "$" else f"{where}.{key}"
        raise NoticeParseError(NoticeProblem.MISSING_FIELD, f"missing field {path}", field=path)
    return obj[key]


def _type_error(where: str, expected: str, value: Any) -> NoticeParseError:
    return NoticeParseError(
        NoticeProblem.WRONG_TYPE, f"{where} must be {expected}, got {type(value).__name__}", field=where
    )


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _type_error(where, "a JSON object", value)
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(where, "a JSON array", value)
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _type_error(where, "a string", value)
    try:
        # JSON may escape lone surrogates ("\\ud800"); they cannot be stored, hashed or sent on as UTF-8
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NoticeParseError(
            NoticeProblem.BAD_VALUE, f"{where} holds invalid Unicode (a lone surrogate escape)", field=where
        ) from None
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def _ident(value: Any, where: str) -> str:
    # these end up in the dedupe key and the Prefect resource id: short, printable, no spaces
    text = _str(value, where).strip()
    if not _IDENT.fullmatch(text):
        raise NoticeParseError(
            NoticeProblem.BAD_VALUE,
            f"{where} must be 1-100 letters, digits, '-', '_', '.' or ':', got {text[:40]!r}",
            field=where,
        )
    return text


def _opt_id(value: Any, where: str) -> str | None:
    # communicationId is a long decimal string; accept a JSON integer too (some relays re-encode it)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        return None
    return _ident(value, where)


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _opt_time(value: Any, where: str) -> datetime | None:
    text = _opt_str(value, where)
    if not text:
        return None
    # Azure writes 7 fractional digits (.0000000Z); Python reads at most 6
    candidate = _FRACTION.sub(r"\1", text.strip())
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            parsed = datetime.strptime(candidate, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=UTC)
        except ValueError:
            raise NoticeParseError(
                NoticeProblem.BAD_VALUE, f"{where} is not an ISO-8601 time: {text[:60]!r}", field=where
            ) from None
    return ensure_utc(parsed)
