"""QuickBooks Online v3 simulator (Customer, Invoice, Payment, Item; query, CDC, batch) with Intuit's OAuth."""

from __future__ import annotations

from syncd.sandbox.quickbooks.app import QuickBooksSimulator

__all__ = ["QuickBooksSimulator"]
