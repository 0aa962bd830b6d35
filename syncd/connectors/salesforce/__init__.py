"""The Salesforce connector: simple-salesforce off the event loop, SOQL built safely, CDC-style feed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the registry and the settings models load this package, the vendor SDK waits.
    if name == "SalesforceConnector":
        from syncd.connectors.salesforce.connector import SalesforceConnector

        return SalesforceConnector
    raise AttributeError(name)
