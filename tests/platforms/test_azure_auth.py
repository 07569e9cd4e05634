"""Credentials: which header each sends, token caching, and which credential the settings pick."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from modelshift.errors import AuthError
from modelshift.platforms.azure.auth import (
    ARM_SCOPE,
    COGNITIVE_SCOPE,
    ApiKeyCredential,
    IdentityCredential,
    StaticBearerCredential,
    arm_credential,
    data_plane_credential,
)
from modelshift.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class AccessToken:
    token: str
    expires_on: int


class FakeIdentity:
    """Stands in for DefaultAzureCredential: hands out numbered tokens valid for one hour."""

    def __init__(self, now: list[datetime], fail: bool = False) -> None:
        self.now = now
        self.fail = fail
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        if self.fail:
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token")
        return AccessToken(f"tok-{len(self.calls)}", int((self.now[0] + timedelta(hours=1)).timestamp()))


def test_api_key_and_static_bearer_headers() -> None:
    assert ApiKeyCredential("abc").headers() == {"api-key": "abc"}
    assert StaticBearerCredential("t").headers() == {"Authorization": "Bearer t"}
    assert asyncio.run(ApiKeyCredential("abc").aheaders()) == {"api-key": "abc"}
    assert "abc" not in ApiKeyCredential("abc").describe()


@pytest.mark.parametrize("cls", [ApiKeyCredential, StaticBearerCredential])
def test_empty_secret_is_refused(cls: type[ApiKeyCredential] | type[StaticBearerCredential]) -> None:
    with pytest.raises(AuthError, match="empty"):
        cls("")


@pytest.mark.parametrize(
    ("elapsed", "fetches"),
    [
        (timedelta(0), 1),
        (timedelta(minutes=54, seconds=59), 1),  # still > 5 minutes left: cached
        (timedelta(minutes=55), 2),  # within the refresh margin: refetched
        (timedelta(hours=2), 2),  # expired
    ],
)
def test_identity_token_cached_until_near_expiry(elapsed: timedelta, fetches: int) -> None:
    now = [T0]
    fake = FakeIdentity(now)
    cred = IdentityCredential(ARM_SCOPE, credential=fake, clock=lambda: now[0])
    assert cred.headers() == {"Authorization": "Bearer tok-1"}
    now[0] = T0 + elapsed
    cred.headers()
    assert len(fake.calls) == fetches
    assert fake.calls[0] == (ARM_SCOPE,)


def test_identity_failure_is_auth_error_naming_scope_and_remedy() -> None:
    cred = IdentityCredential(COGNITIVE_SCOPE, credential=FakeIdentity([T0], fail=True), clock=lambda: T0)
    with pytest.raises(AuthError) as info:
        cred.headers()
    assert COGNITIVE_SCOPE in info.value.message and "az login" in info.value.message
    assert info.value.code == "CredentialUnavailable"


def test_identity_async_headers() -> None:
    cred = IdentityCredential(ARM_SCOPE, credential=FakeIdentity([T0]), clock=lambda: T0)
    assert asyncio.run(cred.aheaders()) == {"Authorization": "Bearer tok-1"}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "arm_desc", "dp_desc"),
    [
        (
            {},
            "DefaultAzureCredential (scope " + ARM_SCOPE,
            "DefaultAzureCredential (scope " + COGNITIVE_SCOPE,
        ),
        ({"api_key": SecretStr("k")}, "DefaultAzureCredential", "api-key from MODELSHIFT_API_KEY"),
        ({"arm_token": SecretStr("t")}, "static bearer token", "static bearer token"),
        ({"arm_token": SecretStr("t"), "api_key": SecretStr("k")}, "static bearer token", "api-key"),
    ],
)
def test_settings_pick_the_credential(values: dict[str, Any], arm_desc: str, dp_desc: str) -> None:
    s = settings(**values)
    assert arm_credential(s).describe().startswith(arm_desc)
    assert data_plane_credential(s).describe().startswith(dp_desc)
