"""An azure-core transport that sends the Azure SDKs' https requests for chosen hosts somewhere else.

azure-ai-ml and azure-storage-blob build their URLs from Azure's public host names
(``management.azure.com``, ``<region>.api.azureml.ms``, ``<account>.blob.core.windows.net``), and azure-core
sends bearer tokens only over https. The transport is the pluggable part of azure-core, so this one keeps
every pipeline policy (auth, retry, signing) as it is and rewrites only the URL at the last moment, just
before the bytes go out:

- to the local emulator on loopback HTTP (:func:`emulator_routes`), so tests and demos drive the real SDKs;
- to a private endpoint or a gateway in front of Azure (any ``https://`` base).

Routes map a host to a base URL. A host may start with ``*.``; the part the star matched is put into the
base URL in place of ``{0}`` (``"*.blob.core.windows.net": "http://127.0.0.1:8765/_blob/{0}"``).
Hosts without a route go out unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter

from modelshift.errors import ConfigError

__all__ = ["emulator_routes", "resolve_route", "routing_transport"]


def _check_routes(routes: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for host, base in routes.items():
        parsed = urlsplit(base)
        if not host or "/" in host or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"transport route {host!r} -> {base!r} is not valid: the key is a host name (optionally "
                "'*.suffix'), the value an http(s) base URL such as https://10.0.0.4 or http://127.0.0.1:8765"
            )
        checked[host.lower()] = base.rstrip("/")
    return checked


def resolve_route(url: str, routes: Mapping[str, str]) -> str:
    """``url`` rewritten by the first route whose host matches (exact hosts win over wildcards)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    base = routes.get(host)
    if base is None:
        for pattern, target in routes.items():
            if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                base = target.replace("{0}", host[: -len(pattern) + 1])
                break
    if base is None:
        return url
    query = f"?{parts.query}" if parts.query else ""
    return f"{base}{parts.path or '/'}{query}"


class _RoutingAdapter(HTTPAdapter):
    """A requests adapter that rewrites the URL of each prepared request by the routes, then sends it."""

    def __init__(self, routes: Mapping[str, str]) -> None:
        super().__init__()
        self._routes = dict(routes)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send ``request`` to its routed URL (the SDK's signatures and headers are left as they are)."""
        if request.url is not None:
            request.url = resolve_route(request.url, self._routes)
        return super().send(request, *args, **kwargs)


def routing_transport(routes: Mapping[str, str]) -> RequestsTransport:
    """A transport for ``MLClient(..., transport=...)`` or ``BlobServiceClient(..., transport=...)``
    that sends requests for the routed hosts to their base URLs."""
    checked = _check_routes(routes)
    session = requests.Session()
    adapter = _RoutingAdapter(checked)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # the session lives as long as the transport; azure-core closes it when the client is closed
    return RequestsTransport(session=session, session_owner=True)


def emulator_routes(base_url: str) -> dict[str, str]:
    """Routes that send ARM, Azure ML's regional API and Blob storage to the local emulator at
    ``base_url`` (see :mod:`modelshift.emulator.aml_api`)."""
    base = base_url.rstrip("/")
    return {
        "management.azure.com": base,
        "*.api.azureml.ms": f"{base}/_amlapi/{{0}}",
        "*.blob.core.windows.net": f"{base}/_blob/{{0}}",
    }
