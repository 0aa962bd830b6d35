"""The Salesforce REST simulator of the sandbox."""

from __future__ import annotations

from syncd.sandbox.salesforce.app import SalesforceSimulator

__all__ = ["SalesforceSimulator"]
