"""The Zoho Books connector: aiohttp, the upsert on `cf_syncd_ref`, paging that survives concurrent edits."""

from __future__ import annotations

from syncd.connectors.zohobooks.connector import ZohoBooksConnector

__all__ = ["ZohoBooksConnector"]
