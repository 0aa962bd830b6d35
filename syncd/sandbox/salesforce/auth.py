"""Salesforce OAuth 2.0 endpoints: refresh and authorization-code grants, and a stand-in login page."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from syncd.sandbox.oauth_tokens import IssuedToken, TokenStore
from syncd.sandbox.salesforce.responses import sf_json
from syncd.sandbox.salesforce.schema import INTEGRATION_USER_ID, ORG_ID

DEFAULT_SCOPE = "api refresh_token"


def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return sf_json({"error": error, "error_description": description}, status)


class OAuthEndpoints:
    """`/services/oauth2/token` and `/services/oauth2/authorize` of one simulated org."""

    def __init__(self, tokens: TokenStore, clock: Callable[[], float]) -> None:
        self.tokens = tokens
        self.clock = clock

    def routes(self) -> list[web.RouteDef]:
        """The OAuth routes."""
        return [
            web.post("/services/oauth2/token", self.token),
            web.get("/services/oauth2/authorize", self.authorize),
        ]

    async def token(self, request: web.Request) -> web.Response:
        """Exchange a refresh token or an authorization code for an access token."""
        form: Mapping[str, Any] = await request.post()
        # Salesforce also reads the parameters from the query string.
        params = {**request.query, **{k: v for k, v in form.items() if isinstance(v, str)}}
        grant_type = params.get("grant_type", "")
        client_id = params.get("client_id", "")
        client_secret = params.get("client_secret", "")
        if grant_type not in ("refresh_token", "authorization_code"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if client_id != self.tokens.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if client_secret != self.tokens.client_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant_type == "refresh_token":
            issued = self.tokens.refresh(client_id, client_secret, params.get("refresh_token", ""))
            if issued is None:
                return _oauth_error("invalid_grant", "expired access/refresh token")
            # Without refresh-token rotation Salesforce sends no new refresh token and no expires_in.
            return sf_json(self._body(request, issued, include_refresh=False))
        issued = self.tokens.exchange_code(
            client_id, client_secret, params.get("code", ""), params.get("redirect_uri", "")
        )
        if issued is None:
            return _oauth_error("invalid_grant", "invalid authorization code")
        return sf_json(self._body(request, issued, include_refresh=True))

    async def authorize(self, request: web.Request) -> web.Response:
        """Stand-in for the login and consent page: approve at once and redirect with a code."""
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id", "") != self.tokens.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return _oauth_error("redirect_uri_mismatch", "redirect_uri must match configuration")
        result: dict[str, str] = {}
        if query.get("response_type") != "code":
            result["error"] = "unsupported_response_type"
            result["error_description"] = "response type not supported"
        else:
            result["code"] = self.tokens.authorize(query["client_id"], redirect_uri, query.get("scope", DEFAULT_SCOPE))
        if "state" in query:
            result["state"] = query["state"]
        joined = "&".join(p for p in (parts.query, urlencode(result)) if p)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))
        raise web.HTTPFound(location)

    def _body(self, request: web.Request, issued: IssuedToken, *, include_refresh: bool) -> dict[str, Any]:
        instance_url = f"https://{request.host}"
        identity = f"{instance_url}/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        issued_at = str(int(issued.issued_at * 1000))
        # Salesforce signs id + issued_at with the consumer secret so clients can verify the response.
        digest = hmac.new(self.tokens.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256)
        body: dict[str, Any] = {
            "access_token": issued.access_token,
            "signature": base64.b64encode(digest.digest()).decode(),
            "scope": DEFAULT_SCOPE,
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if include_refresh:
            body["refresh_token"] = issued.refresh_token
        return body
