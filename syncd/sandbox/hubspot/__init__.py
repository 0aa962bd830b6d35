"""The HubSpot CRM v3 simulator (objects, search, associations v4, properties, OAuth, webhooks)."""

from syncd.sandbox.hubspot.app import HubSpotSimulator

__all__ = ["HubSpotSimulator"]
