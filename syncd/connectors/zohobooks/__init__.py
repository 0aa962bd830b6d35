"""The Zoho Books connector: aiohttp, the upsert on `cf_syncd_ref`, paging that survives concurrent edits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.connectors.zohobooks.connector import ZohoBooksConnector

__all__ = ["ZohoBooksConnector"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the registry and the settings models load this package, the vendor SDK waits.
    if name == "ZohoBooksConnector":
        from syncd.connectors.zohobooks.connector import ZohoBooksConnector

        return ZohoBooksConnector
    raise AttributeError(name)
