"""Xero Accounting API simulator (contacts, invoices, payments, items) with its identity server and webhooks."""

from __future__ import annotations

from syncd.sandbox.xero.app import XeroSimulator

__all__ = ["XeroSimulator"]
