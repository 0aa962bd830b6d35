"""`syncd setup` for Zoho Books: its API v3 documents no call that creates (or lists) custom fields, only
setting their values on a record, so each `cf_*` field the mappings use is a checklist item with where to make
it; the OAuth scopes are compared with the modules the mappings use."""

from __future__ import annotations

from syncd.connectors.base import Connector
from syncd.connectors.setup import NeededField, SetupItem, SystemNeeds, scope_items
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.settings import ConnectionBase

# The module of each object the connector serves, as Zoho names it in its UI and in its OAuth scopes.
_MODULES: dict[str, tuple[str, str]] = {
    "contacts": ("Customers and Vendors", "contacts"),
    "invoices": ("Invoices", "invoices"),
    "customerpayments": ("Payments Received", "customerpayments"),
    "invoicepayments": ("Payments Received", "customerpayments"),
    "items": ("Items", "settings"),
}
FULL_ACCESS = "ZohoBooks.fullaccess.all"


def _custom_field(obj: str, need: NeededField) -> SetupItem:
    module = _MODULES.get(obj, (obj, obj))[0]
    label = need.name.removeprefix("cf_").replace("_", " ").title()
    unique = ", tick \"Prevent duplicate values\"" if need.reference else ""
    return SetupItem(
        "check", f"custom field {obj}.{need.name} (named by {', '.join(need.mappings)})",
        f"Zoho Books → Settings → Preferences → {module} → Field Customization → New Custom Field: label "
        f"\"{label}\" (its API name is then {need.name}), data type Text Box (Single Line){unique}; the API "
        "cannot create or list custom fields, so syncd cannot check it")


async def set_up(connector: Connector, connection: ConnectionBase, needs: SystemNeeds) -> list[SetupItem]:
    """The custom fields to make by hand, and the scopes."""
    assert isinstance(connection, ZohoBooksConnection)  # the registry hands each system its own settings
    items = [_custom_field(obj, need)
             for obj in sorted(needs.objects) for name, need in sorted(needs.objects[obj].items())
             if name.startswith("cf_")]
    scopes: list[tuple[str, str]] = []
    for obj in sorted({key.split(".", 1)[0] for key in needs.objects}):
        scope = f"ZohoBooks.{_MODULES.get(obj, (obj, obj))[1]}.ALL"
        if all(scope != have for have, _ in scopes):
            scopes.append((scope, f"read and write {obj}"))
    items += scope_items(connector.name, "Zoho API console", connection.scopes, scopes, covering=[FULL_ACCESS])
    return items
