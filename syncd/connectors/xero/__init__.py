"""The Xero connector: the official xero-python SDK in a thread pool, batched writes with Idempotency-Key,
If-Modified-Since deltas."""

from __future__ import annotations

from syncd.connectors.xero.connector import XeroConnector

__all__ = ["XeroConnector"]
