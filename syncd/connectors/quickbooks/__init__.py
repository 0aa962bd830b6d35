"""The QuickBooks Online connector: python-quickbooks and intuit-oauth, CDC deltas, SyncToken-checked batches."""

from __future__ import annotations

from syncd.connectors.quickbooks.connector import QuickBooksConnector

__all__ = ["QuickBooksConnector"]
