"""`syncd setup` for Salesforce: nothing is created (custom objects and fields need the Metadata API and an
admin's decisions), but every object and field the active mappings use is checked against the org's describe,
as the integration user sees it: what is missing, not visible, not writable or not an External ID is listed
with what to create or grant, type included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncd.connectors.base import Connector
from syncd.connectors.salesforce.connector import SalesforceConnector
from syncd.connectors.salesforce.records import LINE_ITEMS
from syncd.connectors.salesforce.settings import SalesforceConnection
from syncd.connectors.setup import FieldKind, NeededField, SetupItem, SystemNeeds, scope_items
from syncd.errors import ConnectorError, NotFoundError
from syncd.settings import ConnectionBase

_TYPES: dict[FieldKind, str] = {
    "string": "Text(255)",
    "reference": "Lookup Relationship",
    "number": "Number(16, 2) or Currency(16, 2)",
    "date": "Date",
    "datetime": "Date/Time",
    "bool": "Checkbox",
}
# The line items of an opportunity, as the connector reads them (with their product's name).
_NESTED_OBJECTS = {f"Opportunity.{LINE_ITEMS}": "OpportunityLineItem"}


def _field_type(need: NeededField) -> str:
    if need.reference:
        return "Text(255), External ID, Unique (case-sensitive)"
    if need.kind == "reference" and need.link_to:
        return f"Lookup Relationship to {need.link_to}"
    return _TYPES[need.kind]


def _new_field(obj: str, need: NeededField) -> str:
    return f"{obj}.{need.name}: {_field_type(need)}"


def _field_items(obj: str, described: Mapping[str, Any], wanted: Mapping[str, NeededField]) -> list[SetupItem]:
    """One object's fields against its describe (`fields` by name, as the integration user sees them)."""
    items: list[SetupItem] = []
    standard = 0
    for name, need in sorted(wanted.items()):
        found = described.get(name)
        if found is None:
            if name.endswith("__c"):
                items.append(SetupItem(
                    "todo", f"field {_new_field(obj, need)}",
                    f"Setup → Object Manager → {obj} → Fields & Relationships → New; give the integration user "
                    "Edit access (field-level security). If it exists, the integration user cannot see it: grant "
                    "field-level access"))
            else:
                items.append(SetupItem(
                    "todo", f"field {obj}.{name} is not visible to the integration user (named by "
                            f"{', '.join(need.mappings)})",
                    "grant the user field-level access to it, or fix the mapping file"))
            continue
        if need.reference and not (found.get("externalId") and found.get("unique")):
            items.append(SetupItem("todo", f"field {obj}.{name} is not an External ID with unique values",
                                   "edit the field: tick External ID and Unique, so a record syncd created is "
                                   "found again by its reference and never made twice"))
        elif need.writes and not (found.get("updateable") or found.get("createable")):
            items.append(SetupItem("todo", f"field {obj}.{name} is read-only for the integration user",
                                   "give it Edit access in field-level security (profile or permission set)"))
        elif name.endswith("__c"):
            items.append(SetupItem("present", f"field {obj}.{name}"))
        else:
            standard += 1
    if standard:
        items.append(SetupItem("present", f"{standard} other mapped fields of {obj}"))
    return items


def _access(obj: str, raw: Mapping[str, Any], written: bool) -> SetupItem:
    """Object permissions of the integration user, from the describe's object-level flags."""
    wanted = ("queryable", "createable", "updateable") if written else ("queryable",)
    lacking = [flag for flag in wanted if not raw.get(flag)]
    words = {"queryable": "Read", "createable": "Create", "updateable": "Edit"}
    needed = "/".join(words[flag] for flag in wanted)
    if lacking:
        return SetupItem("todo", f"object {obj}: the integration user lacks {'/'.join(words[f] for f in lacking)}",
                         f"grant {needed} on {obj} in the user's profile or a permission set")
    return SetupItem("present", f"object {obj}: {needed} for the integration user")


async def set_up(connector: Connector, connection: ConnectionBase, needs: SystemNeeds) -> list[SetupItem]:
    """Check every object and field the mappings use; list what to create or grant by hand."""
    assert isinstance(connector, SalesforceConnector)
    assert isinstance(connection, SalesforceConnection)  # the registry hands each system its own settings
    items: list[SetupItem] = []
    for key in sorted(needs.objects):
        obj = _NESTED_OBJECTS.get(key, key)
        wanted = needs.objects[key]
        try:
            raw = await connector._describe_raw(obj)  # the object-level flags are not in `describe`
        except NotFoundError:
            fields = "; ".join(_new_field(obj, need) for _, need in sorted(wanted.items()) if need.name.endswith("__c"))
            items.append(SetupItem(
                "todo", f"custom object {obj} does not exist (named by "
                        f"{', '.join(sorted({m for n in wanted.values() for m in n.mappings}))})",
                f"Setup → Object Manager → Create → Custom Object, API name {obj}, then its fields: {fields}; "
                "give the integration user Read/Create/Edit/Delete on it and Edit on each field"))
            continue
        except ConnectorError as exc:
            items.append(SetupItem("todo", f"object {obj} cannot be described: {exc.vendor_message}",
                                   "check the integration user's access to it, then run `syncd setup` again"))
            continue
        described = {str(f["name"]): f for f in raw["fields"]}
        # An opportunity's `line_items` is the connector's list of its OpportunityLineItems, checked apart.
        wanted = {name: need for name, need in wanted.items() if name != LINE_ITEMS}
        if key in _NESTED_OBJECTS:
            # Parent fields the connector reads with each line (`Product2.Name`) are there when the lookup is.
            wanted = {name: need for name, need in wanted.items()
                      if name.partition(".")[0] not in {"Product2", "PricebookEntry"}}
        items.append(_access(obj, raw, key in needs.written))
        items += _field_items(obj, described, wanted)
    items += scope_items(connector.name, "connected", connection.scopes,
                         [("api", "REST API access"), ("refresh_token", "stay authorised between runs")],
                         covering=())
    return items
