"""Credentials for the two Azure planes: api-key, a static bearer, or azure-identity with the right scope.

Every credential can ``describe()`` itself, so an :class:`~modelshift.errors.AuthError` says which one was
tried and what to do about it.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any, Final, Protocol

from modelshift.clock import Clock, utcnow
from modelshift.errors import AuthError
from modelshift.settings import Settings

ARM_SCOPE: Final = "https://management.azure.com/.default"
COGNITIVE_SCOPE: Final = "https://cognitiveservices.azure.com/.default"


class Credential(Protocol):
    """Something that produces the auth header(s) of a request."""

    def headers(self) -> dict[str, str]:
        """The headers to add to a request (blocking; may fetch a token)."""
        ...

    async def aheaders(self) -> dict[str, str]:
        """Async twin of :meth:`headers`."""
        ...

    def describe(self) -> str:
        """Which credential this is, for error messages (never the secret)."""
        ...

    def remedy(self) -> str:
        """What the user can do when the platform refuses this credential."""
        ...


class ApiKeyCredential:
    """Azure OpenAI data-plane ``api-key`` header."""

    def __init__(self, key: str, *, source: str = "MODELSHIFT_API_KEY") -> None:
        if not key:
            raise AuthError(f"the api-key from {source} is empty; set {source} to the account's key")
        self._key = key
        self._source = source

    def headers(self) -> dict[str, str]:
        """``{"api-key": key}``."""
        return {"api-key": self._key}

    async def aheaders(self) -> dict[str, str]:
        """``{"api-key": key}``."""
        return self.headers()

    def describe(self) -> str:
        """E.g. ``api-key from MODELSHIFT_API_KEY``."""
        return f"api-key from {self._source}"

    def remedy(self) -> str:
        """Where to find the right key."""
        return (
            f"check {self._source}: use a key of this account "
            "(`az cognitiveservices account keys list`, or the emulator's printed exports)"
        )


class StaticBearerCredential:
    """A bearer token given as is (emulator tokens, or ``az account get-access-token`` output)."""

    def __init__(self, token: str, *, source: str = "MODELSHIFT_ARM_TOKEN") -> None:
        if not token:
            raise AuthError(f"the bearer token from {source} is empty; set {source} or unset it")
        self._token = token
        self._source = source

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``."""
        return {"Authorization": f"Bearer {self._token}"}

    async def aheaders(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``."""
        return self.headers()

    def describe(self) -> str:
        """E.g. ``static bearer token from MODELSHIFT_ARM_TOKEN``."""
        return f"static bearer token from {self._source}"

    def remedy(self) -> str:
        """Tokens expire; get a fresh one."""
        return (
            f"the token in {self._source} may have expired or lack a role: get a fresh one "
            "(`az account get-access-token`) or unset it to use DefaultAzureCredential"
        )


class TokenCredentialLike(Protocol):
    """The part of azure-core's ``TokenCredential`` we use (``DefaultAzureCredential`` has it)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Return an ``AccessToken(token, expires_on)``."""
        ...


class IdentityCredential:
    """A bearer token from azure-identity for one scope, cached until ``refresh_margin`` before expiry."""

    def __init__(
        self,
        scope: str,
        *,
        credential: TokenCredentialLike | None = None,
        clock: Clock = utcnow,
        refresh_margin: timedelta = timedelta(minutes=5),
    ) -> None:
        self.scope = scope
        self._credential = credential
        self._clock = clock
        self._margin = refresh_margin
        self._token: str | None = None
        self._expires_on: float = 0.0
        self._lock = threading.Lock()

    def _source(self) -> TokenCredentialLike:
        if self._credential is None:
            # Imported lazily: azure-identity is slow to import and not needed with an api-key.
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential

    def token(self) -> str:
        """A valid access token, fetched only when the cached one is (nearly) expired."""
        with self._lock:
            now = self._clock().timestamp()
            if self._token is None or now >= self._expires_on - self._margin.total_seconds():
                try:
                    access = self._source().get_token(self.scope)
                except Exception as exc:  # azure-identity raises many types; all mean "no credential"
                    raise AuthError(
                        f"{self.describe()} could not get a token: {exc}. {self.remedy()}",
                        code="CredentialUnavailable",
                    ) from exc
                self._token = str(access.token)
                self._expires_on = float(access.expires_on)
            return self._token

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``."""
        return {"Authorization": f"Bearer {self.token()}"}

    async def aheaders(self) -> dict[str, str]:
        """Fetch in a worker thread, since azure-identity's sync credential blocks."""
        return await asyncio.to_thread(self.headers)

    def describe(self) -> str:
        """E.g. ``DefaultAzureCredential (scope https://management.azure.com/.default)``."""
        name = type(self._credential).__name__ if self._credential is not None else "DefaultAzureCredential"
        return f"{name} (scope {self.scope})"

    def remedy(self) -> str:
        """How to give azure-identity a usable identity."""
        return (
            "run `az login` (or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET) and make sure the "
            "identity has a role on the resource (e.g. Cognitive Services OpenAI User / Contributor)"
        )


def arm_credential(settings: Settings, *, clock: Clock = utcnow) -> Credential:
    """ARM credential: MODELSHIFT_ARM_TOKEN if set, else DefaultAzureCredential for the management scope."""
    if settings.arm_token is not None:
        return StaticBearerCredential(settings.arm_token.get_secret_value())
    return IdentityCredential(ARM_SCOPE, clock=clock)


def data_plane_credential(settings: Settings, *, clock: Clock = utcnow) -> Credential:
    """Data-plane credential: MODELSHIFT_API_KEY, else MODELSHIFT_ARM_TOKEN (the emulator accepts one token
    on both planes), else DefaultAzureCredential for the cognitive-services scope."""
    if settings.api_key is not None:
        return ApiKeyCredential(settings.api_key.get_secret_value())
    if settings.arm_token is not None:
        return StaticBearerCredential(settings.arm_token.get_secret_value())
    return IdentityCredential(COGNITIVE_SCOPE, clock=clock)
