"""Xero's identity server on the simulator's port: `GET /identity/connect/authorize` (consent, approved at once,
redirecting with a code), `POST /connect/token` (authorization_code and refresh_token grants, rotating refresh
tokens) and `GET /connections` (the organisations a token reaches, each with its `tenantId`).

Refresh tokens rotate on every use; the one just used stays good for a grace period (Xero: 30 minutes) so that a
client whose answer was lost may retry with it. A refused grant is 400 `{"error": "invalid_grant"}`."""

from __future__ import annotations

import base64
import math
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from syncd.sandbox.clock import Clock
from syncd.sandbox.oauth_tokens import IssuedToken, TokenStore
from syncd.sandbox.xero.wire import json_response, problem

GRACE_S = 30 * 60.0


class RotatingTokenStore(TokenStore):
    """A token store whose refresh tokens are replaced by each refresh (the old one kept for a grace period)."""

    def __init__(self, *, clock: Clock = time.time, **kw: Any) -> None:
        super().__init__(clock=clock, **kw)
        self._retired: dict[str, float] = {}  # used refresh token -> end of its grace period

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> IssuedToken | None:
        """A new access token and a new refresh token for a live (or just-retired) refresh token."""
        retired_until = self._retired.get(refresh_token)
        if retired_until is not None and self.clock() >= retired_until:
            self._refresh_tokens.discard(refresh_token)
            del self._retired[refresh_token]
        issued = super().refresh(client_id, client_secret, refresh_token)
        if issued is None:
            return None
        rotated = self._mint("rt")
        self._refresh_tokens.add(rotated)
        self._retired.setdefault(refresh_token, self.clock() + GRACE_S)
        return IssuedToken(issued.access_token, rotated, issued.expires_at, issued.issued_at)

    def revoke(self) -> None:
        """Every grant is gone."""
        super().revoke()
        self._retired.clear()


def _client(request: web.Request, form: Any) -> tuple[str, str]:
    """Client credentials from HTTP Basic (Xero's documented way) or the form (what xero-python sends)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            raw = base64.b64decode(header[6:]).decode()
        except ValueError:
            return "", ""
        client_id, _, secret = raw.partition(":")
        return client_id, secret
    return str(form.get("client_id", "")), str(form.get("client_secret", ""))


class IdentityServer:
    """The token endpoint and the connections list of one app with one organisation."""

    def __init__(self, tokens: Callable[[], RotatingTokenStore], tenant: Callable[[], dict[str, str]]) -> None:
        self._tokens = tokens
        self._tenant = tenant

    def add_to(self, app: web.Application) -> None:
        """Register `/connect/token` and `/connections`."""
        app.router.add_get("/identity/connect/authorize", self.authorize)
        app.router.add_post("/connect/token", self.token)
        # Xero's paths are case-insensitive: its docs write /connections, xero-python calls /Connections.
        app.router.add_get("/connections", self.connections)
        app.router.add_get("/Connections", self.connections)

    async def authorize(self, request: web.Request) -> web.Response:
        """The consent page, approved at once: a redirect to `redirect_uri` with `code` and `state`."""
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("response_type") != "code" or not urlsplit(redirect_uri).scheme.startswith("http"):
            return json_response({"error": "invalid_request"}, status=400)
        try:
            code = self._tokens().authorize(query.get("client_id", ""), redirect_uri, query.get("scope", ""))
        except ValueError:
            return json_response({"error": "unauthorized_client"}, status=400)
        params = {"code": code, "scope": query.get("scope", ""), **({"state": query["state"]} if "state" in query
                                                                      else {})}  # fmt: skip
        raise web.HTTPFound(redirect_uri + ("&" if urlsplit(redirect_uri).query else "?") + urlencode(params))

    async def token(self, request: web.Request) -> web.Response:
        """The authorization_code grant (`syncd auth`) and the refresh grant (every 30 minutes after)."""
        form = await request.post()
        grant = form.get("grant_type")
        client_id, secret = _client(request, form)
        if grant == "authorization_code":
            issued = self._tokens().exchange_code(client_id, secret, str(form.get("code", "")),
                                                  str(form.get("redirect_uri", "")))  # fmt: skip
        elif grant == "refresh_token":
            issued = self._tokens().refresh(client_id, secret, str(form.get("refresh_token", "")))
        else:
            return json_response({"error": "unsupported_grant_type"}, status=400)
        if issued is None:
            return json_response({"error": "invalid_grant"}, status=400)
        body: dict[str, Any] = {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in if not math.isinf(issued.expires_at) else 1800,
            "token_type": "Bearer",
            "refresh_token": issued.refresh_token,
            "scope": str(form.get("scope") or "offline_access accounting.transactions accounting.contacts"),
        }
        return json_response(body)

    async def connections(self, request: web.Request) -> web.Response:
        """The organisations the bearer token may reach."""
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if self._tokens().check(token) != "ok":
            return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        tenant = self._tenant()
        return json_response([{
            "id": tenant["connection_id"], "authEventId": tenant["auth_event_id"], "tenantId": tenant["tenant_id"],
            "tenantType": "ORGANISATION", "tenantName": tenant["name"],
            "createdDateUtc": "2025-01-01T00:00:00.0000000", "updatedDateUtc": "2025-01-01T00:00:00.0000000",
        }])  # fmt: skip


def new_tenant() -> dict[str, str]:
    """A fresh organisation's identifiers."""
    import uuid

    return {
        "tenant_id": str(uuid.uuid4()),
        "connection_id": str(uuid.uuid4()),
        "auth_event_id": str(uuid.uuid4()),
        "name": "Demo Company (US)",
        "webhook_key": base64.b64encode(secrets.token_bytes(48)).decode(),
    }
