"""The properties API: list, read and create (custom) property definitions and property groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from syncd.sandbox.hubspot.catalog import PropertyDef
from syncd.sandbox.hubspot.errors import HubSpotError, json_response, not_found, validation_error
from syncd.sandbox.hubspot.values import iso_ms

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

PROPERTY_TYPES = frozenset({"bool", "date", "datetime", "enumeration", "number", "phone_number", "string"})
FIELD_TYPES = frozenset({"booleancheckbox", "calculation_equation", "checkbox", "date", "file", "html", "number",
                         "phonenumber", "radio", "select", "text", "textarea"})


def _group_json(name: str, label: str) -> dict[str, object]:
    """A `PropertyGroup` body."""
    return {"name": name, "label": label, "displayOrder": -1, "archived": False}


def add_property_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """GET/POST /crm/v3/properties/{object_type}, GET /crm/v3/properties/{object_type}/{name}, and GET/POST
    /crm/v3/properties/{object_type}/groups (a property's group must exist, as HubSpot requires)."""

    async def list_properties(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        return json_response(
            {"results": [p.to_json(iso_ms(p.created_at)) for p in sim.store.properties[obj].values()]}
        )

    async def get_property(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        prop = sim.store.properties[obj].get(request.match_info["name"])
        if prop is None:
            raise not_found(f"Unable to find property {request.match_info['name']!r} on {obj}.")
        return json_response(prop.to_json(iso_ms(prop.created_at)))

    async def create_property(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        body = await sim.json_body(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: the body must be an object.")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not isinstance(body.get(k), str)]
        if missing:
            raise validation_error(f"Missing required field(s): {', '.join(missing)}.")
        if body["type"] not in PROPERTY_TYPES or body["fieldType"] not in FIELD_TYPES:
            raise validation_error(f"Invalid type {body['type']!r} or fieldType {body['fieldType']!r}.")
        name = body["name"]
        if body["groupName"] not in sim.store.groups[obj]:
            raise validation_error(f"Property group {body['groupName']!r} does not exist on {obj}.")
        if name in sim.store.properties[obj]:
            raise HubSpotError(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
        options = tuple(str(o.get("value")) for o in body.get("options", []) if isinstance(o, Mapping))
        prop = PropertyDef(
            name, body["label"], body["type"], body["fieldType"], body["groupName"],
            unique=bool(body.get("hasUniqueValue", False)), hubspot_defined=False, options=options,
            created_at=sim.clock(),
        )
        sim.store.properties[obj][name] = prop
        return json_response(prop.to_json(iso_ms(prop.created_at)), status=201)

    async def list_groups(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        return json_response({"results": [_group_json(name, label) for name, label in sim.store.groups[obj].items()]})

    async def create_group(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        body = await sim.json_body(request)
        if not isinstance(body, Mapping) or not all(isinstance(body.get(k), str) and body[k]
                                                    for k in ("name", "label")):
            raise validation_error("Missing required field(s): name, label.")
        name = body["name"]
        if name in sim.store.groups[obj]:
            raise HubSpotError(409, f"Property group named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
        sim.store.groups[obj][name] = body["label"]
        return json_response(_group_json(name, body["label"]), status=201)

    base = "/crm/v3/properties/{object_type}"
    app.router.add_get(base + "/groups", sim.api(list_groups))
    app.router.add_post(base + "/groups", sim.api(create_group))
    app.router.add_get(base, sim.api(list_properties))
    app.router.add_post(base, sim.api(create_property))
    app.router.add_get(base + "/{name}", sim.api(get_property))

