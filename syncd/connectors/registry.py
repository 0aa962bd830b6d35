"""Build a connector from its connection settings: the one place that knows which class serves a system."""

from __future__ import annotations

from syncd.connectors.base import Connector
from syncd.connectors.tokens import TokenStorage
from syncd.settings import HubSpotConnection, SalesforceConnection, ZohoBooksConnection


def build_connector(
    name: str,
    settings: HubSpotConnection | SalesforceConnection | ZohoBooksConnection,
    storage: TokenStorage | None = None,
) -> Connector:
    """The connector for one configured connection (imported lazily: each pulls in its vendor SDK)."""
    if isinstance(settings, HubSpotConnection):
        from syncd.connectors.hubspot import HubSpotConnector

        return HubSpotConnector(name, settings, storage=storage)
    if isinstance(settings, SalesforceConnection):
        from syncd.connectors.salesforce import SalesforceConnector

        return SalesforceConnector(name, settings, storage=storage)
    from syncd.connectors.zohobooks import ZohoBooksConnector

    return ZohoBooksConnector(name, settings, storage=storage)
