"""The CRM schemas API: the portal has no custom objects, and describes the standard ones it holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.associations import DEFAULT_TYPES
from syncd.sandbox.hubspot.catalog import DEFAULT_PROPERTIES, OBJECT_TYPE_IDS, SINGULAR
from syncd.sandbox.hubspot.errors import json_response
from syncd.sandbox.hubspot.values import iso_ms

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

_EPOCH_ISO = "1970-01-01T00:00:00Z"
# The property HubSpot shows as a record's name, per standard object.
PRIMARY_DISPLAY: dict[str, str] = {
    "contacts": "email", "companies": "name", "deals": "dealname", "line_items": "name",
}


def schema_json(sim: HubSpotSimulator, obj: str) -> dict[str, Any]:
    """An `ObjectSchema` body for a standard object the portal holds (metaType HUBSPOT)."""
    type_id = OBJECT_TYPE_IDS[obj]
    singular = SINGULAR[obj].replace("_", " ")
    return {
        "id": type_id.split("-", 1)[1],
        "objectTypeId": type_id,
        "name": SINGULAR[obj],
        "fullyQualifiedName": SINGULAR[obj].upper(),
        "metaType": "HUBSPOT",
        "labels": {"singular": singular.capitalize(), "plural": obj.replace("_", " ").capitalize()},
        "primaryDisplayProperty": PRIMARY_DISPLAY[obj],
        "requiredProperties": [],
        "searchableProperties": [p for p in DEFAULT_PROPERTIES[obj] if p not in ("createdate", "hs_object_id")],
        "secondaryDisplayProperties": [],
        "properties": [p.to_json(iso_ms(p.created_at)) for p in sim.store.properties[obj].values()],
        "associations": [
            {"id": str(type_id_), "fromObjectTypeId": type_id, "toObjectTypeId": OBJECT_TYPE_IDS[to_obj],
             "name": f"{SINGULAR[obj]}_to_{SINGULAR[to_obj]}".upper(), "createdAt": _EPOCH_ISO,
             "updatedAt": _EPOCH_ISO}
            for (from_obj, to_obj), type_id_ in DEFAULT_TYPES.items() if from_obj == obj
        ],
        "archived": False,
        "createdAt": _EPOCH_ISO,
        "updatedAt": _EPOCH_ISO,
    }


def add_schema_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """GET {prefix}/schemas and {prefix}/schemas/{objectType}, for both published prefixes (/crm/v3 and
    /crm-object-schemas/v3). The list holds custom objects only, and this portal has none (custom objects need
    an Enterprise subscription); readers such as Singer's tap-hubspot call it at start to find them."""

    async def list_schemas(request: web.Request) -> web.Response:
        return json_response({"results": []})

    async def get_schema(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        return json_response(schema_json(sim, obj))

    for prefix in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):
        app.router.add_get(prefix, sim.api(list_schemas))
        app.router.add_get(prefix + "/{object_type}", sim.api(get_schema))
