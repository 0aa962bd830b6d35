"""Invoice payments: one record per application of a customer payment to an invoice.

A Zoho Books customer payment may be applied across several invoices (its `invoices` list). A CRM reflects a
payment per deal/opportunity, so the connector also serves `invoicepayments`, whose records are those
applications: id `<payment_id>:<invoice_id>`, the payment's fields plus `payment_id`, `invoice_id` and
`amount_applied`, modified when the payment was. They are read-only: payments are written as
`customerpayments`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from syncd.connectors.base import FieldInfo, Record

APPLICATIONS = "invoicepayments"
SEPARATOR = ":"
# The payment's own fields every application carries, besides its application's invoice and amount.
_EXTRA: dict[str, str] = {"payment_id": "text", "invoice_id": "text", "amount_applied": "money"}


def application_id(payment_id: str, invoice_id: str) -> str:
    """The id of the application of a payment to an invoice."""
    return f"{payment_id}{SEPARATOR}{invoice_id}"


def payment_of(record_id: str) -> str | None:
    """The payment id inside an application id (None when it is not one)."""
    payment, sep, invoice = record_id.partition(SEPARATOR)
    return payment if sep and payment and invoice else None


def applied_lines(lines: object) -> dict[str, Mapping[str, Any]]:
    """A payment's `invoices` lines by invoice id, in the order it lists them: the first line of each
    invoice (a line without an invoice id is skipped). Raw payload lines and flattened ones both do."""
    first: dict[str, Mapping[str, Any]] = {}
    for line in lines if isinstance(lines, list) else []:
        invoice_id = line.get("invoice_id") if isinstance(line, Mapping) else None
        if isinstance(invoice_id, str) and invoice_id and invoice_id not in first:
            first[invoice_id] = line
    return first


def applications(payment: Record) -> list[Record]:
    """A payment's applications, one record each, in the order the payment lists them."""
    shared = {k: v for k, v in payment.fields.items() if k != "invoices"}
    out: list[Record] = []
    for invoice_id, line in applied_lines(payment.fields.get("invoices")).items():
        fields = {**shared, "payment_id": payment.id, "invoice_id": invoice_id,
                  "amount_applied": line.get("amount_applied")}  # fmt: skip
        out.append(
            Record(
                payment.system,
                APPLICATIONS,
                application_id(payment.id, invoice_id),
                fields,
                payment.modified_at,
                payment.deleted,
            )
        )
    return out


def explode(payments: Iterable[Record]) -> list[Record]:
    """Every application of every payment."""
    return [a for p in payments for a in applications(p)]


def wanted_payments(ids: Sequence[str]) -> list[str]:
    """The payments to read for application ids (malformed ids are ignored: they cannot exist)."""
    return list(dict.fromkeys(p for i in ids if (p := payment_of(i)) is not None))


def describe_applications(payments: Mapping[str, FieldInfo]) -> dict[str, FieldInfo]:
    """The payment's fields (read-only here) plus the application's own."""
    fields = {
        name: FieldInfo(info.name, info.type, info.label, createable=False, updateable=False)
        for name, info in payments.items()
        if name != "invoices"
    }
    for name, kind in _EXTRA.items():
        fields[name] = FieldInfo(name, kind, createable=False, updateable=False)
    return fields

