"""The QuickBooks Online connector: python-quickbooks and intuit-oauth, CDC deltas, SyncToken-checked batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.connectors.quickbooks.connector import QuickBooksConnector

__all__ = ["QuickBooksConnector"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the registry and the settings models load this package, the vendor SDK waits.
    if name == "QuickBooksConnector":
        from syncd.connectors.quickbooks.connector import QuickBooksConnector

        return QuickBooksConnector
    raise AttributeError(name)
