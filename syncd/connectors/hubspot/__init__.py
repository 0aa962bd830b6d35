"""The HubSpot connector."""

from syncd.connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]
