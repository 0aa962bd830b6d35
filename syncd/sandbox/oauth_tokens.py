"""OAuth grants of a simulated account: refresh tokens, access tokens and authorisation codes."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from syncd.sandbox.clock import Clock


@dataclass(frozen=True)
class IssuedToken:
    """An access token handed out by a token endpoint, with the refresh token that backs it."""

    access_token: str
    refresh_token: str
    expires_at: float  # math.inf when the grant has no fixed lifetime (sessions that last while used)
    issued_at: float

    @property
    def expires_in(self) -> int | None:
        """Whole seconds of life, or None for a token without a fixed lifetime."""
        if math.isinf(self.expires_at):
            return None
        return round(self.expires_at - self.issued_at)


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


AUTH_CODE_LIFETIME_S = 600.0


class TokenStore:
    """The OAuth grants of one simulated account: refresh tokens, access tokens and auth codes."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        lifetime_s: float | None,
        clock: Clock = time.time,
        token_prefix: str = "",
        refresh_token: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.token_prefix = token_prefix
        self.refresh_token = refresh_token or self._mint("rt")
        self._refresh_tokens: set[str] = {self.refresh_token}
        self._access: dict[str, float] = {}  # access token -> expires_at
        self._codes: dict[str, _AuthCode] = {}

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> IssuedToken | None:
        """A new access token for a live refresh token and matching client credentials; None: bad grant."""
        if not self._client_ok(client_id, client_secret) or refresh_token not in self._refresh_tokens:
            return None
        return self._issue(refresh_token)

    def authorize(self, client_id: str, redirect_uri: str, scope: str) -> str:
        """An authorisation code for the code flow; ValueError for an unknown client."""
        if not secrets.compare_digest(client_id, self.client_id):
            raise ValueError("unknown client_id")
        code = self._mint("code")
        self._codes[code] = _AuthCode(client_id, redirect_uri, scope, self.clock() + AUTH_CODE_LIFETIME_S)
        return code

    def exchange_code(
        self, client_id: str, client_secret: str, code: str, redirect_uri: str
    ) -> IssuedToken | None:
        """Trade a single-use code for a new refresh token and access token; None: bad grant."""
        grant = self._codes.pop(code, None)
        if grant is None or not self._client_ok(client_id, client_secret):
            return None
        if grant.redirect_uri != redirect_uri or self.clock() >= grant.expires_at:
            return None
        refresh_token = self._mint("rt")
        self._refresh_tokens.add(refresh_token)
        return self._issue(refresh_token)

    def issue_access_token(self) -> IssuedToken:
        """An access token on the initial refresh token, for tests and tools that skip the OAuth call."""
        if self.refresh_token not in self._refresh_tokens:
            raise ValueError("the grant has been revoked")
        return self._issue(self.refresh_token)

    def check(self, access_token: str) -> Literal["ok", "expired", "unknown"]:
        """Whether an access token may be used now."""
        expires_at = self._access.get(access_token)
        if expires_at is None:
            return "unknown"
        return "ok" if self.clock() < expires_at else "expired"

    def expires_at(self, access_token: str) -> float | None:
        """When a live access token expires (inf: never); None for an unknown or expired one."""
        expires_at = self._access.get(access_token)
        return expires_at if expires_at is not None and self.clock() < expires_at else None

    def is_refresh_token(self, token: str) -> bool:
        """Whether a refresh token is live (issued and not revoked)."""
        return token in self._refresh_tokens

    def expire_all(self) -> None:
        """Every access token issued so far is expired from now on."""
        now = self.clock()
        for token, expires_at in self._access.items():
            self._access[token] = min(expires_at, now)

    def revoke(self) -> None:
        """Every refresh token and access token becomes invalid (the user removed the app)."""
        self._refresh_tokens.clear()
        self._access.clear()
        self._codes.clear()

    def reinstate(self) -> None:
        """Make the initial refresh token live again after a revoke (tests start each case from it)."""
        self._refresh_tokens.add(self.refresh_token)

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot for the sandbox state file."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "lifetime_s": self.lifetime_s,
            "refresh_token": self.refresh_token,
            "refresh_tokens": sorted(self._refresh_tokens),
            "access": {t: (None if math.isinf(e) else e) for t, e in self._access.items()},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a snapshot written by to_state."""
        self.client_id = str(state["client_id"])
        self.client_secret = str(state["client_secret"])
        self.lifetime_s = state.get("lifetime_s", self.lifetime_s)
        self.refresh_token = str(state["refresh_token"])
        self._refresh_tokens = {str(t) for t in state.get("refresh_tokens", [self.refresh_token])}
        access = state.get("access", {})
        self._access = {str(t): (math.inf if e is None else float(e)) for t, e in access.items()}
        self._codes = {}

    def _client_ok(self, client_id: str, client_secret: str) -> bool:
        return secrets.compare_digest(client_id, self.client_id) and secrets.compare_digest(
            client_secret, self.client_secret
        )

    def _issue(self, refresh_token: str) -> IssuedToken:
        now = self.clock()
        expires_at = math.inf if self.lifetime_s is None else now + self.lifetime_s
        access_token = self._mint("at")
        self._access[access_token] = expires_at
        return IssuedToken(access_token, refresh_token, expires_at, now)

    def _mint(self, kind: str) -> str:
        return f"{self.token_prefix}{kind}-{secrets.token_urlsafe(24)}"
