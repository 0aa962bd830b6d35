"""`syncd setup` for Xero: syncd's references live in standard fields (a contact's ContactNumber, an invoice's or
payment's Reference), so nothing is created; the OAuth scopes are compared with the objects the mappings use, and
the webhook (set up in the developer portal, there is no API for it) is a checklist item."""

from __future__ import annotations

from syncd.connectors.base import Connector
from syncd.connectors.setup import SetupItem, SystemNeeds, scope_items
from syncd.settings import ConnectionBase

# The scope each object needs (Xero's granular scopes; the broad `accounting.transactions` covers invoices and
# payments, `accounting.contacts` contacts, `accounting.settings` items).
_SCOPES: dict[str, str] = {
    "Contacts": "accounting.contacts",
    "Invoices": "accounting.transactions",
    "Payments": "accounting.transactions",
    "Items": "accounting.settings",
}


async def set_up(connector: Connector, connection: ConnectionBase, needs: SystemNeeds) -> list[SetupItem]:
    """The scopes, offline access for refresh tokens, and the webhook to register by hand."""
    configured: list[str] = list(getattr(connection, "scopes", []))
    needed: list[tuple[str, str]] = [("offline_access", "refresh tokens, so syncd runs unattended")]
    for obj in sorted({key.split(".", 1)[0] for key in needs.objects}):
        scope = _SCOPES.get(obj, "accounting.transactions")
        if all(scope != have for have, _ in needed):
            needed.append((scope, f"read and write {obj}"))
    items = scope_items(connector.name, "Xero", configured, needed)
    items.append(SetupItem(
        "check", "Xero webhook for contacts and invoices (payments are polled: Xero sends no payment events)",
        "developer.xero.com → My Apps → your app → Webhooks: delivery URL syncd's /webhooks/<connection>, events "
        "Contacts and Invoices; copy its key into webhook_key; Xero then checks the URL (intent to receive)",
    ))  # fmt: skip
    return items
