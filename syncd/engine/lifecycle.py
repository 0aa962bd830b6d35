"""The deal → invoice lifecycle rules, read from the systems' registrations: one line from the amount, sent
invoices frozen, lost deals voided. No system's object, field or status word is named here."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from syncd.connectors.base import FieldValue, Record
from syncd.mapping.compiled import LINE_NAME, LINE_PRICE, LINE_QUANTITY, LINES_FIELD, ObjectMapper


def is_invoice(mapper: ObjectMapper) -> bool:
    """Whether this object makes accounting invoices (and so follows the invoice lifecycle)."""
    return mapper.invoice is not None


def with_amount_line(mapper: ObjectMapper, record: Record) -> Record:
    """The CRM deal as the invoice sees it: lacking line items, one line for its amount, named after it."""
    lines = mapper.fields.get(LINES_FIELD)
    deal = mapper.deal
    if not is_invoice(mapper) or lines is None or lines.items is None or deal is None or record.object != deal.object:
        return record
    current = record.fields.get(lines.scalar.crm_name)
    amount = record.fields.get(deal.amount)
    if current or amount is None:
        return record
    synthetic: dict[str, FieldValue] = {}
    for sub in lines.items:
        if sub.name == LINE_NAME:
            synthetic[sub.crm_name] = record.fields.get(deal.name)
        elif sub.name in LINE_PRICE:
            synthetic[sub.crm_name] = amount
        elif sub.name == LINE_QUANTITY:
            synthetic[sub.crm_name] = 1
    fields: dict[str, FieldValue] = dict(record.fields)
    fields[lines.scalar.crm_name] = [synthetic]
    return replace(record, fields=fields)


def invoice_status(mapper: ObjectMapper, record: Record) -> str:
    """An invoice's status in its system's words, lower-cased ('' when unknown or not an invoice)."""
    if mapper.invoice is None:
        return ""
    status = record.fields.get(mapper.invoice.status_field)
    return status.lower() if isinstance(status, str) else ""


def is_void(mapper: ObjectMapper, record: Record) -> bool:
    """Whether an invoice is voided already."""
    return mapper.invoice is not None and invoice_status(mapper, record) == mapper.invoice.void_status


def frozen_status(mapper: ObjectMapper, editable: Collection[str] | None, record: Record) -> str | None:
    """The status of an invoice no longer edited (sent, paid...), '' when unknown; None for one still editable
    (by `editable`, else by its system's own editable statuses) or when the object is no invoice."""
    if mapper.invoice is None:
        return None
    status = invoice_status(mapper, record)
    still_editable = mapper.invoice.editable if editable is None else editable
    return status if status not in still_editable else None


def frozen_reason(status: str) -> str:
    """Why an edit of a frozen invoice waits for a person."""
    return f"invoice is {status or 'not a draft'}; not edited after sending"
