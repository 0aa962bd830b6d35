"""What HubSpot tells about a token: the v1 access- and refresh-token metadata reads (which readers such as
Airbyte's HubSpot source call to learn the granted scopes) and the v3 / 2026-03 introspection endpoint."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.errors import HubSpotError, json_response
from syncd.sandbox.hubspot.oauth import HUB_ID, SCOPES, USER_ID
from syncd.sandbox.hubspot.owners import OWNER_EMAIL

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

HUB_DOMAIN = f"sandbox-{HUB_ID}.hubspot.example"
# A token that never expires (lifetime set to none) reports a day, the longest a real access token lives.
_NO_EXPIRY_S = 86_400


def _access_info(sim: HubSpotSimulator, token: str, expires_at: float, app_id: int) -> dict[str, Any]:
    remaining = _NO_EXPIRY_S if math.isinf(expires_at) else max(0, int(expires_at - sim.clock()))
    return {"token": token, "user": OWNER_EMAIL, "hub_domain": HUB_DOMAIN, "scopes": list(SCOPES),
            "hub_id": HUB_ID, "app_id": app_id, "expires_in": remaining, "user_id": USER_ID,
            "token_type": "access"}


def _refresh_info(sim: HubSpotSimulator, token: str) -> dict[str, Any]:
    return {"token": token, "user": OWNER_EMAIL, "hub_domain": HUB_DOMAIN, "scopes": list(SCOPES),
            "hub_id": HUB_ID, "client_id": sim.client_id, "user_id": USER_ID, "token_type": "refresh"}


def add_token_info_routes(app: web.Application, sim: HubSpotSimulator, app_id: int) -> None:
    """GET /oauth/v1/access-tokens/{token}, GET /oauth/v1/refresh-tokens/{token}, and POST
    /oauth/v3/token/introspect (also under 2026-03). An unknown or expired token is a 404 on the v1 reads
    (unverified: HubSpot documents only the success body) and `{"active": false}` on introspection (RFC 7662)."""

    async def access_token(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        expires_at = sim.tokens.expires_at(token)
        if expires_at is None:
            return HubSpotError(404, "The access token does not exist or has expired.", "OBJECT_NOT_FOUND").response()
        return json_response(_access_info(sim, token, expires_at, app_id))

    async def refresh_token(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not sim.tokens.is_refresh_token(token):
            return HubSpotError(404, "The refresh token does not exist.", "OBJECT_NOT_FOUND").response()
        return json_response(_refresh_info(sim, token))

    async def introspect(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if (form.get("client_id"), form.get("client_secret")) != (sim.client_id, sim.client_secret):
            body = HubSpotError(400, "missing or invalid client credentials", "BAD_CLIENT_ID").body()
            return json_response(body | {"error": "invalid_client",
                                         "error_description": "missing or invalid client credentials"}, status=400)
        token = form.get("token", "")
        expires_at = sim.tokens.expires_at(token)
        if expires_at is not None:
            info = _access_info(sim, token, expires_at, app_id)
            expires_ms = 0 if math.isinf(expires_at) else int(expires_at * 1000)
            signed = {
                "appId": app_id, "appInstallId": f"{app_id}-{HUB_ID}", "audience": "", "expiresAt": expires_ms,
                "hubId": HUB_ID, "hublet": "na1", "installingUserId": USER_ID, "isPrivateDistribution": False,
                "isServiceAccount": False, "isUserLevel": False, "newSignature": "", "scopeToScopeGroupPks": "",
                "scopes": " ".join(SCOPES), "signature": "", "trialScopeToScopeGroupPks": "", "trialScopes": "",
                "userId": USER_ID,
            }
            return json_response(info | {"active": True, "client_id": sim.client_id, "token_type": "bearer",
                                         "token_use": "access_token", "is_private_distribution": False,
                                         "signed_access_token": signed})
        if sim.tokens.is_refresh_token(token):
            return json_response(_refresh_info(sim, token) | {"active": True, "app_id": app_id,
                                                              "token_type": "bearer", "token_use": "refresh_token"})
        return json_response({"active": False})

    app.router.add_get("/oauth/v1/access-tokens/{token}", access_token)
    app.router.add_get("/oauth/v1/refresh-tokens/{token}", refresh_token)
    for path in ("/oauth/v3/token/introspect", "/oauth/2026-03/token/introspect"):
        app.router.add_post(path, introspect)
