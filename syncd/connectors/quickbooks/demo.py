"""QuickBooks Online's steps in `syncd demo`: what a bookkeeper does in QuickBooks between two syncs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from syncd.connectors.base import Connector, Create, FieldValue, Record


async def pay_part(connector: Connector, invoice: Record) -> str | None:
    """Receive a payment of half the invoice's total against it; the line saying so (None when the invoice has
    nothing to pay)."""
    total = invoice.fields.get("TotalAmt")
    if not isinstance(total, Decimal) or total <= 0:
        return None
    paid = (total / 2).quantize(Decimal("0.01"))
    payment: dict[str, FieldValue] = {
        "CustomerRef": invoice.fields.get("CustomerRef"), "TotalAmt": paid, "TxnDate": date.today(),
        "PaymentRefNum": "DEMO-1", "Line": [{"Amount": paid, "invoice_id": invoice.id}],
    }  # fmt: skip
    [outcome] = await connector.create_many("Payment", [Create("demo-payment-1", payment)])
    if not outcome.ok:
        return f"QuickBooks Online refused the payment: {outcome.error}"
    return f"QuickBooks Online: the customer pays {paid} of invoice {invoice.fields.get('DocNumber')}"
