"""The Xero connector: the official xero-python SDK in a thread pool, batched writes with Idempotency-Key,
If-Modified-Since deltas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.connectors.xero.connector import XeroConnector

__all__ = ["XeroConnector"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the registry and the settings models load this package, the vendor SDK waits.
    if name == "XeroConnector":
        from syncd.connectors.xero.connector import XeroConnector

        return XeroConnector
    raise AttributeError(name)
