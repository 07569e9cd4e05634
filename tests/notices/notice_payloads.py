"""Realistic Service Health payloads for the notice tests, built from the shapes of the recorded samples.

``common(...)`` and ``legacy(...)`` wrap Service Health ``properties`` in the common alert schema and in the
legacy activity-log schema, exactly as the recorded samples in ``payloads/`` do.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).resolve().parent / "payloads"
SUBSCRIPTION = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"

RETIREMENT_HTML = (
    "<p><strong>You're receiving this notice because you use Azure OpenAI Service.</strong></p>"
    "<p>On March 31, 2026, gpt-4o (2024-05-13) will be retired. After this date, deployments of this "
    "model version will stop serving requests.</p>"
    "<p><strong>Required action</strong></p><p>To avoid disruption, migrate your deployments to "
    "gpt-4.1 (2025-04-14) before the retirement date.</p>"
)


def load(name: str) -> dict[str, Any]:
    """A recorded payload from ``payloads/``."""
    loaded: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return loaded


def properties(**overrides: Any) -> dict[str, Any]:
    """Service Health ``properties`` of an Azure OpenAI retirement advisory; ``overrides`` replace keys."""
    props: dict[str, Any] = {
        "title": "Action recommended: Migrate to a newer GPT-4o version before March 31, 2026",
        "service": "Azure OpenAI Service",
        "region": "East US, Sweden Central",
        "communication": RETIREMENT_HTML,
        "incidentType": "ActionRequired",
        "trackingId": "4L7Q-9RZ",
        "impactStartTime": "2026-01-05T17:00:00.0000000Z",
        "impactMitigationTime": "2026-03-31T23:59:00.0000000Z",
        "impactedServices": json.dumps(
            [
                {
                    "ImpactedRegions": [{"RegionName": "East US"}, {"RegionName": "Sweden Central"}],
                    "ServiceName": "Azure OpenAI Service",
                }
            ]
        ),
        "impactedServicesTableRows": "<tr><td>Azure OpenAI Service</td><td>East US<br>Sweden Central</td>",
        "defaultLanguageTitle": "Action recommended: Migrate to a newer GPT-4o version before March 31, 2026",
        "defaultLanguageContent": RETIREMENT_HTML,
        "stage": "Active",
        "communicationId": "638712345678901234",
        "isHIR": "false",
        "version": "0.1.1",
    }
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not DROP}


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: an override value that removes the key
DROP: Any = _Drop()


def common(props: dict[str, Any] | None = None, **essentials: Any) -> dict[str, Any]:
    """A common-alert-schema Service Health alert (shape of the recorded test-action payload)."""
    base = load("servicehealth-alert-webhook.common-schema.test-action.json")
    payload = copy.deepcopy(base)
    payload["data"]["alertContext"]["properties"] = props if props is not None else properties()
    payload["data"]["alertContext"]["status"] = "Active"
    payload["data"]["essentials"]["monitorCondition"] = "Fired"
    payload["data"]["essentials"]["alertTargetIDs"] = [f"/subscriptions/{SUBSCRIPTION}"]
    payload["data"]["essentials"].update(essentials)
    return payload


def legacy(props: dict[str, Any] | None = None, **activity_log: Any) -> dict[str, Any]:
    """A legacy activity-log-schema Service Health alert (shape of the recorded legacy payload)."""
    payload = copy.deepcopy(load("servicehealth-alert-webhook.activitylog-legacy-schema.json"))
    log = payload["data"]["context"]["activityLog"]
    log["properties"] = props if props is not None else properties()
    log["subscriptionId"] = SUBSCRIPTION
    log.update(activity_log)
    return payload


def dumps(payload: Any) -> bytes:
    """The body as Azure posts it."""
    return json.dumps(payload).encode()
