"""The Salesforce connector: simple-salesforce off the event loop, SOQL built safely, CDC-style feed."""

from __future__ import annotations

from syncd.connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]
