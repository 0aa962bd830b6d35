"""HubSpot's OAuth endpoints (token grant, authorize stand-in) and the bearer-token check of API calls."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from syncd.sandbox.hubspot.errors import HubSpotError, json_response
from syncd.sandbox.hubspot.values import iso_ms

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

HUB_ID = 62515
USER_ID = 4567
# What the sandbox app is granted: the objects the portal holds, their schemas (properties, pipelines), and the
# owners and users that readers list beside them.
SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.companies.read",
          "crm.objects.companies.write", "crm.objects.deals.read", "crm.objects.deals.write",
          "crm.objects.line_items.read", "crm.objects.line_items.write", "crm.schemas.contacts.read",
          "crm.schemas.companies.read", "crm.schemas.deals.read", "crm.schemas.line_items.read",
          "crm.objects.owners.read", "settings.users.read", "oauth")


# RFC 6749 error codes, which the v3 and 2026-03 token endpoints add beside HubSpot's own (`error`,
# `error_description`; HubSpot changelog "New OAuth v3 API Endpoints and Standardized Error Responses").
_RFC_ERRORS = {
    "BAD_REFRESH_TOKEN": "invalid_grant", "BAD_AUTH_CODE": "invalid_grant", "BAD_CLIENT_ID": "invalid_client",
    "BAD_CLIENT_SECRET": "invalid_client", "UNSUPPORTED_GRANT_TYPE": "unsupported_grant_type",
    "BAD_REQUEST": "invalid_request", "BAD_REDIRECT_URI": "invalid_request",
}


def _oauth_error(status_code: str, message: str, *, rfc: bool = False) -> web.Response:
    # OAuth errors carry the error code in `status` (as HubSpot sends) and in `category` (the Error shape).
    error = HubSpotError(400, message, status_code)
    if not rfc:
        return error.response_with_status(status_code)
    body = error.body() | {"status": status_code, "error": _RFC_ERRORS[status_code], "error_description": message}
    return json_response(body, status=400)


def add_oauth_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """POST /oauth/v1/token (and its v3 and 2026-03 successors) and GET /oauth/authorize."""

    async def token(request: web.Request) -> web.Response:
        rfc = not request.path.startswith("/oauth/v1/")
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error("BAD_REQUEST", "The request must be application/x-www-form-urlencoded.", rfc=rfc)
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        store = sim.tokens
        grant = fields.get("grant_type", "")
        client_id = fields.get("client_id", "")
        client_secret = fields.get("client_secret", "")
        if grant not in ("refresh_token", "authorization_code"):
            return _oauth_error("UNSUPPORTED_GRANT_TYPE", f"unsupported grant_type {grant!r}", rfc=rfc)
        if client_id != store.client_id:
            return _oauth_error("BAD_CLIENT_ID", "missing or unknown client id", rfc=rfc)
        if client_secret != store.client_secret:
            return _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret", rfc=rfc)
        if grant == "refresh_token":
            issued = store.refresh(client_id, client_secret, fields.get("refresh_token", ""))
            if issued is None:
                return _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token", rfc=rfc)
        else:
            issued = store.exchange_code(
                client_id, client_secret, fields.get("code", ""), fields.get("redirect_uri", "")
            )
            if issued is None:
                return _oauth_error("BAD_AUTH_CODE", "missing or unknown auth code", rfc=rfc)
        sim.token_expiry[issued.access_token] = issued.expires_at
        return json_response(
            {
                "token_type": "bearer",
                "refresh_token": issued.refresh_token,
                "access_token": issued.access_token,
                "expires_in": issued.expires_in if issued.expires_in is not None else 1800,
                "token_use": "access_token",
                "hub_id": HUB_ID,
                "user_id": USER_ID,
                "scopes": list(SCOPES),
            }
        )

    async def authorize(request: web.Request) -> web.Response:
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            return _oauth_error("BAD_REDIRECT_URI", "redirect_uri must be an http(s) URL")
        try:
            code = sim.tokens.authorize(query.get("client_id", ""), redirect_uri, query.get("scope", ""))
        except ValueError:
            return _oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{separator}{urlencode(params)}")

    # The same grant under the newer published paths (v3, and the date-versioned 2026-03 one that current
    # readers such as Singer's tap-hubspot call); the v1 path is deprecated but still served by HubSpot.
    for path in ("/oauth/v1/token", "/oauth/v3/token", "/oauth/2026-03/token"):
        app.router.add_post(path, token)
    app.router.add_get("/oauth/authorize", authorize)


def check_bearer(request: web.Request, sim: HubSpotSimulator) -> None:
    """401 unless the request carries a live access token (the Webhooks API checks its developer key itself)."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    state = sim.tokens.check(token) if token else "unknown"
    if state == "ok":
        return
    if state == "expired":
        now = sim.clock()
        expired_at = min(sim.token_expiry.get(token, now), now)
        raise HubSpotError(
            401,
            f"The OAuth token used to make this call expired {int(now - expired_at)} second(s) ago.",
            "EXPIRED_AUTHENTICATION",
            context={"expire time": [iso_ms(expired_at)]},
        )
    raise HubSpotError(
        401,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
        "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "INVALID_AUTHENTICATION",
    )
