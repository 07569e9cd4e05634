"""A minimal async ARM reader for the scan: accounts, deployments, location models and usages, all pages.

The Azure adapter (:mod:`modelshift.platforms.azure.arm`) is blocking; the scan fetches hundreds of accounts
at once, so it needs the async twin of the few list calls it uses. Same wire models, same error translation
(:class:`AsyncAzureHttp`), same nextLink handling.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel

from modelshift.clock import Clock, utcnow
from modelshift.errors import PlatformError
from modelshift.platforms import base
from modelshift.platforms.azure.auth import arm_credential
from modelshift.platforms.azure.http import AsyncAzureHttp, Target, parse_body
from modelshift.platforms.azure.models import ArmAccount, ArmDeployment, ArmLocationModel, ArmPage, ArmUsage
from modelshift.settings import Settings, get_settings

M = TypeVar("M", bound=BaseModel)
_PROVIDER = "providers/Microsoft.CognitiveServices"
_MAX_PAGES = 10_000


class AsyncArmReader:
    """Read-only async ARM calls the fleet scan needs."""

    def __init__(self, http: AsyncAzureHttp, *, base_url: str, api_version: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version

    @classmethod
    def from_settings(
        cls, client: httpx.AsyncClient, settings: Settings | None = None, *, clock: Clock = utcnow
    ) -> AsyncArmReader:
        """A reader for MODELSHIFT_ARM_URL with MODELSHIFT_ARM_API_VERSION and the ARM credential."""
        s = settings or get_settings()
        http = AsyncAzureHttp(client, arm_credential(s, clock=clock), clock=clock)
        return cls(http, base_url=s.arm_url, api_version=s.arm_api_version)

    async def _paged(self, path: str, item: type[M], target: Target) -> list[M]:
        url: str | None = f"{self.base_url}/{path.lstrip('/')}"
        params: dict[str, str] | None = {"api-version": self.api_version}
        items: list[M] = []
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise PlatformError(
                    f"{target.describe()}: ARM paging loops at {url}; report this to the platform"
                )
            seen.add(url)
            response = await self.http.request("GET", url, target, params=params)
            page = parse_body(ArmPage[item], response, target)  # type: ignore[valid-type]
            items.extend(page.value)
            url = urljoin(self.base_url + "/", page.next_link) if page.next_link else None
            params = None
        return items

    async def accounts(self, subscription_id: str) -> list[base.Account]:
        """Cognitive Services accounts of a subscription."""
        scope = f"subscriptions/{subscription_id}"
        target = Target("ARM", resource=f"account list of {scope}")
        return [a.to_result() for a in await self._paged(f"{scope}/{_PROVIDER}/accounts", ArmAccount, target)]

    async def deployments(self, account: base.AccountRef) -> list[base.Deployment]:
        """Every deployment of ``account``."""
        target = Target("ARM", account=account.name, resource="deployment list")
        items = await self._paged(f"{account.arm_path}/deployments", ArmDeployment, target)
        return [d.to_result(account) for d in items]

    async def location_models(self, subscription_id: str, location: str) -> list[base.CatalogModel]:
        """The model catalog of ``location``."""
        path = f"subscriptions/{subscription_id}/{_PROVIDER}/locations/{location}/models"
        target = Target("ARM", resource=f"model catalog of location {location}")
        return [m.to_result() for m in await self._paged(path, ArmLocationModel, target)]

    async def usages(self, subscription_id: str, location: str) -> list[base.QuotaUsage]:
        """Quota usage lines of ``location``."""
        path = f"subscriptions/{subscription_id}/{_PROVIDER}/locations/{location}/usages"
        target = Target("ARM", resource=f"quota usages of location {location}")
        return [u.to_result() for u in await self._paged(path, ArmUsage, target)]
