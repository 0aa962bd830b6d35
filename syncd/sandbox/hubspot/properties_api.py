"""The properties API: property definitions (list, read, create, update, archive, and in batches) and property
groups; HubSpot-defined properties cannot be archived and only their label changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.catalog import PropertyDef
from syncd.sandbox.hubspot.errors import HubSpotError, json_response, not_found, standard_error, validation_error
from syncd.sandbox.hubspot.values import iso_ms

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

PROPERTY_TYPES = frozenset({"bool", "date", "datetime", "enumeration", "number", "phone_number", "string"})
FIELD_TYPES = frozenset({"booleancheckbox", "calculation_equation", "checkbox", "date", "file", "html", "number",
                         "phonenumber", "radio", "select", "text", "textarea"})


def _group_json(name: str, label: str) -> dict[str, object]:
    """A `PropertyGroup` body."""
    return {"name": name, "label": label, "displayOrder": -1, "archived": False}


def _options(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The option values of a create or update body."""
    raw = body.get("options", [])
    return tuple(str(o.get("value")) for o in raw if isinstance(o, Mapping)) if isinstance(raw, list) else ()


def add_property_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """Every /crm/v3/properties/{object_type} route of HubSpot's Properties API (a property's group must exist,
    as HubSpot requires)."""

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

    def new_property(obj: str, body: Any, taken: set[str]) -> PropertyDef:
        """A custom property from a `PropertyCreate` body, checked as HubSpot checks it (`taken`: names that
        the same batch already claims)."""
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
        if name in sim.store.properties[obj] or name in taken:
            raise HubSpotError(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
        return PropertyDef(
            name, body["label"], body["type"], body["fieldType"], body["groupName"],
            unique=bool(body.get("hasUniqueValue", False)), hubspot_defined=False, options=_options(body),
            created_at=sim.clock(),
        )

    async def create_property(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        prop = new_property(obj, await sim.json_body(request), set())
        sim.store.properties[obj][prop.name] = prop
        return json_response(prop.to_json(iso_ms(prop.created_at)), status=201)

    def batch_body(results: list[dict[str, object]], errors: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso_ms(sim.clock()),
                               "completedAt": iso_ms(sim.clock())}
        if errors:
            out |= {"errors": errors, "numErrors": len(errors)}
        return out

    def names_of(body: Any) -> list[str]:
        inputs = body.get("inputs") if isinstance(body, Mapping) else None
        if not isinstance(inputs, list) or not all(isinstance(i, Mapping) and isinstance(i.get("name"), str)
                                                   for i in inputs):
            raise validation_error("Invalid input JSON: inputs must be a list of {name}.")
        return [str(i["name"]) for i in inputs]

    async def batch_read(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        defined = sim.store.properties[obj]
        wanted = names_of(await sim.json_body(request))
        results = [defined[n].to_json(iso_ms(defined[n].created_at)) for n in wanted if n in defined]
        missing = [n for n in wanted if n not in defined]
        errors = [standard_error("OBJECT_NOT_FOUND", f"Unable to find property {n!r} on {obj}.", {"name": [n]})
                  for n in missing]
        return json_response(batch_body(results, errors), status=207 if errors else 200)

    async def batch_create(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        body = await sim.json_body(request)
        inputs = body.get("inputs") if isinstance(body, Mapping) else None
        if not isinstance(inputs, list):
            raise validation_error("Invalid input JSON: inputs must be a list.")
        # The whole batch is checked before any property is made.
        made: list[PropertyDef] = []
        for item in inputs:
            made.append(new_property(obj, item, {p.name for p in made}))
        for prop in made:
            sim.store.properties[obj][prop.name] = prop
        return json_response(batch_body([p.to_json(iso_ms(p.created_at)) for p in made], []), status=201)

    def archivable(obj: str, name: str) -> PropertyDef | None:
        prop = sim.store.properties[obj].get(name)
        if prop is not None and prop.hubspot_defined:
            raise validation_error(f"{name} is a HubSpot-defined property and cannot be archived.")
        return prop

    async def batch_archive(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        names = names_of(await sim.json_body(request))
        for name in names:
            archivable(obj, name)
        for name in names:
            sim.store.properties[obj].pop(name, None)
        return web.Response(status=204)

    async def archive_property(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        if archivable(obj, request.match_info["name"]) is None:
            raise not_found(f"Unable to find property {request.match_info['name']!r} on {obj}.")
        del sim.store.properties[obj][request.match_info["name"]]
        return web.Response(status=204)

    async def update_property(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        prop = sim.store.properties[obj].get(request.match_info["name"])
        if prop is None:
            raise not_found(f"Unable to find property {request.match_info['name']!r} on {obj}.")
        body = await sim.json_body(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: the body must be an object.")
        if prop.hubspot_defined and set(body) - {"label", "description", "displayOrder", "hidden", "formField"}:
            raise validation_error(f"{prop.name} is a HubSpot-defined property: only its label and display can change.")
        group = body.get("groupName", prop.group)
        if group not in sim.store.groups[obj]:
            raise validation_error(f"Property group {group!r} does not exist on {obj}.")
        kind, field_type = body.get("type", prop.type), body.get("fieldType", prop.field_type)
        if kind not in PROPERTY_TYPES or field_type not in FIELD_TYPES:
            raise validation_error(f"Invalid type {kind!r} or fieldType {field_type!r}.")
        options = _options(body) if "options" in body else prop.options
        updated = replace(prop, label=str(body.get("label", prop.label)), type=kind, field_type=field_type,
                          group=group, options=options)
        sim.store.properties[obj][prop.name] = updated
        return json_response(updated.to_json(iso_ms(updated.created_at)))

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

    def group_named(obj: str, name: str) -> str:
        label = sim.store.groups[obj].get(name)
        if label is None:
            raise not_found(f"Unable to find property group {name!r} on {obj}.")
        return label

    async def get_group(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        name = request.match_info["group"]
        return json_response(_group_json(name, group_named(obj, name)))

    async def update_group(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        name = request.match_info["group"]
        group_named(obj, name)
        body = await sim.json_body(request)
        label = body.get("label") if isinstance(body, Mapping) else None
        if label is not None:
            if not isinstance(label, str) or not label:
                raise validation_error("label must be a non-empty string.")
            sim.store.groups[obj][name] = label
        return json_response(_group_json(name, sim.store.groups[obj][name]))

    async def archive_group(request: web.Request) -> web.Response:
        obj = sim.object_type(request.match_info["object_type"])
        name = request.match_info["group"]
        group_named(obj, name)
        # (Unverified detail: HubSpot's docs do not say what happens to a group's properties; the sandbox keeps
        # a group that properties still use.)
        if any(p.group == name for p in sim.store.properties[obj].values()):
            raise validation_error(f"Property group {name!r} still has properties; move or archive them first.")
        del sim.store.groups[obj][name]
        return web.Response(status=204)

    base = "/crm/v3/properties/{object_type}"
    app.router.add_get(base + "/groups", sim.api(list_groups))
    app.router.add_post(base + "/groups", sim.api(create_group))
    app.router.add_get(base, sim.api(list_properties))
    app.router.add_post(base, sim.api(create_property))
    app.router.add_get(base + "/groups/{group}", sim.api(get_group))
    app.router.add_patch(base + "/groups/{group}", sim.api(update_group))
    app.router.add_delete(base + "/groups/{group}", sim.api(archive_group))
    app.router.add_post(base + "/batch/read", sim.api(batch_read))
    app.router.add_post(base + "/batch/create", sim.api(batch_create))
    app.router.add_post(base + "/batch/archive", sim.api(batch_archive))
    app.router.add_get(base + "/{name}", sim.api(get_property))
    app.router.add_patch(base + "/{name}", sim.api(update_property))
    app.router.add_delete(base + "/{name}", sim.api(archive_property))

