"""The HubSpot connector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the registry and the settings models load this package, the vendor SDK waits.
    if name == "HubSpotConnector":
        from syncd.connectors.hubspot.connector import HubSpotConnector

        return HubSpotConnector
    raise AttributeError(name)
