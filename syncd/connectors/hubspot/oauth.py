"""HubSpot's OAuth endpoints: the authorize URL, the code exchange and the refresh-token grant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp

from syncd.connectors.hubspot.errors import classify_response, parse_body
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.retry import RetryPolicy, retrying
from syncd.connectors.tokens import Grant
from syncd.errors import AuthError, RetryableError

# HubSpot answers an unusable grant with 400 and one of these codes in `status`/`category`.
_BAD_GRANT = frozenset({"BAD_REFRESH_TOKEN", "BAD_AUTH_CODE", "BAD_CLIENT_ID", "BAD_CLIENT_SECRET",
                        "BAD_REDIRECT_URI", "INVALID_GRANT"})


class HubSpotOAuth:
    """Talks to `/oauth/v1/token` with aiohttp; a refused grant becomes `AuthError`."""

    def __init__(self, connection: str, settings: HubSpotConnection, *, policy: RetryPolicy) -> None:
        self.connection = connection
        self._settings = settings
        self._policy = policy
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Create the HTTP session (inside the running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s), trust_env=False
            )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where a person grants the app access; HubSpot redirects back with `code` and `state`."""
        query = urlencode({
            "client_id": self._settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._settings.scopes),
            "state": state,
        })
        return f"{self._settings.authorize_url}?{query}"

    async def refresh(self, refresh_token: str) -> Grant:
        """A new access token for `refresh_token` (the `TokenRefresher` of this connection)."""
        return await self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Trade an authorisation code for tokens (`syncd auth`)."""
        return await self._grant({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    async def _grant(self, form: dict[str, str]) -> Grant:
        form = {
            **form,
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret.get_secret_value(),
        }
        owned = self._session is None
        self.open()
        try:
            return await retrying(self.connection, "oauth token", lambda: self._post(form), self._policy)
        finally:
            if owned:
                await self.close()

    async def _post(self, form: dict[str, str]) -> Grant:
        assert self._session is not None
        url = f"{self._settings.base_url.rstrip('/')}/oauth/v1/token"
        try:
            async with self._session.post(url, data=form) as response:
                raw = await response.read()
                status, headers = response.status, dict(response.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"HubSpot token endpoint did not answer: {exc}",
                                 connection=self.connection) from exc
        body: Any = parse_body(raw)
        if status == 200 and isinstance(body, dict) and body.get("access_token"):
            expires_in = float(body.get("expires_in") or 1800)
            return Grant(
                access_token=str(body["access_token"]),
                expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
                refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
                extras={k: str(body[k]) for k in ("hub_id", "user_id") if body.get(k) is not None},
            )
        code = str(body.get("status") or body.get("category") or "") if isinstance(body, dict) else ""
        message = str(body.get("message") or f"HTTP {status}") if isinstance(body, dict) else f"HTTP {status}"
        if status in (400, 401) and (code in _BAD_GRANT or status == 401):
            raise AuthError(message, connection=self.connection, status=status, vendor_code=code or None)
        raise classify_response(status, body, headers, connection=self.connection)
