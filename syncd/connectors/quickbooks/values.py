"""QBO JSON ↔ syncd's flat fields, per entity: dotted names for nested objects (`PrimaryEmailAddr.Address`),
reference types as their id (`CustomerRef`), money as Decimal, dates as date, invoice and payment lines as lists.

Three fields are syncd's own: `syncd_ref`, the create reference, kept as a tagged line in `Notes` (Customer) or
`PrivateNote` (Invoice, Payment), since QBO has no custom field on customers and its transaction custom fields
must be set up by hand and cannot be queried; and an invoice's `status`, which QBO does not have: it is computed
from Balance, TotalAmt and the void mark ("open", "partially_paid", "paid", "void"), and a customer's or item's
from Active ("active", "inactive"); and an invoice's `amount_paid`, TotalAmt less Balance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.connectors.base import Fields, FieldValue

REFERENCE_FIELD = "syncd_ref"
STATUS_FIELD = "status"
AMOUNT_PAID = "amount_paid"  # TotalAmt - Balance: what payments (and credits) have settled
_TAG = re.compile(r"\s*\[syncd_ref:([A-Za-z0-9_-]{1,64})\]")


@dataclass(frozen=True)
class Entity:
    """One QBO entity as the connector serves it."""

    name: str  # "Customer"
    fields: Mapping[str, str]  # flat field -> kind (text, money, date, bool, ref, lines, datetime)
    writable: frozenset[str]
    note: str | None = None  # where `syncd_ref` is kept
    unique_name: str | None = None  # the field QBO keeps unique (refused with 6240)
    lines: str | None = None  # line kind: "sales" or "payment"
    filters: frozenset[str] = frozenset()  # flat fields a query may filter on


_ADDRESS = {f"BillAddr.{p}": "text" for p in ("Line1", "Line2", "City", "CountrySubDivisionCode", "PostalCode",
                                             "Country")}  # fmt: skip
CUSTOMER = Entity(
    "Customer",
    {"DisplayName": "text", "Title": "text", "GivenName": "text", "MiddleName": "text", "FamilyName": "text",
     "Suffix": "text", "CompanyName": "text", "PrimaryEmailAddr.Address": "text",
     "PrimaryPhone.FreeFormNumber": "text", "Mobile.FreeFormNumber": "text", "WebAddr.URI": "text", **_ADDRESS,
     "Notes": "text", "Active": "bool", "Balance": "money", "CurrencyRef": "ref", REFERENCE_FIELD: "text",
     STATUS_FIELD: "text"},
    frozenset({"DisplayName", "Title", "GivenName", "MiddleName", "FamilyName", "Suffix", "CompanyName",
               "PrimaryEmailAddr.Address", "PrimaryPhone.FreeFormNumber", "Mobile.FreeFormNumber", "WebAddr.URI",
               *_ADDRESS, "Notes", "Active", "CurrencyRef", REFERENCE_FIELD}),
    note="Notes",
    unique_name="DisplayName",
    filters=frozenset({"DisplayName", "GivenName", "FamilyName", "CompanyName", "PrimaryEmailAddr.Address", "Active"}),
)  # fmt: skip
INVOICE = Entity(
    "Invoice",
    {"CustomerRef": "ref", "DocNumber": "text", "TxnDate": "date", "DueDate": "date", "PrivateNote": "text",
     "CustomerMemo": "text", "BillEmail.Address": "text", "TotalAmt": "money", "Balance": "money",
     AMOUNT_PAID: "money", "CurrencyRef": "ref", "Line": "lines", STATUS_FIELD: "text", REFERENCE_FIELD: "text"},
    frozenset({"CustomerRef", "DocNumber", "TxnDate", "DueDate", "PrivateNote", "CustomerMemo", "BillEmail.Address",
               "CurrencyRef", "Line", REFERENCE_FIELD}),
    note="PrivateNote",
    lines="sales",
    filters=frozenset({"CustomerRef", "DocNumber", "TxnDate", "DueDate", "TotalAmt", "Balance"}),
)  # fmt: skip
PAYMENT = Entity(
    "Payment",
    {"CustomerRef": "ref", "TotalAmt": "money", "UnappliedAmt": "money", "TxnDate": "date", "PaymentRefNum": "text",
     "PrivateNote": "text", "CurrencyRef": "ref", "Line": "lines", REFERENCE_FIELD: "text"},
    frozenset({"CustomerRef", "TotalAmt", "TxnDate", "PaymentRefNum", "PrivateNote", "CurrencyRef", "Line",
               REFERENCE_FIELD}),
    note="PrivateNote",
    lines="payment",
    filters=frozenset({"CustomerRef", "TxnDate", "TotalAmt", "PaymentRefNum"}),
)  # fmt: skip
ITEM = Entity(
    "Item",
    {"Name": "text", "Description": "text", "Type": "text", "UnitPrice": "money", "Active": "bool",
     "IncomeAccountRef": "ref", STATUS_FIELD: "text"},
    frozenset({"Name", "Description", "Type", "UnitPrice", "Active", "IncomeAccountRef"}),
    unique_name="Name",
    filters=frozenset({"Name", "Type", "Active"}),
)  # fmt: skip
ENTITIES: dict[str, Entity] = {e.name: e for e in (CUSTOMER, INVOICE, PAYMENT, ITEM)}
LINE_KINDS: dict[str, dict[str, str]] = {
    "sales": {"Description": "text", "Amount": "money", "Qty": "decimal", "UnitPrice": "money", "ItemRef": "ref"},
    "payment": {"Amount": "money", "invoice_id": "ref"},
}


class UnwritableField(ValueError):
    """A field the mapping asked to write that QBO does not take, or a value of the wrong shape."""


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def modified_at(raw: Mapping[str, Any]) -> datetime:
    """`MetaData.LastUpdatedTime` (QBO writes it with the company's offset)."""
    meta = raw.get("MetaData")
    text = meta.get("LastUpdatedTime") if isinstance(meta, Mapping) else None
    if not isinstance(text, str):
        raise ValueError("a QBO record without MetaData.LastUpdatedTime")
    return datetime.fromisoformat(text)


def split_note(text: Any) -> tuple[str, str | None]:
    """A note without syncd's tag, and the reference the tag held."""
    if not isinstance(text, str):
        return "", None
    found = _TAG.search(text)
    return (_TAG.sub("", text).strip(), found.group(1)) if found else (text, None)


def invoice_status(raw: Mapping[str, Any]) -> str:
    """The status QBO does not send: void (zeroed, noted "Voided"), paid, partially_paid or open."""
    total = _decimal(raw.get("TotalAmt")) or Decimal(0)
    balance = _decimal(raw.get("Balance")) or Decimal(0)
    note = str(raw.get("PrivateNote") or "")
    if total == 0 and note.startswith("Voided"):
        return "void"
    if total > 0 and balance == 0:
        return "paid"
    if 0 < balance < total:
        return "partially_paid"
    return "open"


def _scalar(kind: str, value: Any) -> FieldValue:
    if value is None:
        return None
    if kind in ("money", "decimal"):
        return _decimal(value)
    if kind == "date":
        return date.fromisoformat(str(value)[:10]) if value else None
    if kind == "bool":
        return bool(value)
    if kind == "ref":
        return str(value.get("value")) if isinstance(value, Mapping) else str(value)
    return str(value)


def _lines(entity: Entity, raw: Any) -> list[Mapping[str, FieldValue]]:
    out: list[Mapping[str, FieldValue]] = []
    for line in raw if isinstance(raw, list) else []:
        if not isinstance(line, Mapping):
            continue
        if entity.lines == "sales":
            if line.get("DetailType") != "SalesItemLineDetail":
                continue  # the subtotal line QBO adds, description-only lines
            detail = line.get("SalesItemLineDetail") or {}
            out.append({"Description": _scalar("text", line.get("Description")),
                        "Amount": _scalar("money", line.get("Amount")),
                        "Qty": _scalar("decimal", detail.get("Qty")),
                        "UnitPrice": _scalar("money", detail.get("UnitPrice")),
                        "ItemRef": _scalar("ref", detail.get("ItemRef"))})  # fmt: skip
        else:
            for linked in line.get("LinkedTxn") or []:
                if isinstance(linked, Mapping) and linked.get("TxnType") == "Invoice":
                    out.append({"Amount": _scalar("money", line.get("Amount")), "invoice_id": str(linked["TxnId"])})
    return out


def flatten(entity: Entity, raw: Mapping[str, Any]) -> dict[str, FieldValue]:
    """The flat fields of a QBO record."""
    fields: dict[str, FieldValue] = {}
    for name, kind in entity.fields.items():
        if name in (REFERENCE_FIELD, STATUS_FIELD, AMOUNT_PAID):
            continue
        if kind == "lines":
            fields[name] = _lines(entity, raw.get(name))
            continue
        value: Any = raw
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        fields[name] = _scalar(kind, value)
    if entity.note is not None:
        text, reference = split_note(raw.get(entity.note))
        fields[entity.note] = text if raw.get(entity.note) is not None else None
        fields[REFERENCE_FIELD] = reference
    if entity.unique_name is not None:
        # Names are made inactive, never deleted: the word a deactivation leaves, as for the other systems.
        fields[STATUS_FIELD] = "active" if raw.get("Active", True) else "inactive"
    if entity is INVOICE:
        fields[STATUS_FIELD] = invoice_status(raw)
        total, balance = _decimal(raw.get("TotalAmt")), _decimal(raw.get("Balance"))
        fields[AMOUNT_PAID] = total - balance if total is not None and balance is not None else None
    return fields


def _text(value: FieldValue) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()[:10]
    return "" if value is None else str(value)


def _number(value: FieldValue, name: str) -> float:
    number = _decimal(value)
    if number is None:
        raise UnwritableField(f"{name} must be a number, got {value!r}")
    return float(number)


def _body_lines(entity: Entity, lines: FieldValue) -> list[dict[str, Any]]:
    if not isinstance(lines, list):
        raise UnwritableField("Line must be a list of lines")
    out: list[dict[str, Any]] = []
    for line in lines:
        if entity.lines == "sales":
            qty = _decimal(line.get("Qty"))
            price = _decimal(line.get("UnitPrice"))
            qty = Decimal(1) if qty is None else qty
            amount = _decimal(line.get("Amount"))
            if price is None and amount is None:
                raise UnwritableField("an invoice line needs UnitPrice or Amount")
            if price is None:
                price = (amount or Decimal(0)) / qty if qty else Decimal(0)
            amount = (price * qty).quantize(Decimal("0.01"))
            detail: dict[str, Any] = {"UnitPrice": float(price), "Qty": float(qty)}
            if line.get("ItemRef"):
                detail["ItemRef"] = {"value": str(line["ItemRef"])}
            body: dict[str, Any] = {"DetailType": "SalesItemLineDetail", "Amount": float(amount),
                                    "SalesItemLineDetail": detail}  # fmt: skip
            if line.get("Description"):
                body["Description"] = str(line["Description"])
            out.append(body)
        else:
            if not line.get("invoice_id"):
                raise UnwritableField("a payment line needs invoice_id")
            out.append({"Amount": _number(line.get("Amount"), "Line.Amount"),
                        "LinkedTxn": [{"TxnId": str(line["invoice_id"]), "TxnType": "Invoice"}]})  # fmt: skip
    return out


def nested_parts(entity: Entity, raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's objects that dotted fields write into (`BillAddr`, `PrimaryEmailAddr`), as read."""
    heads = {name.split(".", 1)[0] for name in entity.fields if "." in name}
    return {head: dict(raw[head]) for head in heads if isinstance(raw.get(head), Mapping)}


def unflatten(entity: Entity, fields: Fields, *, reference: str | None = None, current_note: str | None = None,
              current_parts: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A request body (create, or sparse update) from flat fields; `reference` goes into the note's tag, which
    an update keeps (`current_note` is the record's note as read). A sparse update replaces a nested object
    whole (an address sent with its city alone loses its street), so one a dotted field writes into starts from
    the object as read (`current_parts`)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name == STATUS_FIELD:
            raise UnwritableField("status is computed (an invoice is voided, a name made inactive, by actions)")
        if name not in entity.writable:
            raise UnwritableField(f"{entity.name}.{name} cannot be written")
        if name == REFERENCE_FIELD:
            reference = _text(value) or reference
            continue
        kind = entity.fields[name]
        if kind == "lines":
            body[name] = _body_lines(entity, value)
        elif kind == "ref":
            body[name] = {"value": _text(value)} if value is not None else None
        elif kind in ("money", "decimal"):
            body[name] = _number(value, name) if value is not None else None
        elif kind == "bool":
            body[name] = bool(value)
        elif kind == "date":
            body[name] = _text(value) if value is not None else None
        elif "." in name:
            head, tail = name.split(".", 1)
            body.setdefault(head, dict((current_parts or {}).get(head, {})))[tail] = _text(value)
        else:
            body[name] = _text(value) if value is not None else None
    if entity.note is not None and (reference is not None or entity.note in body):
        text = body.get(entity.note)
        own, old_reference = split_note(current_note)
        if text is None:
            text = own
        tag = reference or old_reference
        body[entity.note] = f"{text}\n[syncd_ref:{tag}]".strip() if tag else text
    return {k: v for k, v in body.items() if v is not None}
