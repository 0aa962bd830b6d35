"""The portal's one user, who installed the app and owns its records: the Owners API (v3 and the legacy v2 list)
and the Users API (`/settings/v3/users`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.errors import json_response, not_found, validation_error
from syncd.sandbox.hubspot.oauth import HUB_ID, USER_ID

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

OWNER_ID = 41_529_301
OWNER_EMAIL = "owner@sandbox-portal.example"
OWNER_FIRST, OWNER_LAST = "Sandbox", "Owner"
_CREATED = "2024-01-02T09:00:00.000Z"
_CREATED_MS = 1_704_186_000_000
LIMIT_MAX = 500


def owner_v3_json() -> dict[str, Any]:
    """The owner as a v3 `PublicOwner` body."""
    return {
        "id": str(OWNER_ID), "email": OWNER_EMAIL, "type": "PERSON", "firstName": OWNER_FIRST,
        "lastName": OWNER_LAST, "userId": USER_ID, "userIdIncludingInactive": USER_ID, "createdAt": _CREATED,
        "updatedAt": _CREATED, "archived": False, "teams": [],
    }


def owner_v2_json() -> dict[str, Any]:
    """The owner as the legacy Owners API (`/owners/v2/owners`) described it (times in epoch ms)."""
    return {
        "portalId": HUB_ID, "ownerId": OWNER_ID, "type": "PERSON", "firstName": OWNER_FIRST,
        "lastName": OWNER_LAST, "email": OWNER_EMAIL, "createdAt": _CREATED_MS, "updatedAt": _CREATED_MS,
        "remoteList": [], "hasContactsAccess": True, "activeUserId": USER_ID, "userIdIncludingInactive": USER_ID,
        "isActive": True,
    }


def user_json() -> dict[str, Any]:
    """The user as the Users API (`PublicUser`) answers it."""
    return {"id": str(USER_ID), "email": OWNER_EMAIL, "firstName": OWNER_FIRST, "lastName": OWNER_LAST,
            "roleIds": [], "primaryTeamId": None, "secondaryTeamIds": [], "superAdmin": True}


def add_owner_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """GET /crm/v3/owners (limit, after, email, archived), GET /crm/v3/owners/{ownerId} (idProperty id|userId),
    GET /owners/v2/owners, and GET /settings/v3/users[/{userId}] (idProperty USER_ID|EMAIL)."""

    async def list_owners(request: web.Request) -> web.Response:
        raw_limit = request.query.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIMIT_MAX:
            raise validation_error(f"limit must be between 1 and {LIMIT_MAX}; got {raw_limit!r}.")
        email = request.query.get("email")
        archived = request.query.get("archived", "false").lower() == "true"
        matches = not archived and (email is None or email.lower() == OWNER_EMAIL)
        after = request.query.get("after")
        # One owner: a page after its own cursor is empty.
        shown = matches and (after is None or after == "")
        return json_response({"results": [owner_v3_json()] if shown else []})

    async def get_owner(request: web.Request) -> web.Response:
        id_property = request.query.get("idProperty", "id")
        wanted = {"id": str(OWNER_ID), "userId": str(USER_ID)}.get(id_property)
        if wanted is None:
            raise validation_error(f"idProperty must be id or userId; got {id_property!r}.")
        if request.match_info["owner_id"] != wanted:
            raise not_found(f"No owner with {id_property} {request.match_info['owner_id']}.")
        return json_response(owner_v3_json())

    async def list_v2(request: web.Request) -> web.Response:
        email = request.query.get("email")
        return json_response([owner_v2_json()] if email is None or email.lower() == OWNER_EMAIL else [])

    for path in ("/crm/v3/owners", "/crm/v3/owners/"):
        app.router.add_get(path, sim.api(list_owners))
    app.router.add_get("/crm/v3/owners/{owner_id}", sim.api(get_owner))
    app.router.add_get("/owners/v2/owners", sim.api(list_v2))
    app.router.add_get("/owners/v2/owners/", sim.api(list_v2))

    async def list_users(request: web.Request) -> web.Response:
        after = request.query.get("after")
        return json_response({"results": [user_json()] if not after else []})

    async def get_user(request: web.Request) -> web.Response:
        id_property = request.query.get("idProperty", "USER_ID")
        wanted = {"USER_ID": str(USER_ID), "EMAIL": OWNER_EMAIL}.get(id_property)
        if wanted is None:
            raise validation_error(f"idProperty must be USER_ID or EMAIL; got {id_property!r}.")
        if request.match_info["user_id"].lower() != wanted:
            raise not_found(f"No user with {id_property} {request.match_info['user_id']}.")
        return json_response(user_json())

    for path in ("/settings/v3/users", "/settings/v3/users/"):
        app.router.add_get(path, sim.api(list_users))
    app.router.add_get("/settings/v3/users/{user_id}", sim.api(get_user))
