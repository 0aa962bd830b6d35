"""`syncd setup` for HubSpot: the property group `syncd` and every `syncd_*` property the active mappings use
are created through the Properties API v3 (a 409 means someone made it meanwhile: already there). Other
properties a mapping names but the portal lacks, and the OAuth scopes, go to the checklist."""

from __future__ import annotations

from typing import Any

from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from syncd.connectors.base import Connector
from syncd.connectors.hubspot.connector import DEAL_ASSOCIATIONS, DEAL_EXTRAS, HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.setup import FieldKind, NeededField, SetupItem, SystemNeeds, scope_items
from syncd.errors import ConnectorError, DuplicateError, UnknownOutcomeError
from syncd.settings import ConnectionBase

# syncd creates only the properties named as its own; any other missing property is a mapping's mistake or
# the portal's business, so a person decides.
OWN_PREFIX = "syncd_"
GROUP = "syncd"
_TYPES: dict[FieldKind, tuple[str, str]] = {
    "string": ("string", "text"),
    "reference": ("string", "text"),
    "number": ("number", "number"),
    "date": ("date", "date"),
    "datetime": ("datetime", "date"),
    "bool": ("bool", "booleancheckbox"),
}


def _label(need: NeededField) -> str:
    """A property's label as people see it in HubSpot: `syncd_invoice_due_date` → "Invoice due date (syncd)"."""
    if need.reference:
        return "syncd reference"
    words = need.name.removeprefix(OWN_PREFIX).replace("_", " ")
    return f"{words[:1].upper()}{words[1:]} (syncd)"


def _description(need: NeededField) -> str:
    if need.reference:
        return ("The reference syncd stores on each record it creates, to find the record again; unique. "
                "Do not edit.")
    return f"Kept by syncd ({', '.join(need.mappings)}); edits may be overwritten."


def _portal_objects(needs: SystemNeeds) -> dict[str, dict[str, NeededField]]:
    """Needs by HubSpot object: a deal's line items are the `line_items` object; association and line-item
    fields are the connector's, not properties."""
    objects: dict[str, dict[str, NeededField]] = {}
    for key, fields in needs.objects.items():
        obj = key.split(".", 1)[1] if "." in key else key
        own = objects.setdefault(obj, {})
        for name, need in fields.items():
            if name not in DEAL_EXTRAS:
                own[name] = need
    return objects


def _scopes(needs: SystemNeeds, objects: dict[str, dict[str, NeededField]], creating: set[str]
            ) -> list[tuple[str, str]]:
    """The scopes the mappings need: read (and write where syncd writes) per object, the schema scope where
    properties are to be created."""
    read = set(objects)
    for fields in needs.objects.values():
        read.update(DEAL_ASSOCIATIONS[name] for name in fields if name in DEAL_ASSOCIATIONS)
    written = {key.split(".", 1)[-1] for key in needs.written}
    scopes: list[tuple[str, str]] = []
    for obj in sorted(read):
        scopes.append((f"crm.objects.{obj}.read", f"read {obj}"))
        if obj in written:
            scopes.append((f"crm.objects.{obj}.write", f"write {obj}"))
    scopes += [(f"crm.schemas.{obj}.write", f"create {obj} properties") for obj in sorted(creating)]
    return scopes


async def _call(connector: HubSpotConnector, what: str, call: Any, *, unsafe_write: bool = False) -> Any:
    return (await connector.transport.call(what, call, unsafe_write=unsafe_write)).body


async def _ensure_group(connector: HubSpotConnector, obj: str) -> SetupItem:
    """The `syncd` property group on `obj` (HubSpot requires a property's group to exist)."""
    listed = await _call(connector, f"list {obj} property groups", lambda a, t:
                         a.property_groups.get_all_with_http_info(obj, _preload_content=False, _request_timeout=t))
    if any(group.get("name") == GROUP for group in (listed or {}).get("results", [])):
        return SetupItem("present", f"property group {obj}.{GROUP}")
    body = PropertyGroupCreate(name=GROUP, label="syncd", display_order=-1)
    try:
        await _call(connector, f"create {obj} property group {GROUP}", lambda a, t:
                    a.property_groups.create_with_http_info(obj, body, _preload_content=False, _request_timeout=t),
                    unsafe_write=True)
    except DuplicateError:
        return SetupItem("present", f"property group {obj}.{GROUP}")
    return SetupItem("created", f"property group {obj}.{GROUP}")


async def _create_property(connector: HubSpotConnector, obj: str, need: NeededField) -> SetupItem:
    kind, field_type = _TYPES[need.kind]
    what = f"property {obj}.{need.name}: {kind} ({field_type}){', unique' if need.reference else ''}, group {GROUP}"
    body = PropertyCreate(name=need.name, label=_label(need), type=kind, field_type=field_type, group_name=GROUP,
                          description=_description(need), has_unique_value=need.reference, form_field=False)
    try:
        await _call(connector, f"create {obj} property {need.name}", lambda a, t:
                    a.properties.create_with_http_info(obj, body, _preload_content=False, _request_timeout=t),
                    unsafe_write=True)
    except DuplicateError:
        return SetupItem("present", f"property {obj}.{need.name}")
    except UnknownOutcomeError as exc:
        return SetupItem("todo", what, f"HubSpot's answer was lost ({exc.vendor_message}): run `syncd setup` "
                                       "again, which finds it if it was made")
    except ConnectorError as exc:
        return SetupItem("todo", what, f"HubSpot refused it: {exc.vendor_message} (the grant needs "
                                       f"crm.schemas.{obj}.write); create it by hand in Settings → Properties, "
                                       "or fix the scopes and run `syncd setup` again")
    return SetupItem("created", what)


async def set_up(connector: Connector, connection: ConnectionBase, needs: SystemNeeds) -> list[SetupItem]:
    """Create the `syncd_*` properties (and their group) the mappings use; check the rest and the scopes."""
    assert isinstance(connector, HubSpotConnector)
    assert isinstance(connection, HubSpotConnection)  # the registry hands each system its own settings
    items: list[SetupItem] = []
    objects = _portal_objects(needs)
    creating: set[str] = set()
    for obj in sorted(objects):
        existing = await connector.describe(obj)
        wanted = objects[obj]
        own_missing = [n for name, n in sorted(wanted.items()) if name not in existing and name.startswith(OWN_PREFIX)]
        items += [SetupItem("present", f"property {obj}.{name}")
                  for name in sorted(wanted) if name in existing and name.startswith(OWN_PREFIX)]
        if own_missing:
            creating.add(obj)
            items.append(await _ensure_group(connector, obj))
            for need in own_missing:
                items.append(await _create_property(connector, obj, need))
        for name, need in sorted(wanted.items()):
            if name not in existing and not name.startswith(OWN_PREFIX):
                items.append(SetupItem(
                    "todo", f"property {obj}.{name} does not exist (named by {', '.join(need.mappings)})",
                    "fix the mapping file, or create the property in HubSpot (Settings → Properties); syncd "
                    f"creates only its own {OWN_PREFIX}* properties"))
        standard = sum(1 for name in wanted if name in existing and not name.startswith(OWN_PREFIX))
        if standard:
            items.append(SetupItem("present", f"{standard} other mapped properties of {obj}"))
    items += scope_items(connector.name, "HubSpot", connection.scopes, _scopes(needs, objects, creating))
    return items
