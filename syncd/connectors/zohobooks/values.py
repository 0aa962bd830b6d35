"""Zoho Books JSON ↔ flat typed fields: what each module's records look like once they leave the connector."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from syncd.connectors.base import Fields, FieldValue

Kind = Literal["text", "money", "number", "date", "timestamp", "bool", "int", "lines"]
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
REFERENCE_FIELD = "cf_syncd_ref"
ADDRESS_PARTS = ("attention", "address", "street2", "city", "state", "zip", "country", "phone", "fax")
PERSON_PARTS = ("first_name", "last_name", "email", "phone")


@dataclass(frozen=True)
class Module:
    """One Books module: its URL path, JSON keys and the documented fields it carries (with their kinds)."""

    object: str
    path: str
    entity_key: str  # the key of one record in a GET answer
    list_keys: tuple[str, ...]  # the key of the rows in a list answer (first found is used)
    id_key: str
    fields: Mapping[str, Kind]
    writable: frozenset[str]
    # Fields the list rows omit, so every changed record is read again with a GET.
    list_is_summary: bool = True
    # Query filters the list endpoint accepts for exact lookups.
    filters: frozenset[str] = frozenset()
    # A field Books keeps unique per organisation (case-insensitively), refused with code 3062 when taken.
    unique_name: str | None = None


CONTACTS = Module(
    object="contacts",
    path="contacts",
    entity_key="contact",
    list_keys=("contacts",),
    id_key="contact_id",
    fields={
        "contact_name": "text",
        "company_name": "text",
        "contact_type": "text",
        "customer_sub_type": "text",
        "status": "text",
        "email": "text",
        "phone": "text",
        "website": "text",
        "notes": "text",
        "currency_code": "text",
        "payment_terms": "int",
        "outstanding_receivable_amount": "money",
        "unused_credits_receivable_amount": "money",
        **{f"primary_contact.{p}": "text" for p in PERSON_PARTS},
        **{f"billing_address.{p}": "text" for p in ADDRESS_PARTS},
        **{f"shipping_address.{p}": "text" for p in ADDRESS_PARTS},
        "created_time": "timestamp",
        "last_modified_time": "timestamp",
    },
    writable=frozenset(
        {
            "contact_name",
            "company_name",
            "contact_type",
            "customer_sub_type",
            "status",
            "email",
            "phone",
            "website",
            "notes",
            "payment_terms",
            *(f"primary_contact.{p}" for p in PERSON_PARTS),
            *(f"billing_address.{p}" for p in ADDRESS_PARTS),
            *(f"shipping_address.{p}" for p in ADDRESS_PARTS),
        }
    ),
    filters=frozenset({"contact_name", "company_name", "email", "first_name", "last_name"}),
    # Customer display names are unique (the organisation's default in the sandbox; a setting on live Books).
    unique_name="contact_name",
)

INVOICES = Module(
    object="invoices",
    path="invoices",
    entity_key="invoice",
    list_keys=("invoices",),
    id_key="invoice_id",
    fields={
        "invoice_number": "text",
        "status": "text",
        "date": "date",
        "due_date": "date",
        "customer_id": "text",
        "customer_name": "text",
        "reference_number": "text",
        "currency_code": "text",
        "exchange_rate": "number",
        "payment_terms": "int",
        "sub_total": "money",
        "tax_total": "money",
        "total": "money",
        "adjustment": "money",
        "payment_made": "money",
        "credits_applied": "money",
        "write_off_amount": "money",
        "balance": "money",
        "last_payment_date": "date",
        "notes": "text",
        "terms": "text",
        "line_items": "lines",
        "created_time": "timestamp",
        "last_modified_time": "timestamp",
    },
    writable=frozenset(
        {
            "invoice_number",
            "date",
            "due_date",
            "customer_id",
            "reference_number",
            "payment_terms",
            "adjustment",
            "notes",
            "terms",
            "line_items",
            "status",
        }
    ),
    filters=frozenset({"invoice_number", "reference_number", "customer_id"}),
)

PAYMENTS = Module(
    object="customerpayments",
    path="customerpayments",
    entity_key="payment",
    # The live API answers `customerpayments`; the OpenAPI file says `customer_payments`.
    list_keys=("customerpayments", "customer_payments"),
    id_key="payment_id",
    fields={
        "payment_number": "text",
        "customer_id": "text",
        "customer_name": "text",
        "payment_mode": "text",
        "amount": "money",
        "unused_amount": "money",
        "amount_refunded": "money",
        "bank_charges": "money",
        "exchange_rate": "number",
        "date": "date",
        "reference_number": "text",
        "description": "text",
        "invoices": "lines",
        "created_time": "timestamp",
        "last_modified_time": "timestamp",
    },
    writable=frozenset(
        {
            "customer_id",
            "payment_mode",
            "amount",
            "bank_charges",
            "exchange_rate",
            "date",
            "reference_number",
            "description",
            "invoices",
        }
    ),
    filters=frozenset({"reference_number", "customer_id", "payment_mode"}),
)

ITEMS = Module(
    object="items",
    path="items",
    entity_key="item",
    list_keys=("items",),
    id_key="item_id",
    fields={
        "name": "text",
        "status": "text",
        "description": "text",
        "rate": "money",
        "unit": "text",
        "sku": "text",
        "product_type": "text",
        "created_time": "timestamp",
        "last_modified_time": "timestamp",
    },
    writable=frozenset({"name", "description", "rate", "unit", "sku", "product_type"}),
    list_is_summary=False,
)

MODULES: dict[str, Module] = {m.object: m for m in (CONTACTS, INVOICES, PAYMENTS, ITEMS)}

# The keys kept from each line of an invoice and each application of a payment.
LINE_KINDS: dict[str, dict[str, Kind]] = {
    "line_items": {
        "line_item_id": "text", "item_id": "text", "name": "text", "description": "text",
        "quantity": "number", "rate": "money", "item_total": "money",
    },
    "invoices": {"invoice_id": "text", "amount_applied": "money"},
}  # fmt: skip


def parse_timestamp(text: str) -> datetime:
    """A Zoho timestamp (`2013-11-18T02:02:51-0800`, `+05:30` accepted too) as an aware UTC datetime."""
    text = text.strip()
    try:
        # Ten times faster than strptime, read for every record a list or write answers.
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or len(text) not in (24, 25) or text[10] != "T":
        parsed = datetime.strptime(text, TIMESTAMP_FORMAT)  # what it does not take is no Zoho timestamp either
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """A datetime in the format of the `last_modified_time` filter (UTC offset written as +0000)."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).replace(",", "")) if str(value).strip() else None
        except InvalidOperation:
            return None
    return None


def typed(value: Any, kind: Kind) -> FieldValue:
    """One vendor JSON value as the plain type of its kind; empty strings and unparseable values are None."""
    if value is None or value == "":
        return None
    if kind in ("money", "number"):
        return _decimal(value)
    if kind == "int":
        number = _decimal(value)
        return int(number) if number is not None else None
    if kind == "date":
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            return None
    if kind == "timestamp":
        try:
            return parse_timestamp(str(value))
        except ValueError:
            return None
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "lines":
        return None  # handled by _lines
    return str(value)


def _lines(raw: Any, kinds: Mapping[str, Kind]) -> list[Mapping[str, FieldValue]]:
    if not isinstance(raw, list):
        return []
    return [
        {key: typed(entry.get(key), kind) for key, kind in kinds.items()}
        for entry in raw
        if isinstance(entry, dict)
    ]


def _primary_person(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    persons = raw.get("contact_persons")
    if isinstance(persons, list):
        for person in persons:
            if isinstance(person, dict) and person.get("is_primary_contact"):
                return person
        if persons and isinstance(persons[0], dict):
            return persons[0]
    # List rows carry the primary person's parts at the top level.
    return {p: raw.get(p) for p in PERSON_PARTS}


def _custom_fields(raw: Mapping[str, Any]) -> dict[str, FieldValue]:
    """`cf_*` values: from the `custom_fields` array (by api_name) and the flattened `cf_*` keys."""
    found: dict[str, FieldValue] = {}
    entries = raw.get("custom_fields")
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("api_name", "")).startswith("cf_"):
                value = entry.get("value")
                found[str(entry["api_name"])] = None if value in (None, "") else str(value)
    for key, value in raw.items():
        if key.startswith("cf_") and key not in found and not isinstance(value, dict | list):
            found[key] = None if value in (None, "") else str(value)
    return found


def flatten(module: Module, raw: Mapping[str, Any], only: Collection[str] | None = None) -> dict[str, FieldValue]:
    """A vendor record as flat typed fields (dotted names for nested parts, lists for lines); with `only`, just
    those of the module's fields (a write's answer is compared with what was sent, not read whole)."""
    fields: dict[str, FieldValue] = {}
    kinds = module.fields
    names = kinds if only is None else [n for n in only if n in kinds]
    person: Mapping[str, Any] | None = None  # the primary person, found once
    for name in names:
        kind = kinds[name]
        if kind == "lines":
            if name in raw:
                fields[name] = _lines(raw.get(name), LINE_KINDS[name])
            continue
        head, dot, part = name.partition(".")
        if not dot:
            fields[name] = typed(raw.get(name), kind)
        elif head == "primary_contact":
            person = _primary_person(raw) if person is None else person
            fields[name] = typed(person.get(part), kind)
        elif isinstance(raw.get(head), dict):
            fields[name] = typed(raw[head].get(part), kind)
    if module is CONTACTS and (only is None or "email" in only or "phone" in only):
        # The contact's email/phone are its primary person's (list rows and GET agree on that).
        person = _primary_person(raw) if person is None else person
        fields["email"] = typed(raw.get("email") or person.get("email"), "text")
        fields["phone"] = typed(raw.get("phone") or person.get("phone"), "text")
    if only is None or any(n.startswith("cf_") for n in only):
        fields.update(_custom_fields(raw))
    return fields


def summary_missing(module: Module, raw: Mapping[str, Any]) -> frozenset[str]:
    """The module's fields a list row leaves out (line items, addresses, notes...): what only a GET reads."""
    if not module.list_is_summary:
        return frozenset()
    missing: set[str] = set()
    for name in module.fields:
        head, dot, part = name.partition(".")
        if not dot:
            present = name in raw
        elif head == "primary_contact":
            present = "contact_persons" in raw or part in raw
        else:
            present = head in raw
        if not present:
            missing.add(name)
    return frozenset(missing)


def modified_at(raw: Mapping[str, Any]) -> datetime:
    """The record's last modification time (its creation time if it was never modified)."""
    for key in ("last_modified_time", "created_time"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            return parse_timestamp(value)
    return datetime.fromtimestamp(0, UTC)


def json_value(value: FieldValue) -> Any:
    """A field value as Zoho expects it in a request body (dates ISO, amounts JSON numbers)."""
    if isinstance(value, Decimal):
        # Amounts are JSON numbers; a float keeps two-decimal amounts exact up to 15 significant digits.
        return float(value) if len(value.as_tuple().digits) <= 15 else str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [{k: json_value(v) for k, v in entry.items() if v is not None} for entry in value]
    return value


class UnwritableField(ValueError):
    """A field name that this module cannot write."""


def unflatten(
    module: Module, fields: Fields, *, current: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str | None]:
    """Flat fields as a Books request body; returns (body, status) where `status` needs its own call.

    `current` is the record as GET returned it: contact persons are rewritten from it so that an update of
    the primary person keeps the other persons and the primary's ID.
    """
    body: dict[str, Any] = {}
    custom: list[dict[str, Any]] = []
    status: str | None = None
    person: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        if name.startswith("cf_"):
            custom.append({"api_name": name, "value": "" if value is None else json_value(value)})
            continue
        if name not in module.writable:
            raise UnwritableField(f"{module.object} cannot write field {name!r}")
        if name == "status":
            status = None if value is None else str(value)
            continue
        head, dot, part = name.partition(".")
        if module is CONTACTS and (head == "primary_contact" or name in ("email", "phone")):
            person[part or name] = "" if value is None else json_value(value)
        elif dot:
            nested.setdefault(head, {})[part] = "" if value is None else json_value(value)
        else:
            body[name] = "" if value is None and module.fields.get(name) == "text" else json_value(value)
    body = {k: v for k, v in body.items() if v is not None}
    body.update(nested)
    if custom:
        body["custom_fields"] = custom
    if person:
        body["contact_persons"] = _persons_with(person, current)
    return body, status


def _persons_with(primary: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The contact_persons array with the primary person changed and every other person kept as it was."""
    existing = current.get("contact_persons") if current else None
    persons = [dict(p) for p in existing if isinstance(p, dict)] if isinstance(existing, list) else []
    keep = ("contact_person_id", "salutation", *PERSON_PARTS, "mobile", "designation", "department",
            "is_primary_contact")  # fmt: skip
    persons = [{k: v for k, v in p.items() if k in keep} for p in persons]
    target = next((p for p in persons if p.get("is_primary_contact")), None)
    if target is None:
        target = {"is_primary_contact": True}
        persons.insert(0, target)
    target.update(primary)
    target["is_primary_contact"] = True
    return persons
