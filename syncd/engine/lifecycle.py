"""The deal → invoice lifecycle rules: one line from the amount, sent invoices frozen, lost deals voided."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from syncd.connectors.base import FieldValue, Record
from syncd.mapping.compiled import ObjectMapper

INVOICE_OBJECT = "invoices"
STATUS_FIELD = "status"
# Where each CRM keeps a deal's amount and name, for an invoice of one line when the deal has no line items.
_DEAL_AMOUNT: Mapping[str, tuple[str, str]] = {
    "deals": ("amount", "dealname"),
    "Opportunity": ("Amount", "Name"),
}


def is_invoice(mapper: ObjectMapper) -> bool:
    """Whether this object makes accounting invoices (and so follows the invoice lifecycle)."""
    return mapper.acc_object == INVOICE_OBJECT


def with_amount_line(mapper: ObjectMapper, record: Record) -> Record:
    """The CRM deal as the invoice sees it: lacking line items, one line for its amount, named after it."""
    lines = mapper.fields.get("line_items")
    if not is_invoice(mapper) or lines is None or lines.items is None or record.object not in _DEAL_AMOUNT:
        return record
    current = record.fields.get(lines.scalar.crm_name)
    amount_field, name_field = _DEAL_AMOUNT[record.object]
    amount = record.fields.get(amount_field)
    if current or amount is None:
        return record
    synthetic: dict[str, FieldValue] = {}
    for sub in lines.items:
        if sub.name == "name":
            synthetic[sub.crm_name] = record.fields.get(name_field)
        elif sub.name in ("rate", "amount", "price"):
            synthetic[sub.crm_name] = amount
        elif sub.name == "quantity":
            synthetic[sub.crm_name] = 1
    fields: dict[str, FieldValue] = dict(record.fields)
    fields[lines.scalar.crm_name] = [synthetic]
    return replace(record, fields=fields)


def invoice_status(record: Record) -> str:
    """A Zoho invoice's status, lower-cased ('' when unknown)."""
    status = record.fields.get(STATUS_FIELD)
    return status.lower() if isinstance(status, str) else ""


def frozen_status(mapper: ObjectMapper, editable: Collection[str], record: Record) -> str | None:
    """The status of an invoice no longer edited (sent, paid...), '' when unknown; None for a draft (whatever
    `editable` holds) or when the object is no invoice."""
    status = invoice_status(record)
    return status if is_invoice(mapper) and status not in editable else None


def frozen_reason(status: str) -> str:
    """Why an edit of a frozen invoice waits for a person."""
    return f"invoice is {status or 'not a draft'}; not edited after sending"
