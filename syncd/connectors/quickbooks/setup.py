"""`syncd setup` for QuickBooks Online: nothing to create (syncd keeps its reference in notes, not custom
fields); the OAuth scope is checked against the one the accounting API needs."""

from __future__ import annotations

from syncd.connectors.base import Connector
from syncd.connectors.setup import SetupItem, SystemNeeds, scope_items
from syncd.settings import Connection

ACCOUNTING = "com.intuit.quickbooks.accounting"


async def set_up(connector: Connector, connection: Connection, needs: SystemNeeds) -> list[SetupItem]:
    """The scope check; webhooks are set on the Intuit developer portal (the verifier token goes in config)."""
    return scope_items(connector.name, "Intuit developer portal", connection.scopes,
                       [(ACCOUNTING, "read and write customers, invoices, payments and items")])
