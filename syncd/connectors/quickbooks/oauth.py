"""Intuit OAuth 2.0 through intuit-oauth's `AuthClient`: refresh (the refresh token rolls: the newest is handed
to the token manager, which stores it at once), the consent URL and the code exchange for `syncd auth`.

AuthClient reads the discovery document in its constructor (a network call), so it is built on first use in a
worker thread; `AuthClient(environment=<discovery URL>)` is how it is pointed at a connection's endpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from intuitlib.client import AuthClient
from intuitlib.enums import Scopes

from syncd.connectors.quickbooks.errors import translate
from syncd.connectors.quickbooks.settings import QuickBooksConnection
from syncd.connectors.tokens import Grant
from syncd.errors import AuthError, ConnectorError

T = TypeVar("T")
InThread = Callable[[Callable[[], T]], Awaitable[T]]


class IntuitAuth:
    """One connection's OAuth client; every call runs in the connector's worker threads."""

    def __init__(self, connection: str, settings: QuickBooksConnection) -> None:
        self.connection = connection
        self.settings = settings
        self._lock = threading.Lock()
        self._client: AuthClient | None = None

    def _auth_client(self, redirect_uri: str = "") -> AuthClient:
        with self._lock:
            if self._client is None:
                self._client = AuthClient(self.settings.client_id, self.settings.client_secret.get_secret_value(),
                                          redirect_uri, self.settings.discovery_url)  # fmt: skip
                self._client.trust_env = False
            self._client.redirect_uri = redirect_uri or self._client.redirect_uri
            return self._client

    def _grant(self, client: AuthClient) -> Grant:
        if not client.access_token:
            raise AuthError("Intuit answered without an access token", connection=self.connection)
        expires_in = float(client.expires_in or 3600)
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        return Grant(access_token=str(client.access_token), expires_at=expires_at,
                     refresh_token=str(client.refresh_token) if client.refresh_token else None)

    async def refresh(self, in_thread: InThread[Grant], refresh_token: str) -> Grant:
        """A new access token and the rolled refresh token."""

        def work() -> Grant:
            client = self._auth_client()
            client.refresh(refresh_token=refresh_token)
            return self._grant(client)

        return await self._guarded(in_thread, work)

    async def exchange_code(self, in_thread: InThread[Grant], code: str, redirect_uri: str) -> Grant:
        """Tokens for the code the consent redirect brought (with `realmId`, which the settings already name)."""

        def work() -> Grant:
            client = self._auth_client(redirect_uri)
            client.get_bearer_token(code, realm_id=self.settings.realm_id)
            return self._grant(client)

        return await self._guarded(in_thread, work)

    async def _guarded(self, in_thread: InThread[Grant], work: Callable[[], Grant]) -> Grant:
        try:
            return await in_thread(work)
        except ConnectorError:
            raise
        except Exception as exc:
            raise translate(exc, connection=self.connection, record=None) from exc

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """The consent URL (reads the discovery document the first time: `syncd auth` is interactive)."""
        scopes: list[Any] = [Scopes.ACCOUNTING if s == Scopes.ACCOUNTING.value else _Scope(s)
                             for s in self.settings.scopes]  # fmt: skip
        return str(self._auth_client(redirect_uri).get_authorization_url(scopes, state_token=state))


class _Scope:
    """A scope intuit-oauth has no enum member for (it reads `.value`)."""

    def __init__(self, value: str) -> None:
        self.value = value
