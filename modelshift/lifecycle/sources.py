"""Where a scan reads the fleet from: live ARM (bounded concurrency, each account and location fetched once)
or recordings of ``az rest`` output (then no network at all).

A recording is the JSON ``az rest`` prints for ``locations/{loc}/models`` or ``accounts/{acct}/deployments``
(``{"value": [...]}``), a bare list of items, or a REST-spec example
(``{"responses": {"200": {"body": ...}}}``), in any api-version: the wire models ignore fields they do not
know. A recorded deployment's account comes from its ARM ``id``; a catalog file applies to every location
unless named ``LOCATION=FILE``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelshift.errors import ConfigError
from modelshift.lifecycle.arm_reader import AsyncArmReader
from modelshift.lifecycle.bundleref import BundleRef
from modelshift.platforms.azure.models import ArmDeployment, ArmLocationModel, ArmUsage
from modelshift.platforms.base import AccountRef, CatalogModel, Deployment, QuotaUsage

ANY_LOCATION = "*"
DEFAULT_CONCURRENCY = 16
T = TypeVar("T")
_ACCOUNT_ID = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.CognitiveServices/"
    r"accounts/(?P<account>[^/]+)/deployments/",
    re.IGNORECASE,
)


class FleetSnapshot(BaseModel):
    """Deployments, catalogs and quota of the accounts and locations a scan looks at."""

    model_config = ConfigDict(frozen=True)

    origin: Literal["live", "recorded"]
    sources: list[str] = Field(default_factory=list)
    #: None when no deployment list was recorded (then only the pinned models are assessed)
    deployments: list[Deployment] | None = None
    #: lower-case names of the accounts whose deployment list was read (live) or recorded
    observed_accounts: list[str] = Field(default_factory=list)
    #: lower-case account name -> location
    account_locations: dict[str, str] = Field(default_factory=dict)
    #: lower-case location (or ``*``) -> catalog
    catalogs: dict[str, list[CatalogModel]] = Field(default_factory=dict)
    #: lower-case location -> quota lines; a location missing here was not read
    usages: dict[str, list[QuotaUsage]] = Field(default_factory=dict)

    def catalog_for(self, location: str | None) -> list[CatalogModel]:
        """The catalog of ``location`` (or the any-location recording)."""
        if location is not None and location.lower() in self.catalogs:
            return self.catalogs[location.lower()]
        if location is None and len(self.catalogs) == 1:
            # one recorded catalog and an account of unknown location: that catalog is the only evidence
            return next(iter(self.catalogs.values()))
        return self.catalogs.get(ANY_LOCATION, [])

    def usages_for(self, location: str | None) -> list[QuotaUsage] | None:
        """Quota lines of ``location``, or None when they were not read."""
        return self.usages.get(location.lower()) if location is not None else None

    def observed(self, account: AccountRef) -> bool:
        """True when the deployments of ``account`` were read, so a deployment absent from them is missing."""
        return self.deployments is not None and account.name.lower() in self.observed_accounts

    def location_of(self, account: AccountRef) -> str | None:
        """The location of ``account`` when known."""
        return self.account_locations.get(account.name.lower())


# ------------------------------------------------------------------------------------- recordings


def _items(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """The list items of a recording, and the spec example's ``parameters`` when it is one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the recording ({exc.strerror}); check the path") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); record it again with "
            "`az rest --method get --url '<ARM list URL>' > FILE`"
        ) from None
    params: dict[str, Any] = {}
    if isinstance(data, dict) and isinstance(data.get("responses"), dict):
        raw_params = data.get("parameters")
        params = raw_params if isinstance(raw_params, dict) else {}
        data = (data["responses"].get("200") or {}).get("body")
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        return data["value"], params
    if isinstance(data, list):
        return data, params
    raise ConfigError(
        f'{path}: expected an ARM list (`{{"value": [...]}}`) or a JSON array of items, got '
        f"{type(data).__name__}; pass the output of `az rest` for the list URL"
    )


M = TypeVar("M", bound=BaseModel)


def _validate(path: Path, items: list[Any], model: type[M], what: str) -> list[M]:
    out: list[M] = []
    for i, item in enumerate(items):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(item)"
            raise ConfigError(
                f"{path}: value[{i}].{field}: {err['msg']}; is this a recording of {what}?"
            ) from None
    return out


def _split_spec(spec: str) -> tuple[str | None, Path]:
    """``LOCATION=FILE`` or ``FILE`` (an existing file path wins over the split)."""
    if "=" in spec and not Path(spec).exists():
        loc, file = spec.split("=", 1)
        if loc and "/" not in loc and "\\" not in loc:
            return loc.lower(), Path(file)
    return None, Path(spec)


def _account_of(path: Path, index: int, arm_id: str | None) -> AccountRef:
    match = _ACCOUNT_ID.search(arm_id or "")
    if match is None:
        raise ConfigError(
            f"{path}: value[{index}].id: {arm_id!r} is not a deployment ARM id "
            "(/subscriptions/.../accounts/ACCOUNT/deployments/NAME), so its account is unknown; record the "
            "ARM deployments list (`az rest` on .../accounts/ACCOUNT/deployments), not the data-plane one"
        )
    return AccountRef(subscription_id=match["sub"], resource_group=match["rg"], name=match["account"])


def load_recordings(
    catalog_files: Sequence[str] = (),
    deployment_files: Sequence[str] = (),
    usage_files: Sequence[str] = (),
) -> FleetSnapshot:
    """A snapshot from recorded ``az rest`` output; reads only the named files."""
    catalogs: dict[str, list[CatalogModel]] = {}
    for spec in catalog_files:
        loc, path = _split_spec(spec)
        items, params = _items(path)
        loc = loc or (str(params["location"]).lower() if params.get("location") else ANY_LOCATION)
        models = _validate(path, items, ArmLocationModel, "locations/{loc}/models")
        catalogs.setdefault(loc, []).extend(m.to_result() for m in models)
    deployments: list[Deployment] | None = None
    for spec in deployment_files:
        _, path = _split_spec(spec)
        items, _ = _items(path)
        deployments = deployments or []
        for i, dep in enumerate(_validate(path, items, ArmDeployment, "accounts/{acct}/deployments")):
            deployments.append(dep.to_result(_account_of(path, i, dep.id)))
    usages: dict[str, list[QuotaUsage]] = {}
    for spec in usage_files:
        loc, path = _split_spec(spec)
        items, params = _items(path)
        loc = loc or (str(params["location"]).lower() if params.get("location") else None)
        if loc is None:
            raise ConfigError(f"{path}: a usages recording needs its location: pass --usages LOCATION={path}")
        usages.setdefault(loc, []).extend(u.to_result() for u in _validate(path, items, ArmUsage, "usages"))
    sources = [*catalog_files, *deployment_files, *usage_files]
    observed = sorted({d.account.name.lower() for d in deployments or []})
    return FleetSnapshot(
        origin="recorded",
        sources=sources,
        deployments=deployments,
        observed_accounts=observed,
        catalogs=catalogs,
        usages=usages,
    )


# -------------------------------------------------------------------------------------------- live


async def _bounded(limit: int, calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls with at most ``limit`` in flight; results in call order; the first error propagates."""
    sem = asyncio.Semaphore(max(1, limit))

    async def run(call: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await call()

    return list(await asyncio.gather(*(run(c) for c in calls)))


async def fetch_live(
    reader: AsyncArmReader,
    bundles: Sequence[BundleRef],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    discover_accounts: bool = True,
) -> FleetSnapshot:
    """Read the fleet from ARM: the accounts of every subscription the bundles name (so unmanaged deployments
    are seen too), each account's deployments, and each location's catalog and quota, once each."""
    accounts: dict[str, tuple[AccountRef, str | None]] = {}
    subs = sorted({b.account.subscription_id for b in bundles if b.account is not None})
    if discover_accounts:
        listed = await _bounded(concurrency, [lambda s=s: reader.accounts(s) for s in subs])  # type: ignore[misc]
        for group in listed:
            for acct in group:
                accounts[acct.ref.name.lower()] = (acct.ref, acct.location.lower() or None)
    for b in bundles:
        if b.account is not None and b.account.name.lower() not in accounts:
            accounts[b.account.name.lower()] = (b.account, (b.location or "").lower() or None)
    refs = [ref for ref, _ in accounts.values()]
    places = sorted({(ref.subscription_id, loc) for ref, loc in accounts.values() if loc})
    dep_calls = [lambda r=r: reader.deployments(r) for r in refs]
    cat_calls = [lambda p=p: reader.location_models(*p) for p in places]
    use_calls = [lambda p=p: reader.usages(*p) for p in places]
    calls: list[Callable[[], Awaitable[Any]]] = [*dep_calls, *cat_calls, *use_calls]
    results: list[Any] = await _bounded(concurrency, calls)
    n, m = len(dep_calls), len(cat_calls)
    deployments = [d for group in results[:n] for d in group]
    catalogs: dict[str, list[CatalogModel]] = {}
    usages: dict[str, list[QuotaUsage]] = {}
    for (_, loc), cat, use in zip(places, results[n : n + m], results[n + m :], strict=True):
        catalogs.setdefault(loc, []).extend(cat)
        usages.setdefault(loc, []).extend(use)
    return FleetSnapshot(
        origin="live",
        sources=[reader.base_url],
        deployments=deployments,
        observed_accounts=sorted(accounts),
        account_locations={name: loc for name, (_, loc) in accounts.items() if loc},
        catalogs=catalogs,
        usages=usages,
    )
