"""HubSpot's registration: its settings, connector, simulator and what its objects mean to syncd."""

from __future__ import annotations

from syncd.systems import DealShape, SystemRegistration

REGISTRATION = SystemRegistration(
    name="hubspot",
    label="HubSpot",
    role="crm",
    settings="syncd.connectors.hubspot.settings:HubSpotConnection",
    connector="syncd.connectors.hubspot:HubSpotConnector",
    demo="syncd.connectors.hubspot.demo",
    setup="syncd.connectors.hubspot.setup",
    simulator="syncd.sandbox.hubspot:HubSpotSimulator",
    default_port=8901,
    objects=("contacts", "companies", "deals", "line_items"),
    deals=DealShape(object="deals", amount="amount", name="dealname"),
    mapping_files=("hubspot-zohobooks.toml",),
)
