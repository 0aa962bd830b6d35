"""Xero's steps in `syncd demo`: what an accountant does in Xero between two syncs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from syncd.connectors.base import Connector, Create, FieldValue, Record, Update

BANK_ACCOUNT = "090"  # the bank account of Xero's demo company (and of the simulator)


async def pay_part(connector: Connector, invoice: Record) -> str | None:
    """Approve the draft (Xero takes payments only on approved invoices), then record a payment of half its
    total; the line saying so (None when the invoice has no total to pay)."""
    total = invoice.fields.get("Total")
    if not isinstance(total, Decimal) or total <= 0:
        return None
    if str(invoice.fields.get("Status", "")).upper() in ("DRAFT", "SUBMITTED"):
        due = invoice.fields.get("DueDate")
        due_date = due if isinstance(due, date) else date.today() + timedelta(days=30)
        approve: dict[str, FieldValue] = {"Status": "AUTHORISED", "DueDate": due_date}
        [approved] = await connector.update_many("Invoices", [Update(invoice.id, approve)])
        if not approved.ok:
            return f"Xero refused to approve the invoice: {approved.error}"
    paid = (total / 2).quantize(Decimal("0.01"))
    payment: dict[str, FieldValue] = {"Invoice.InvoiceID": invoice.id, "Account.Code": BANK_ACCOUNT, "Amount": paid,
                                      "Date": date.today(), "Reference": "DEMO-1"}  # fmt: skip
    [outcome] = await connector.create_many("Payments", [Create("demo-payment-1", payment)])
    if not outcome.ok:
        return f"Xero refused the payment: {outcome.error}"
    return f"Xero: the customer pays {paid} of invoice {invoice.fields.get('InvoiceNumber')}"
