"""Salesforce OAuth 2.0: refresh-token grant, authorization-code exchange and the authorize URL."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any
from urllib.parse import urlencode

import requests

from syncd.connectors.salesforce.errors import classify, vendor_error
from syncd.connectors.salesforce.settings import SalesforceConnection
from syncd.connectors.tokens import Grant
from syncd.errors import AuthError, ConnectorError, RetryableError


class SalesforceOAuth:
    """Talks to `{base_url}/services/oauth2/*` for one connection (the login host, not the instance)."""

    def __init__(self, connection: str, settings: SalesforceConnection, http: requests.Session,
                 executor: Executor) -> None:
        self.connection = connection
        self.settings = settings
        self._http = http
        self._executor = executor
        self._root = settings.base_url.rstrip("/") + "/services/oauth2"

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where a person approves the connected app; the org redirects back with `code` and `state`."""
        query = urlencode({
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": " ".join(self.settings.scopes),
        })
        return f"{self._root}/authorize?{query}"

    async def refresh(self, refresh_token: str) -> Grant:
        """Exchange the refresh token; `invalid_grant` (revoked or expired) raises AuthError."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Exchange an authorization code (from the redirect) for tokens, refresh token included."""
        grant = await self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
        if grant.refresh_token is None:
            raise AuthError("Salesforce issued no refresh token: add the refresh_token scope to the connected app",
                            connection=self.connection)
        return grant

    async def _token(self, form: Mapping[str, str]) -> Grant:
        body = {**form, "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret.get_secret_value()}
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._executor, self._post, body)
        except ConnectorError:
            raise
        except Exception as exc:
            raise classify(exc, connection=self.connection) from None
        return self._grant(response)

    def _post(self, body: Mapping[str, str]) -> requests.Response:
        timeout = self.settings.timeout_s
        return self._http.post(f"{self._root}/token", data=dict(body), timeout=(min(timeout, 10.0), timeout),
                               headers={"Accept": "application/json"})

    def _grant(self, response: requests.Response) -> Grant:
        try:
            payload: Any = response.json()
        except ValueError:
            payload = response.text
        if response.status_code >= 500:
            message, code = vendor_error(payload)
            raise RetryableError(message, connection=self.connection, status=response.status_code, vendor_code=code)
        if response.status_code >= 400 or not isinstance(payload, dict) or "access_token" not in payload:
            # invalid_grant, invalid_client, invalid_client_id: a person has to act, retrying cannot help.
            message, code = vendor_error(payload)
            raise AuthError(message, connection=self.connection, status=response.status_code, vendor_code=code)
        extras = {"instance_url": str(payload["instance_url"])} if payload.get("instance_url") else {}
        refresh = payload.get("refresh_token")
        # Salesforce sends no expires_in: the session lasts until the org's timeout, found out by a 401.
        return Grant(str(payload["access_token"]), None, str(refresh) if refresh else None, extras)
