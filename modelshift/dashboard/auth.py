"""Who may act on the dashboard: the operator token, the session cookie and the per-session CSRF token.

Reading is open (the pages and ``GET /api/...``); every action needs the operator token
(``MODELSHIFT_DASHBOARD_TOKEN``), given either

- per request, as ``Authorization: Bearer <token>`` with the operator's name in ``X-Modelshift-Operator``
  (for scripts; a browser never sends these headers cross-site on its own, so no CSRF token is needed), or
- once, in the login form, which sets a signed session cookie (``HttpOnly``, ``SameSite=Strict``) naming
  the operator. Forms posted with that cookie must carry the session's CSRF token (an HMAC of the session
  id), so another site cannot make a logged-in browser act.

The signing key is derived from the operator token and a per-process secret: changing the token or
restarting the dashboard logs everyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelshift.clock import Clock

SESSION_COOKIE = "modelshift_session"
OPERATOR_HEADER = "x-modelshift-operator"
#: how long a login lasts
SESSION_TTL = timedelta(hours=12)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,99}$")


class AuthProblem(Exception):
    """An action was refused: ``status`` 401 (who are you?) or 403 (not allowed / bad CSRF)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Operator:
    """The person acting: their name (the audit actor), their session id and how they proved the token."""

    name: str
    session_id: str
    via: str  # "session" | "header"


def check_name(name: str) -> str:
    """The operator's name as the audit chain records it, or AuthProblem(401) saying what is allowed."""
    name = name.strip()
    if not _NAME.match(name):
        raise AuthProblem(
            401,
            "operator name: give 1-100 characters (letters, digits, space, . _ @ + -), starting with a "
            "letter or digit; the audit chain records it as the actor",
        )
    return name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """Checks the operator token, signs and reads session cookies, makes and checks CSRF tokens."""

    def __init__(self, token: str | None, *, clock: Clock) -> None:
        self._token = token or None
        self._clock = clock
        seed = secrets.token_bytes(32) + (token or "").encode("utf-8")
        self._key = hashlib.sha256(b"modelshift-dashboard-session\0" + seed).digest()

    @property
    def enabled(self) -> bool:
        """True when an operator token is configured, i.e. actions are possible at all."""
        return self._token is not None

    def require_enabled(self) -> None:
        """AuthProblem(403) when no operator token is configured (actions are off)."""
        if self._token is None:
            raise AuthProblem(
                403,
                "dashboard actions are disabled: no operator token is configured; start the dashboard with "
                "MODELSHIFT_DASHBOARD_TOKEN set",
            )

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison with the configured token."""
        self.require_enabled()
        assert self._token is not None
        return hmac.compare_digest(given.encode("utf-8"), self._token.encode("utf-8"))

    def login(self, name: str, token: str) -> tuple[Operator, str]:
        """Check the token and make a session for ``name``: the operator and the cookie value to set."""
        if not self.token_matches(token):
            raise AuthProblem(401, "wrong operator token; use the value of MODELSHIFT_DASHBOARD_TOKEN")
        operator = Operator(name=check_name(name), session_id=secrets.token_urlsafe(16), via="session")
        expires = self._clock() + SESSION_TTL
        body = _b64(
            json.dumps(
                {"n": operator.name, "s": operator.session_id, "e": int(expires.timestamp())},
                separators=(",", ":"),
            ).encode("utf-8")
        )
        return operator, f"{body}.{self._sign(body)}"

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode("ascii"), hashlib.sha256).digest())

    def from_cookie(self, value: str | None) -> Operator | None:
        """The operator of a valid, unexpired session cookie, else None."""
        if not value or "." not in value or self._token is None:
            return None
        body, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            name, session_id, expires = str(data["n"]), str(data["s"]), int(data["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if datetime.fromtimestamp(expires, tz=self._clock().tzinfo) <= self._clock():
            return None
        return Operator(name=name, session_id=session_id, via="session")

    def from_headers(self, authorization: str | None, operator: str | None) -> Operator | None:
        """The operator of a ``Bearer`` token request, None without the header; AuthProblem when wrong."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthProblem(401, "Authorization header: expected 'Bearer <MODELSHIFT_DASHBOARD_TOKEN>'")
        if not self.token_matches(token.strip()):
            raise AuthProblem(401, "wrong operator token; use the value of MODELSHIFT_DASHBOARD_TOKEN")
        if not operator:
            raise AuthProblem(
                401, f"{OPERATOR_HEADER} header missing: name the operator (the audit chain records them)"
            )
        return Operator(name=check_name(operator), session_id="", via="header")

    def csrf_token(self, operator: Operator) -> str:
        """The CSRF token of this operator's session (empty for header-authenticated requests)."""
        if operator.via != "session":
            return ""
        return self._sign(f"csrf:{operator.session_id}")

    def check_csrf(self, operator: Operator, given: str | None) -> None:
        """AuthProblem(403) unless ``given`` is this session's CSRF token (header requests need none)."""
        if operator.via != "session":
            return
        if not given or not hmac.compare_digest(given, self.csrf_token(operator)):
            raise AuthProblem(
                403,
                "CSRF token missing or wrong for this session; reload the page and submit the form again",
            )
