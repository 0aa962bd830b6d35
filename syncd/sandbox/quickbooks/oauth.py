"""Intuit's OAuth 2.0 server stand-in: the discovery document intuit-oauth's AuthClient reads first, the consent
step, and the token endpoint with rolling refresh tokens.

`GET /.well-known/openid_configuration/` names the endpoints (AuthClient takes a discovery URL as its
`environment`, so the official client finds this server without being changed). `POST /oauth2/v1/tokens/bearer`
authenticates the client with HTTP Basic and answers `{access_token, expires_in: 3600, refresh_token,
x_refresh_token_expires_in, token_type: "bearer"}`; every refresh hands out a new refresh token (Intuit rolls
them: keep the newest), the one used stays good for 24 hours more. A bad grant is `400 {"error":
"invalid_grant"}`, a bad client `401 {"error": "invalid_client"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from syncd.sandbox.oauth_tokens import IssuedToken, TokenStore

DISCOVERY_PATH = "/.well-known/openid_configuration/"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/oauth2/v1/tokens/revoke"
AUTHORIZE_PATH = "/connect/oauth2"
REFRESH_LIFETIME_S = 8_726_400  # 101 days, as Intuit reports it
OLD_REFRESH_GRACE_S = 86_400.0


class RollingTokenStore(TokenStore):
    """A TokenStore whose refresh hands out a new refresh token each time; the one used expires a day later."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._retiring: dict[str, float] = {}  # refresh token -> when it stops working

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> IssuedToken | None:
        """A new access token and a new refresh token; the old refresh token keeps working for a day."""
        now = self.clock()
        ends = self._retiring.get(refresh_token)
        if ends is not None and now >= ends:
            self._refresh_tokens.discard(refresh_token)
            self._retiring.pop(refresh_token, None)
        if super().refresh(client_id, client_secret, refresh_token) is None:
            return None
        self._retiring.setdefault(refresh_token, now + OLD_REFRESH_GRACE_S)
        rolled = self._mint("rt")
        self._refresh_tokens.add(rolled)
        return self._issue(rolled)

    def reinstate(self) -> None:
        """The initial refresh token live again, with no end."""
        super().reinstate()
        self._retiring.pop(self.refresh_token, None)


def _client(request: web.Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def _answer(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json",
                        headers={"Cache-Control": "no-cache, no-store"})  # fmt: skip


class IntuitOAuthServer:
    """The OAuth handlers of one company's app, bound to its token store; `realm` is the company's id."""

    def __init__(self, tokens: Callable[[], RollingTokenStore], realm: Callable[[], str]) -> None:
        self._tokens = tokens
        self._realm = realm

    def add_to(self, app: web.Application) -> None:
        """Register discovery, consent, token and revoke endpoints."""
        app.add_routes([
            web.get(DISCOVERY_PATH, self.discovery),
            web.get(AUTHORIZE_PATH, self.authorize),
            web.post(TOKEN_PATH, self.token),
            web.post(REVOKE_PATH, self.revoke),
        ])  # fmt: skip

    async def discovery(self, request: web.Request) -> web.Response:
        """The OpenID configuration document, pointing at this server."""
        base = f"{request.scheme}://{request.host}"
        return web.json_response({
            "issuer": base,
            "authorization_endpoint": base + AUTHORIZE_PATH,
            "token_endpoint": base + TOKEN_PATH,
            "userinfo_endpoint": base + "/v1/openid_connect/userinfo",
            "revocation_endpoint": base + REVOKE_PATH,
            "jwks_uri": base + "/oauth2/v1/keys",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone", "com.intuit.quickbooks.accounting"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        })  # fmt: skip

    async def token(self, request: web.Request) -> web.Response:
        """POST grant_type=refresh_token or authorization_code (form body, client in Basic auth)."""
        form = dict(parse_qsl((await request.read()).decode("utf-8", errors="replace"), keep_blank_values=True))
        store = self._tokens()
        client_id, client_secret = _client(request, form)
        if not (client_id and secrets.compare_digest(client_id, store.client_id)
                and secrets.compare_digest(client_secret, store.client_secret)):  # fmt: skip
            return _answer(401, {"error": "invalid_client"})
        grant_type = form.get("grant_type", "")
        if grant_type == "refresh_token":
            issued = store.refresh(client_id, client_secret, form.get("refresh_token", ""))
        elif grant_type == "authorization_code":
            issued = store.exchange_code(client_id, client_secret, form.get("code", ""), form.get("redirect_uri", ""))
        else:
            return _answer(400, {"error": "unsupported_grant_type"})
        if issued is None:
            return _answer(400, {"error": "invalid_grant"})
        return _answer(200, {
            "token_type": "bearer",
            "access_token": issued.access_token,
            "expires_in": issued.expires_in if issued.expires_in is not None else 3600,
            "refresh_token": issued.refresh_token,
            "x_refresh_token_expires_in": REFRESH_LIFETIME_S,
        })  # fmt: skip

    async def revoke(self, request: web.Request) -> web.Response:
        """The app is disconnected: every grant goes."""
        form: dict[str, str] = {}
        store = self._tokens()
        client_id, client_secret = _client(request, form)
        if not (client_id and secrets.compare_digest(client_id, store.client_id)
                and secrets.compare_digest(client_secret, store.client_secret)):  # fmt: skip
            return _answer(401, {"error": "invalid_client"})
        store.revoke()
        return web.Response(status=200)

    async def authorize(self, request: web.Request) -> web.Response:
        """The consent page, approved at once: back to redirect_uri with `code`, `state` and `realmId`."""
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("response_type", "code") != "code" or not urlsplit(redirect_uri).scheme.startswith("http"):
            raise web.HTTPBadRequest(text="invalid request: response_type must be code, redirect_uri http(s)")
        try:
            code = self._tokens().authorize(query.get("client_id", ""), redirect_uri, query.get("scope", ""))
        except ValueError as exc:
            raise web.HTTPBadRequest(text="invalid client_id") from exc
        params = {"code": code, "realmId": self._realm()}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if urlsplit(redirect_uri).query else "?"
        raise web.HTTPFound(redirect_uri + separator + urlencode(params))
