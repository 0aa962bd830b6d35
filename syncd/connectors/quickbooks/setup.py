"""`syncd setup` for QuickBooks Online: nothing to create (syncd keeps its reference in notes, not custom
fields); the OAuth scope is checked against the one the accounting API needs."""

from __future__ import annotations

from syncd.connectors.base import Connector
from syncd.connectors.quickbooks.settings import QuickBooksConnection
from syncd.connectors.setup import SetupItem, SystemNeeds, scope_items
from syncd.settings import ConnectionBase

ACCOUNTING = "com.intuit.quickbooks.accounting"


async def set_up(connector: Connector, connection: ConnectionBase, needs: SystemNeeds) -> list[SetupItem]:
    """The scope check; webhooks are set on the Intuit developer portal (the verifier token goes in config)."""
    assert isinstance(connection, QuickBooksConnection)  # the registry hands each system its own settings
    return scope_items(connector.name, "Intuit developer portal", connection.scopes,
                       [(ACCOUNTING, "read and write customers, invoices, payments and items")])
