"""The routing transport: which URLs it rewrites and how, and the routes it refuses."""

from __future__ import annotations

import pytest

from modelshift.errors import ConfigError
from modelshift.platforms.azure.transport import emulator_routes, resolve_route, routing_transport

ROUTES = emulator_routes("http://127.0.0.1:8765/")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://management.azure.com/subscriptions/s/jobs/j?api-version=2024-10-01-preview",
            "http://127.0.0.1:8765/subscriptions/s/jobs/j?api-version=2024-10-01-preview",
        ),
        (
            "https://wsstore.blob.core.windows.net/container/a/b.jsonl",
            "http://127.0.0.1:8765/_blob/wsstore/container/a/b.jsonl",
        ),
        (
            "https://eastus2.api.azureml.ms/history/v1.0/runs/x?api-version=v1.0",
            "http://127.0.0.1:8765/_amlapi/eastus2/history/v1.0/runs/x?api-version=v1.0",
        ),
        ("https://MANAGEMENT.azure.com/", "http://127.0.0.1:8765/"),
        # not routed: out unchanged (the bare suffix is not a subdomain of it)
        (
            "https://login.microsoftonline.com/tenant/oauth2",
            "https://login.microsoftonline.com/tenant/oauth2",
        ),
        ("https://blob.core.windows.net/x", "https://blob.core.windows.net/x"),
    ],
)
def test_resolve_route(url: str, expected: str) -> None:
    assert resolve_route(url, ROUTES) == expected


def test_a_private_endpoint_route_keeps_https() -> None:
    routes = {"management.azure.com": "https://10.0.0.4:8443/arm"}
    assert resolve_route("https://management.azure.com/subscriptions?x=1", routes) == (
        "https://10.0.0.4:8443/arm/subscriptions?x=1"
    )


@pytest.mark.parametrize(
    "routes",
    [
        {"management.azure.com": "10.0.0.4"},
        {"management.azure.com": "ftp://10.0.0.4"},
        {"https://management.azure.com": "https://10.0.0.4"},
        {"": "https://10.0.0.4"},
    ],
)
def test_bad_routes_are_refused(routes: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="transport route"):
        routing_transport(routes)
