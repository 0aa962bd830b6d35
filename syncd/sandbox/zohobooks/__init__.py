"""Zoho Books v3 simulator (contacts, invoices, customer payments, items) with its OAuth accounts server."""

from __future__ import annotations

from syncd.sandbox.zohobooks.app import ZohoBooksSimulator

__all__ = ["ZohoBooksSimulator"]
