"""The Zoho accounts server stand-in: `POST /oauth/v2/token` and the consent step `GET /oauth/v2/auth`.

As on accounts.zoho.com, parameters may come in the query string or a form body, and a bad grant is answered
with **HTTP 200** and `{"error": "invalid_code"}` (issue Weble/ZohoBooksApi#84), so clients must look for the
`error` key rather than at the status. A refresh answers `{access_token, expires_in: 3600, api_domain,
token_type: "Bearer"}` with no new refresh token; the authorization_code grant adds `refresh_token` and `scope`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from syncd.sandbox.oauth_tokens import IssuedToken, TokenStore
from syncd.sandbox.zohobooks.money import dumps

DEFAULT_SCOPE = "ZohoBooks.fullaccess.all"


def _token_answer(payload: dict[str, object]) -> web.Response:
    # The accounts server answers errors with 200 as well; only the body tells them apart.
    return web.Response(status=200, text=dumps(payload), content_type="application/json")


class AccountsServer:
    """OAuth handlers bound to the organisation's TokenStore; `api_domain` is where the Books API lives."""

    def __init__(self, tokens: Callable[[], TokenStore], api_domain: Callable[[web.Request], str]) -> None:
        self._tokens = tokens
        self._api_domain = api_domain
        self._scopes: dict[str, str] = {}  # refresh token -> scope granted in the code flow

    def add_to(self, app: web.Application) -> None:
        """Register `/oauth/v2/token` and `/oauth/v2/auth`."""
        app.add_routes([web.post("/oauth/v2/token", self.token), web.get("/oauth/v2/auth", self.authorize)])

    async def token(self, request: web.Request) -> web.Response:
        """POST /oauth/v2/token with grant_type refresh_token or authorization_code."""
        params = dict(request.query)
        if request.content_type == "application/x-www-form-urlencoded":
            raw = (await request.read()).decode("utf-8", errors="replace")
            params.update(parse_qsl(raw, keep_blank_values=True))
        store = self._tokens()
        grant_type = params.get("grant_type", "")
        client_id = params.get("client_id", "")
        client_secret = params.get("client_secret", "")
        if grant_type not in ("refresh_token", "authorization_code"):
            return _token_answer({"error": "unsupported_grant_type"})
        if not client_id or not secrets.compare_digest(client_id, store.client_id):
            return _token_answer({"error": "invalid_client"})
        if not secrets.compare_digest(client_secret, store.client_secret):
            return _token_answer({"error": "invalid_client_secret"})
        issued: IssuedToken | None
        if grant_type == "refresh_token":
            issued = store.refresh(client_id, client_secret, params.get("refresh_token", ""))
            if issued is None:
                return _token_answer({"error": "invalid_code"})
            return _token_answer(self._access_payload(request, issued))
        issued = store.exchange_code(client_id, client_secret, params.get("code", ""), params.get("redirect_uri", ""))
        if issued is None:
            return _token_answer({"error": "invalid_code"})
        payload = self._access_payload(request, issued)
        payload["refresh_token"] = issued.refresh_token
        payload["scope"] = self._scopes.get(params.get("code", ""), DEFAULT_SCOPE)
        return _token_answer(payload)

    def _access_payload(self, request: web.Request, issued: IssuedToken) -> dict[str, object]:
        return {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in if issued.expires_in is not None else 3600,
            "api_domain": self._api_domain(request),
            "token_type": "Bearer",
        }

    async def authorize(self, request: web.Request) -> web.Response:
        """GET /oauth/v2/auth: the consent page, approved at once, redirects to redirect_uri with a code."""
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("response_type", "code") != "code":
            raise web.HTTPBadRequest(text="Invalid response_type: only code is supported.")
        if not urlsplit(redirect_uri).scheme.startswith("http"):
            raise web.HTTPBadRequest(text="Invalid redirect_uri.")
        scope = query.get("scope", DEFAULT_SCOPE)
        try:
            code = self._tokens().authorize(query.get("client_id", ""), redirect_uri, scope)
        except ValueError as exc:
            raise web.HTTPBadRequest(text="Invalid client_id: no such client is registered.") from exc
        self._scopes[code] = scope
        accounts = f"{request.scheme}://{request.host}"
        params = {"code": code, "location": "us", "accounts-server": accounts}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if urlsplit(redirect_uri).query else "?"
        raise web.HTTPFound(redirect_uri + separator + urlencode(params))
