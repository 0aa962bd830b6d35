"""Zoho Books' steps in `syncd demo`: what an accountant does in Zoho Books between two syncs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from syncd.connectors.base import Connector, Create, FieldValue, Record


async def pay_part(connector: Connector, invoice: Record) -> str | None:
    """Record a customer payment of half the invoice's total against it; the line saying so (None when the
    invoice has no total to pay)."""
    total = invoice.fields.get("total")
    if not isinstance(total, Decimal) or total <= 0:
        return None
    paid = (total / 2).quantize(Decimal("0.01"))
    applied: list[Mapping[str, FieldValue]] = [{"invoice_id": invoice.id, "amount_applied": paid}]
    payment: dict[str, FieldValue] = {
        "customer_id": invoice.fields.get("customer_id"), "payment_mode": "banktransfer", "amount": paid,
        "date": date.today(), "reference_number": "DEMO-1", "invoices": applied,
    }
    [outcome] = await connector.create_many("customerpayments", [Create("demo-payment-1", payment)])
    if not outcome.ok:
        return f"Zoho Books refused the payment: {outcome.error}"
    return f"Zoho Books: the customer pays {paid} of invoice {invoice.fields.get('invoice_number')}"
