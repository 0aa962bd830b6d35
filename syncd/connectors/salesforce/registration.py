"""Salesforce's registration: its settings, connector, simulator and what its objects mean to syncd."""

from __future__ import annotations

from syncd.systems import DealShape, SystemRegistration

REGISTRATION = SystemRegistration(
    name="salesforce",
    label="Salesforce",
    role="crm",
    settings="syncd.connectors.salesforce.settings:SalesforceConnection",
    connector="syncd.connectors.salesforce:SalesforceConnector",
    setup="syncd.connectors.salesforce.setup",
    simulator="syncd.sandbox.salesforce:SalesforceSimulator",
    default_port=8902,
    objects=("Contact", "Account", "Opportunity", "OpportunityLineItem", "Payment__c"),
    deals=DealShape(object="Opportunity", amount="Amount", name="Name"),
    mapping_files=("salesforce-zohobooks.toml",),
)
