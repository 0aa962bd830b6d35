"""The legacy v1/v2 properties API (`/properties/v1|v2/{object}/properties`, `/companies/v2/properties`) that
older readers still call to discover a portal's fields; same definitions as the v3 API, in the old shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.catalog import PropertyDef
from syncd.sandbox.hubspot.errors import json_response, not_found

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

# The v3 `phone_number` type did not exist in the legacy API: phone numbers were strings there.
_LEGACY_TYPES = {"phone_number": "string"}


def legacy_property_json(prop: PropertyDef, created_ms: int) -> dict[str, Any]:
    """A property definition as the v1/v2 properties API answers it (times in epoch ms)."""
    return {
        "name": prop.name,
        "label": prop.label,
        "description": "",
        "groupName": prop.group,
        "type": _LEGACY_TYPES.get(prop.type, prop.type),
        "fieldType": prop.field_type,
        "options": [
            {"label": option, "value": option, "displayOrder": i, "hidden": False, "description": None,
             "readOnly": False}
            for i, option in enumerate(prop.options)
        ],
        "displayOrder": -1,
        "hidden": False,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": prop.unique,
        "formField": not prop.read_only,
        "readOnlyValue": prop.read_only,
        "readOnlyDefinition": prop.hubspot_defined,
        "mutableDefinitionNotDeletable": prop.hubspot_defined,
        "hubspotDefined": prop.hubspot_defined,
        "favorited": False,
        "favoritedOrder": -1,
        "deleted": False,
        "createdAt": created_ms,
        "updatedAt": created_ms,
        "createdUserId": None,
        "updatedUserId": None,
        "referencedObjectType": None,
        "calculationFormula": None,
        "showCurrencySymbol": None,
        "searchableInGlobalSearch": False,
        "optionsAreMutable": None,
        "isCustomizedDefault": False,
    }


def add_legacy_property_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """GET the v1/v2 property lists, one property by name, and the groups (optionally with their properties)."""

    def definitions(obj: str) -> list[dict[str, Any]]:
        return [legacy_property_json(p, _created_ms(p)) for p in sim.store.properties[obj].values()]

    async def list_properties(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        return json_response(definitions(obj))

    async def companies_list(request: web.Request) -> web.Response:
        return json_response(definitions("companies"))

    async def contacts_list(request: web.Request) -> web.Response:
        return json_response(definitions("contacts"))

    async def named(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        prop = sim.store.properties[obj].get(request.match_info["name"])
        if prop is None:
            raise not_found(f"property {request.match_info['name']!r} does not exist")
        return json_response(legacy_property_json(prop, _created_ms(prop)))

    async def groups(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        with_properties = request.query.get("includeProperties", "false").lower() == "true"
        out = []
        for order, (name, label) in enumerate(sim.store.groups[obj].items()):
            group: dict[str, Any] = {"name": name, "displayName": label, "displayOrder": order,
                                     "hubspotDefined": name != "syncd"}
            if with_properties:
                group["properties"] = [legacy_property_json(p, _created_ms(p))
                                       for p in sim.store.properties[obj].values() if p.group == name]
            out.append(group)
        return json_response(out)

    for version in ("v1", "v2"):
        base = f"/properties/{version}/{{object_type}}"
        for suffix in ("/properties", "/properties/"):
            app.router.add_get(base + suffix, sim.api(list_properties))
        app.router.add_get(base + "/properties/named/{name}", sim.api(named))
        app.router.add_get(base + "/groups", sim.api(groups))
    app.router.add_get("/companies/v2/properties", sim.api(companies_list))
    app.router.add_get("/contacts/v2/properties", sim.api(contacts_list))


def _created_ms(prop: PropertyDef) -> int:
    # HubSpot's own definitions are dated at the epoch; custom ones carry their creation time.
    return int(prop.created_at * 1000)
