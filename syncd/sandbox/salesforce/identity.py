"""Who the session belongs to: the identity URL that every token response names (`/id/{orgId}/{userId}`) and the
OpenID Connect `/services/oauth2/userinfo`, which tools call to check a connection and find the REST URLs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from syncd.sandbox.oauth_tokens import TokenStore
from syncd.sandbox.salesforce.responses import LATEST_VERSION, sf_json
from syncd.sandbox.salesforce.schema import INTEGRATION_USER_ID, ORG_ID

USERNAME = "integration@sandbox-org.example"
FIRST_NAME, LAST_NAME = "Integration", "User"
UPDATED = "2024-01-02T09:00:00.000+0000"


def _urls(instance_url: str) -> dict[str, str]:
    rest = f"{instance_url}/services/data/v{{version}}/"
    return {
        "rest": rest, "sobjects": rest + "sobjects/", "query": rest + "query/", "search": rest + "search/",
        "recent": rest + "recent/", "limits": rest + "limits/", "profile": f"{instance_url}/{INTEGRATION_USER_ID}",
        "custom_domain": instance_url,
    }


def identity_json(instance_url: str) -> dict[str, Any]:
    """The identity service's answer for the org's integration user."""
    return {
        "id": f"{instance_url}/id/{ORG_ID}/{INTEGRATION_USER_ID}", "asserted_user": True,
        "user_id": INTEGRATION_USER_ID, "organization_id": ORG_ID, "username": USERNAME, "nick_name": "integration",
        "display_name": f"{FIRST_NAME} {LAST_NAME}", "email": USERNAME, "email_verified": True,
        "first_name": FIRST_NAME, "last_name": LAST_NAME, "timezone": "GMT", "active": True,
        "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
        "last_modified_date": UPDATED, "is_app_installed": True, "urls": _urls(instance_url),
    }


def userinfo_json(instance_url: str) -> dict[str, Any]:
    """The OpenID Connect UserInfo answer for the same user."""
    return {
        "sub": f"{instance_url}/id/{ORG_ID}/{INTEGRATION_USER_ID}", "user_id": INTEGRATION_USER_ID,
        "organization_id": ORG_ID, "preferred_username": USERNAME, "nickname": "integration",
        "name": f"{FIRST_NAME} {LAST_NAME}", "email": USERNAME, "email_verified": True, "given_name": FIRST_NAME,
        "family_name": LAST_NAME, "zoneinfo": "GMT", "profile": f"{instance_url}/{INTEGRATION_USER_ID}",
        "active": True, "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
        "updated_at": UPDATED, "is_app_installed": True, "urls": _urls(instance_url),
    }


class IdentityEndpoints:
    """GET /id/{orgId}/{userId} and GET /services/oauth2/userinfo for a live session.

    A missing or dead token gets 403 with the text body `Bad_OAuth_Token` (unverified: the identity service's
    documented failure for a bad token; Salesforce documents no JSON body for it)."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def routes(self) -> list[web.RouteDef]:
        """The identity routes."""
        return [
            web.get("/id/{org_id}/{user_id}", self.identity),
            web.get("/services/oauth2/userinfo", self.userinfo),
        ]

    def _live(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            token = request.query.get("oauth_token", "")
        return bool(token.strip()) and self.tokens.check(token.strip()) == "ok"

    async def identity(self, request: web.Request) -> web.Response:
        """The user the identity URL names, which must be the session's."""
        if not self._live(request):
            return web.Response(status=403, text="Bad_OAuth_Token")
        if (request.match_info["org_id"], request.match_info["user_id"]) != (ORG_ID, INTEGRATION_USER_ID):
            return web.Response(status=404, text="Bad_Id")
        return sf_json(_versioned(identity_json(f"{request.scheme}://{request.host}"), request))

    async def userinfo(self, request: web.Request) -> web.Response:
        """The session's user, OpenID Connect style."""
        if not self._live(request):
            return web.Response(status=403, text="Bad_OAuth_Token")
        return sf_json(_versioned(userinfo_json(f"{request.scheme}://{request.host}"), request))


def _versioned(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    """Fill the `{version}` of the URLs: the one asked for with `?version=`, else the latest."""
    version = request.query.get("version", LATEST_VERSION)
    body["urls"] = {k: v.replace("{version}", version) for k, v in body["urls"].items()}
    return body
