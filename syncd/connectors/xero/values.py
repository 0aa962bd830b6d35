"""Xero records as syncd's plain values and back: collections, flattening, `/Date(…)/` stamps, `where` quoting.

Flattened names are dotted: `Contact.ContactID`, `Invoice.InvoiceID`, `Balances.AccountsReceivable.Outstanding`;
typed lists are keyed by their type (`Addresses.POBOX.City`, `Phones.DEFAULT.PhoneNumber`); line-like lists
(`LineItems`, `Payments`, `ContactPersons`) stay lists of mappings. `Date`/`DueDate`-like fields become dates,
`UpdatedDateUTC` an aware datetime, amounts Decimal (JSON is parsed with Decimal, so they stay exact)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from syncd.connectors.base import FieldValue

MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DATE_FIELDS = frozenset({"Date", "DueDate", "FullyPaidOnDate", "ExpectedPaymentDate", "PlannedPaymentDate"})
TYPED_LISTS = {"Addresses": "AddressType", "Phones": "PhoneType"}
EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True)
class Collection:
    """One Xero collection as syncd uses it."""

    object: str  # "Contacts": the URL segment, the list key, and syncd's object name
    id_key: str  # "ContactID"
    singular: str  # "contact": the SDK's method names (get_contact, update_contact)
    fields: Mapping[str, str]  # documented fields syncd may map, with their kind (for describe)
    writable: frozenset[str]
    required: frozenset[str] = frozenset()
    reference: str | None = None  # where syncd's create reference fits (unique, looked up after a crash)
    unique_name: str | None = None  # a field Xero keeps unique (the contact's Name)
    paged: bool = True  # the list takes page/pageSize (Items does not)
    by_ids: str | None = "i_ds"  # the list's parameter that takes ids, if any


CONTACTS = Collection(
    "Contacts", "ContactID", "contact",
    fields={"Name": "text", "FirstName": "text", "LastName": "text", "EmailAddress": "email", "ContactNumber": "text",
            "AccountNumber": "text", "CompanyNumber": "text", "ContactStatus": "text", "Website": "text",
            "TaxNumber": "text", "DefaultCurrency": "text", "IsCustomer": "bool", "IsSupplier": "bool",
            "Addresses.POBOX.AddressLine1": "text", "Addresses.POBOX.City": "text", "Addresses.POBOX.Region": "text",
            "Addresses.POBOX.PostalCode": "text", "Addresses.POBOX.Country": "text",
            "Addresses.STREET.AddressLine1": "text", "Addresses.STREET.City": "text",
            "Phones.DEFAULT.PhoneNumber": "phone", "Phones.MOBILE.PhoneNumber": "phone",
            "UpdatedDateUTC": "datetime"},
    writable=frozenset({"Name", "FirstName", "LastName", "EmailAddress", "ContactNumber", "AccountNumber",
                        "CompanyNumber", "ContactStatus", "Website", "TaxNumber", "DefaultCurrency"}),
    required=frozenset({"Name"}), reference="ContactNumber", unique_name="Name",
)  # fmt: skip
INVOICES = Collection(
    "Invoices", "InvoiceID", "invoice",
    fields={"Type": "text", "Contact.ContactID": "reference", "Contact.Name": "text", "Date": "date",
            "DueDate": "date", "Status": "text", "LineAmountTypes": "text", "LineItems": "lines",
            "InvoiceNumber": "text", "Reference": "text", "CurrencyCode": "text", "SubTotal": "money",
            "TotalTax": "money", "Total": "money", "AmountDue": "money", "AmountPaid": "money",
            "AmountCredited": "money", "FullyPaidOnDate": "date", "UpdatedDateUTC": "datetime"},
    writable=frozenset({"Type", "Contact.ContactID", "Date", "DueDate", "Status", "LineAmountTypes", "LineItems",
                        "InvoiceNumber", "Reference", "CurrencyCode"}),
    required=frozenset({"Type", "Contact.ContactID"}), reference="Reference",
)  # fmt: skip
PAYMENTS = Collection(
    "Payments", "PaymentID", "payment",
    fields={"Invoice.InvoiceID": "reference", "Invoice.InvoiceNumber": "text", "Invoice.Contact.ContactID": "text",
            "Account.Code": "text", "Account.AccountID": "text", "Date": "date", "Amount": "money",
            "Reference": "text", "Status": "text", "PaymentType": "text", "IsReconciled": "bool",
            "UpdatedDateUTC": "datetime"},
    writable=frozenset({"Invoice.InvoiceID", "Account.Code", "Account.AccountID", "Date", "Amount", "Reference"}),
    required=frozenset({"Invoice.InvoiceID", "Amount"}), reference="Reference", by_ids=None,
)  # fmt: skip
ITEMS = Collection(
    "Items", "ItemID", "item",
    fields={"Code": "text", "Name": "text", "Description": "text", "IsSold": "bool", "IsPurchased": "bool",
            "SalesDetails.UnitPrice": "money", "SalesDetails.AccountCode": "text", "UpdatedDateUTC": "datetime"},
    writable=frozenset({"Code", "Name", "Description", "IsSold", "IsPurchased", "SalesDetails.UnitPrice",
                        "SalesDetails.AccountCode"}),
    required=frozenset({"Code"}), reference="Code", paged=False, by_ids=None,
)  # fmt: skip
COLLECTIONS = {c.object: c for c in (CONTACTS, INVOICES, PAYMENTS, ITEMS)}
LINE_FIELDS = {
    "LineItems": {"LineItemID": "text", "Description": "text", "Quantity": "decimal", "UnitAmount": "money",
                  "ItemCode": "text", "AccountCode": "text", "TaxType": "text", "LineAmount": "money",
                  "DiscountRate": "decimal"},
}  # fmt: skip


def parse_ms_date(value: str) -> datetime | None:
    """`/Date(1573755038314+0000)/` as an aware UTC datetime; None when it is not one."""
    match = MS_DATE.match(value.strip())
    if match is None:
        return None
    return EPOCH + timedelta(milliseconds=int(match.group(1)))


def _value(key: str, value: Any) -> FieldValue:
    if isinstance(value, str):
        moment = parse_ms_date(value)
        if moment is not None:
            return moment.date() if key in DATE_FIELDS else moment
        return value
    if isinstance(value, float):  # never from our parser (Decimal), but a hand-made dict may hold one
        return Decimal(str(value))
    if isinstance(value, str | int | Decimal | bool) or value is None:
        return value
    return str(value)


def flatten(raw: Mapping[str, Any]) -> dict[str, FieldValue]:
    """A record's fields under dotted names (see the module docstring)."""
    out: dict[str, FieldValue] = {}
    _flatten_into(out, "", raw)
    return out


def _flatten_into(out: dict[str, FieldValue], prefix: str, raw: Mapping[str, Any]) -> None:
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten_into(out, name + ".", value)
        elif isinstance(value, list) and key in TYPED_LISTS and not prefix:
            for entry in value:
                if isinstance(entry, Mapping) and entry.get(TYPED_LISTS[key]):
                    kind = str(entry[TYPED_LISTS[key]])
                    for sub, sub_value in entry.items():
                        if sub != TYPED_LISTS[key] and not isinstance(sub_value, Mapping | list):
                            out[f"{name}.{kind}.{sub}"] = _value(sub, sub_value)
        elif isinstance(value, list):
            out[name] = [flatten(e) for e in value if isinstance(e, Mapping)]
        elif key.endswith("String") and key[: -len("String")] in raw:
            continue  # DateString and friends repeat their field
        else:
            out[name] = _value(key, value)


def _wire(value: Any) -> Any:
    """A syncd value as the SDK's serializer takes it (None clears a field, which Xero does with "")."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [{k: _wire(v) for k, v in unflatten_plain(e).items()} for e in value if isinstance(e, Mapping)]
    return value


def unflatten_plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted names back into nested objects, without typed lists (line items' own fields)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        node = body
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return body


def unflatten(fields: Mapping[str, FieldValue]) -> dict[str, Any]:
    """Flattened fields as a Xero element body (typed lists rebuilt, values in wire form)."""
    body: dict[str, Any] = {}
    typed: dict[str, dict[str, dict[str, Any]]] = {}
    for name, value in fields.items():
        parts = name.split(".")
        if parts[0] in TYPED_LISTS and len(parts) == 3:
            typed.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = _wire(value)
            continue
        node = body
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _wire(value)
    for key, by_type in typed.items():
        body[key] = [{TYPED_LISTS[key]: kind, **entry} for kind, entry in by_type.items()]
    return body


def modified_at(raw: Mapping[str, Any]) -> datetime:
    """A record's `UpdatedDateUTC` (the epoch when absent, so it sorts first and is read again)."""
    value = raw.get("UpdatedDateUTC")
    moment = parse_ms_date(value) if isinstance(value, str) else None
    return moment or EPOCH


def quote(value: str) -> str:
    """A string literal for a `where` filter: quotes and backslashes escaped, never interpolated raw."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_guid(value: str) -> bool:
    """Whether a value is a GUID (ids are compared with `guid("…")` in filters)."""
    return GUID.fullmatch(value) is not None


# Fields Xero compares without case where it matters to syncd (a contact's e-mail, its unique Name): asked with
# `.ToLower()` (Xero's documented filter form), so the lookup finds them whatever the case of the stored value.
CASELESS = frozenset({"EmailAddress", "Name"})


def condition(field: str, value: str) -> str:
    """One equality of a `where` filter: GUID-typed for id fields, lower-cased on both sides for `CASELESS`."""
    if field.endswith("ID") and is_guid(value):
        return f'{field}==guid("{value}")'
    if field in CASELESS:
        return f"{field}.ToLower()=={quote(value.lower())}"
    return f"{field}=={quote(value)}"
