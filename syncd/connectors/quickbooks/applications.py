"""Payment applications: one record per line of a QBO Payment, i.e. per invoice it pays.

A Payment's `Line[]` each carry an amount and a `LinkedTxn` to one invoice. A CRM reflects a payment per deal, so
the connector also serves `PaymentApplication`: id `<payment_id>:<invoice_id>`, the payment's fields plus
`payment_id`, `invoice_id` and `amount_applied`, modified when the payment was. Read-only: payments are written as
`Payment`. QBO list answers carry the lines, so exploding a payment costs no call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from syncd.connectors.base import FieldInfo, Record
from syncd.errors import SkippableError

APPLICATIONS = "PaymentApplication"
PAYMENT = "Payment"
SEPARATOR = ":"
_FIELDS = {"payment_id": "text", "invoice_id": "text", "amount_applied": "money", "TxnDate": "date",
           "PaymentRefNum": "text", "TotalAmt": "money", "CustomerRef": "ref", "PrivateNote": "text"}  # fmt: skip


def payment_ids(ids: Sequence[str]) -> list[str]:
    """The payments to read for application ids (malformed ids cannot exist and are left out)."""
    found = []
    for record_id in ids:
        payment, sep, invoice = record_id.partition(SEPARATOR)
        if sep and payment and invoice:
            found.append(payment)
    return list(dict.fromkeys(found))


def explode(payments: Iterable[Record]) -> list[Record]:
    """Every application of every payment (a deleted payment has none left to show)."""
    out: list[Record] = []
    for payment in payments:
        if payment.deleted:
            continue
        shared = {k: v for k, v in payment.fields.items() if k != "Line"}
        applied: dict[str, Decimal] = {}
        lines = payment.fields.get("Line")
        for line in lines if isinstance(lines, list) else []:
            invoice_id, amount = line.get("invoice_id"), line.get("Amount")
            if isinstance(invoice_id, str) and isinstance(amount, Decimal):
                applied[invoice_id] = applied.get(invoice_id, Decimal(0)) + amount
        for invoice_id, amount in applied.items():
            fields = {**shared, "payment_id": payment.id, "invoice_id": invoice_id, "amount_applied": amount}
            out.append(Record(payment.system, APPLICATIONS, f"{payment.id}{SEPARATOR}{invoice_id}", fields,
                              payment.modified_at))  # fmt: skip
    return out


def describe() -> dict[str, FieldInfo]:
    """The application's fields, all read-only."""
    return {name: FieldInfo(name, kind, createable=False, updateable=False) for name, kind in _FIELDS.items()}


def read_only(connection: str, record: str) -> SkippableError:
    """The refusal of a write to an application."""
    return SkippableError(f"{APPLICATIONS} is read-only: write the payment as {PAYMENT}", connection=connection,
                          record=record)  # fmt: skip
