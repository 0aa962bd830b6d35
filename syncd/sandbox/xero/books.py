"""One Xero organisation's records and rules: contacts (unique active `Name`), ACCREC/ACCPAY invoices with line
items and their status moves, payments against authorised invoices, items (unique `Code`), with indexes for
lookups and a stamp order for `If-Modified-Since` lists.

Records are kept in their wire shape (amounts Decimal, `UpdatedDateUTC` in epoch milliseconds, dates ISO) and
rendered by `render`. Rules follow Xero's documentation and its validation messages:
- a contact's `Name` is unique among active contacts, compared case-insensitively;
- an invoice is edited while DRAFT/SUBMITTED/AUTHORISED-without-payments; DRAFT/SUBMITTED ones are DELETED,
  AUTHORISED ones without payments VOIDED; PAID, VOIDED and DELETED ones are not edited;
- payments go only on AUTHORISED invoices, never above the amount due; a payment is deleted by `Status: DELETED`.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from syncd.sandbox.xero.wire import day_ms, decimal, ms_date, parse_day

CENT = Decimal("0.01")
BANK_ACCOUNTS = {"090": "6f2c8a9e-0c39-4b0a-9a52-0d3c7f6a1090", "091": "6f2c8a9e-0c39-4b0a-9a52-0d3c7f6a1091"}
SALES_ACCOUNTS = {"200", "260", "400"}
EDITABLE = ("DRAFT", "SUBMITTED", "AUTHORISED")
NOT_EDITABLE = "Invoice not of valid status for modification"


def name_taken(name: str) -> str:
    """Xero's refusal of a contact name already held by another active contact."""
    return (
        f"The contact name {name} is already assigned to another contact. The contact name must be unique "
        "across all active contacts."
    )


@dataclass(frozen=True)
class Kind:
    """One collection: its URL segment, list key and id field."""

    collection: str
    id_key: str
    event_category: str | None  # webhook category, None when Xero sends none (payments, items)


CONTACTS = Kind("Contacts", "ContactID", "CONTACT")
INVOICES = Kind("Invoices", "InvoiceID", "INVOICE")
PAYMENTS = Kind("Payments", "PaymentID", None)
ITEMS = Kind("Items", "ItemID", None)
KINDS = {k.collection: k for k in (CONTACTS, INVOICES, PAYMENTS, ITEMS)}


@dataclass
class Outcome:
    """The result of one element of a write: the stored record, or its validation messages."""

    record: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    created: bool = False
    submitted: Mapping[str, Any] = field(default_factory=dict)


class StampOrder:
    """Record ids by (stamp, id): what `If-Modified-Since` lists walk without scanning older records."""

    def __init__(self) -> None:
        self._keys: list[tuple[int, str]] = []
        self._stamp: dict[str, int] = {}

    def put(self, record_id: str, stamp: int) -> None:
        """Place (or move) a record at its new stamp."""
        old = self._stamp.get(record_id)
        if old is not None:
            index = bisect.bisect_left(self._keys, (old, record_id))
            del self._keys[index]
        self._stamp[record_id] = stamp
        bisect.insort(self._keys, (stamp, record_id))

    def drop(self, record_id: str) -> None:
        """Forget a deleted record."""
        old = self._stamp.pop(record_id, None)
        if old is not None:
            del self._keys[bisect.bisect_left(self._keys, (old, record_id))]

    def after(self, stamp_ms: int | None) -> Iterator[str]:
        """Ids modified after `stamp_ms` (all when None), oldest first."""
        start = 0 if stamp_ms is None else bisect.bisect_right(self._keys, (stamp_ms, "\uffff"))
        for _stamp, record_id in self._keys[start:]:
            yield record_id


class XeroBooks:
    """The records of one organisation and the rules of writing them."""

    def __init__(self, *, rng: random.Random, now_ms: Callable[[], int], base_currency: str = "USD") -> None:
        self.rng = rng
        self.now_ms = now_ms  # the simulator's clock in milliseconds
        self.base_currency = base_currency
        self.clear()

    def clear(self) -> None:
        """No records at all."""
        self.records: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.order: dict[str, StampOrder] = {k: StampOrder() for k in KINDS}
        self.contact_names: dict[str, str] = {}  # lower-cased active Name -> ContactID
        self.contact_numbers: dict[str, str] = {}
        self.contact_emails: dict[str, set[str]] = {}  # lower-cased EmailAddress -> ContactIDs
        self.invoice_numbers: dict[str, str] = {}
        self.item_codes: dict[str, str] = {}
        self.payments_of: dict[str, list[str]] = {}  # InvoiceID -> PaymentIDs
        self.next_invoice_number = 1
        self.changed: list[tuple[Kind, dict[str, Any], bool]] = []  # (kind, record, created) since last drain
        # History and notes per record, oldest first: what `GET /{Collection}/{id}/History` answers.
        self.history: dict[str, list[dict[str, Any]]] = {}

    # --- state ---

    def dump(self) -> dict[str, Any]:
        """Everything as JSON-able data (amounts as strings)."""
        return {"records": _jsonable(self.records), "next_invoice_number": self.next_invoice_number,
                "history": self.history}

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore `dump`'s output and rebuild the indexes."""
        self.clear()
        for collection, records in state["records"].items():
            for record in records.values():
                self._store(KINDS[collection], _revive(record), created=False, stamp=False)
        self.next_invoice_number = int(state.get("next_invoice_number", 1))
        self.history = {str(k): list(v) for k, v in state.get("history", {}).items()}
        self.changed.clear()

    def get(self, kind: Kind, record_id: str) -> dict[str, Any] | None:
        """A record by id (case-insensitive GUID), or None."""
        return self.records[kind.collection].get(record_id.lower())

    def modified_after(self, kind: Kind, stamp_ms: int | None) -> Iterator[dict[str, Any]]:
        """Records modified after a stamp, oldest first."""
        table = self.records[kind.collection]
        for record_id in self.order[kind.collection].after(stamp_ms):
            yield table[record_id]

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _store(self, kind: Kind, record: dict[str, Any], *, created: bool, stamp: bool = True) -> dict[str, Any]:
        if stamp:
            record["UpdatedDateUTC"] = max(self.now_ms(), int(record.get("UpdatedDateUTC", 0)))
        record_id = str(record[kind.id_key])
        previous = self.records[kind.collection].get(record_id)
        self.records[kind.collection][record_id] = record
        self.order[kind.collection].put(record_id, int(record["UpdatedDateUTC"]))
        if kind is CONTACTS:
            self._index_contact(record, previous)
        elif kind is INVOICES and record.get("InvoiceNumber"):
            self.invoice_numbers[str(record["InvoiceNumber"]).lower()] = record_id
        elif kind is ITEMS:
            self.item_codes[str(record["Code"]).lower()] = record_id
        elif kind is PAYMENTS:
            invoice_id = record["Invoice"]["InvoiceID"]
            found = self.payments_of.setdefault(invoice_id, [])
            if record_id not in found:
                found.append(record_id)
        if stamp:
            self.changed.append((kind, record, created))
            status = record.get("Status") or record.get("ContactStatus")
            self.note(record_id, "Created" if created else "Edited",
                      f"{kind.collection[:-1]} {'created' if created else 'updated'}"
                      + (f" ({status})" if status else ""), user="System Generated")
        return record

    def note(self, record_id: str, changes: str, details: str, *, user: str = "API") -> dict[str, Any]:
        """Add a history record (a change, or a note a client wrote) to a record's history."""
        entry = {"Changes": changes, "DateUTC": self.now_ms(), "User": user, "Details": details}
        self.history.setdefault(record_id, []).append(entry)
        return entry

    def _index_contact(self, record: dict[str, Any], previous: Mapping[str, Any] | None) -> None:
        """Move a contact's entries in the name, number and e-mail indexes from its previous version."""
        record_id = record["ContactID"]
        if previous is not None:
            if self.contact_names.get(str(previous.get("Name", "")).strip().lower()) == record_id:
                del self.contact_names[str(previous["Name"]).strip().lower()]
            self.contact_emails.get(str(previous.get("EmailAddress", "")).lower(), set()).discard(record_id)
            if self.contact_numbers.get(str(previous.get("ContactNumber", ""))) == record_id:
                del self.contact_numbers[str(previous["ContactNumber"])]
        if record.get("ContactStatus") == "ACTIVE":
            self.contact_names[str(record["Name"]).strip().lower()] = record_id
        if record.get("ContactNumber"):
            self.contact_numbers[str(record["ContactNumber"])] = record_id
        if record.get("EmailAddress"):
            self.contact_emails.setdefault(str(record["EmailAddress"]).lower(), set()).add(record_id)

    # --- contacts ---

    def write_contact(self, body: Mapping[str, Any], *, create_only: bool) -> Outcome:
        """PUT (create_only) or POST (create, or update by ContactID / ContactNumber) one contact."""
        existing = None
        if not create_only:
            if body.get("ContactID"):
                existing = self.get(CONTACTS, str(body["ContactID"]))
                if existing is None:
                    return Outcome(None, ["Contact could not be found"], submitted=body)
            elif body.get("ContactNumber") and str(body["ContactNumber"]) in self.contact_numbers:
                existing = self.get(CONTACTS, self.contact_numbers[str(body["ContactNumber"])])
        record: dict[str, Any] = dict(existing) if existing else {
            "ContactID": self._new_id(), "ContactStatus": "ACTIVE", "IsSupplier": False, "IsCustomer": False,
            "Addresses": [{"AddressType": "STREET"}, {"AddressType": "POBOX"}],
            "Phones": [{"PhoneType": t} for t in ("DEFAULT", "DDI", "FAX", "MOBILE")],
            "ContactPersons": [], "HasAttachments": False, "HasValidationErrors": False,
        }  # fmt: skip
        errors: list[str] = []
        name = body.get("Name", record.get("Name"))
        if not isinstance(name, str) or not name.strip():
            errors.append("The contact name must be specified.")
        elif len(name) > 255:
            errors.append("The Contact Name must not be more than 255 characters long.")
        number = body.get("ContactNumber")
        if number is not None and (not isinstance(number, str) or len(number) > 50):
            errors.append("The Contact Number must not be more than 50 characters long.")
        status = body.get("ContactStatus", record.get("ContactStatus"))
        if status not in ("ACTIVE", "ARCHIVED"):
            errors.append("ContactStatus must be ACTIVE or ARCHIVED")
        if isinstance(name, str) and name.strip() and status == "ACTIVE":
            holder = self.contact_names.get(name.strip().lower())
            if holder is not None and holder != record["ContactID"]:
                errors.append(name_taken(name.strip()))
        if errors:
            return Outcome(None, errors, submitted=body)
        for key in ("Name", "FirstName", "LastName", "EmailAddress", "ContactNumber", "AccountNumber",
                    "CompanyNumber", "ContactStatus", "TaxNumber", "Website", "DefaultCurrency"):
            if key in body:
                record[key] = body[key]
        for key, kind_key in (("Addresses", "AddressType"), ("Phones", "PhoneType")):
            if isinstance(body.get(key), list):
                record[key] = _merge_typed(record.get(key, []), body[key], kind_key)
        if isinstance(body.get("ContactPersons"), list):
            record["ContactPersons"] = [dict(p) for p in body["ContactPersons"] if isinstance(p, Mapping)]
        return Outcome(self._store(CONTACTS, record, created=existing is None), created=existing is None)

    # --- invoices ---

    def write_invoice(self, body: Mapping[str, Any], *, create_only: bool) -> Outcome:
        """PUT (create_only) or POST (create, or update by InvoiceID / InvoiceNumber) one invoice."""
        existing = None
        if not create_only:
            if body.get("InvoiceID"):
                existing = self.get(INVOICES, str(body["InvoiceID"]))
                if existing is None:
                    return Outcome(None, ["Invoice could not be found"], submitted=body)
            elif body.get("InvoiceNumber") and str(body["InvoiceNumber"]).lower() in self.invoice_numbers:
                existing = self.get(INVOICES, self.invoice_numbers[str(body["InvoiceNumber"]).lower()])
        if existing is not None:
            return self._update_invoice(existing, body)
        errors: list[str] = []
        kind = body.get("Type")
        if kind not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice Type must be specified (ACCREC or ACCPAY)")
        contact = self._contact_ref(body.get("Contact"), errors)
        status = str(body.get("Status") or "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append(f"Invoice status {status} is not valid for a new invoice")
        lines = self._lines(body.get("LineItems"), errors, require=status != "DRAFT")
        day = parse_day(body.get("Date")) if body.get("Date") else date.fromtimestamp(self.now_ms() / 1000)
        if day is None:
            errors.append("Date is not a valid date")
        due = parse_day(body.get("DueDate")) if body.get("DueDate") else None
        if body.get("DueDate") and due is None:
            errors.append("DueDate is not a valid date")
        if status == "AUTHORISED" and due is None:
            errors.append("Due Date is mandatory for an approved invoice")
        number = body.get("InvoiceNumber")
        if kind == "ACCREC" and number and str(number).lower() in self.invoice_numbers:
            errors.append("Invoice # must be unique.")
        reference = body.get("Reference")
        if reference is not None and len(str(reference)) > 255:
            errors.append("The Reference must not be more than 255 characters long.")
        if errors:
            return Outcome(None, errors, submitted=body)
        if kind == "ACCREC" and not number:
            number = f"INV-{self.next_invoice_number:04d}"
            self.next_invoice_number += 1
        record: dict[str, Any] = {
            "InvoiceID": self._new_id(), "Type": kind, "Contact": contact, "Date": day.isoformat() if day else None,
            "DueDate": due.isoformat() if due else None, "Status": status,
            "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive", "LineItems": lines,
            "InvoiceNumber": number or "", "Reference": reference or "",
            "CurrencyCode": body.get("CurrencyCode") or self.base_currency, "CurrencyRate": Decimal("1"),
            "Payments": [], "AmountCredited": Decimal("0"), "HasAttachments": False, "IsDiscounted": False,
            "SentToContact": False, "HasErrors": False,
        }  # fmt: skip
        _total(record)
        self._mark_customer(record)
        return Outcome(self._store(INVOICES, record, created=True), created=True)

    def _update_invoice(self, current: dict[str, Any], body: Mapping[str, Any]) -> Outcome:
        record = dict(current)
        status = record["Status"]
        wanted = str(body.get("Status") or status)
        live_payments = [p for p in self.payments_of.get(record["InvoiceID"], [])
                         if self.records["Payments"][p]["Status"] != "DELETED"]  # fmt: skip
        errors: list[str] = []
        if _refused_move(status, wanted, bool(live_payments), "LineItems" in body):
            errors.append(NOT_EDITABLE)
        if "Contact" in body:
            record["Contact"] = self._contact_ref(body.get("Contact"), errors)
        if "LineItems" in body:
            record["LineItems"] = self._lines(body.get("LineItems"), errors,
                                              require=wanted in ("SUBMITTED", "AUTHORISED"))
        for key in ("Date", "DueDate"):
            if key in body:
                day = parse_day(body.get(key))
                if day is None:
                    errors.append(f"{key} is not a valid date")
                else:
                    record[key] = day.isoformat()
        if wanted in ("SUBMITTED", "AUTHORISED") and "LineItems" not in body and any(
            not line.get("AccountCode") and not line.get("ItemCode") for line in record["LineItems"]
        ):
            errors.append("Account code must be specified for each line item of an approved invoice")
        if wanted == "AUTHORISED" and not record.get("DueDate"):
            errors.append("Due Date is mandatory for an approved invoice")
        if errors:
            return Outcome(None, errors, submitted=body)
        for key in ("Reference", "LineAmountTypes", "CurrencyCode"):
            if key in body:
                record[key] = body[key]
        if body.get("InvoiceNumber"):
            record["InvoiceNumber"] = body["InvoiceNumber"]
        record["Status"] = wanted
        _total(record)
        return Outcome(self._store(INVOICES, record, created=False))

    def _contact_ref(self, ref: Any, errors: list[str]) -> dict[str, Any]:
        contact = None
        if isinstance(ref, Mapping) and ref.get("ContactID"):
            contact = self.get(CONTACTS, str(ref["ContactID"]))
        elif isinstance(ref, Mapping) and ref.get("Name"):
            holder = self.contact_names.get(str(ref["Name"]).strip().lower())
            contact = self.get(CONTACTS, holder) if holder else None
        if contact is None:
            errors.append("The Contact could not be found (ContactID or Name)")
            return {}
        return {"ContactID": contact["ContactID"], "Name": contact["Name"]}

    def _lines(self, raw: Any, errors: list[str], *, require: bool) -> list[dict[str, Any]]:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            errors.append("LineItems must be a list")
            return []
        if require and not raw:
            errors.append("Invoices must have at least one line item")
        lines = []
        for entry in raw:
            if not isinstance(entry, Mapping):
                errors.append("A line item must be an object")
                continue
            quantity = decimal(entry.get("Quantity", 1))
            unit = decimal(entry.get("UnitAmount", 0))
            if quantity is None or unit is None:
                errors.append("Quantity and UnitAmount must be numbers")
                continue
            description = entry.get("Description")
            item_code = entry.get("ItemCode")
            if item_code and str(item_code).lower() not in self.item_codes:
                errors.append(f"Item code '{item_code}' is not valid")
            if not description and not item_code:
                errors.append("Description needs to be specified for a line item")
            account = str(entry.get("AccountCode") or "")
            if account and account not in SALES_ACCOUNTS and account not in BANK_ACCOUNTS:
                errors.append(f"Account code '{account}' is not a valid code for this document.")
            elif require and not account and not item_code:
                # A draft may leave it out; an approved invoice must say where each line posts.
                errors.append("Account code must be specified for each line item of an approved invoice")
            discount = decimal(entry.get("DiscountRate", 0)) or Decimal("0")
            amount = (quantity * unit * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
            line: dict[str, Any] = {
                "LineItemID": str(entry.get("LineItemID") or self._new_id()), "Description": description or "",
                "Quantity": quantity, "UnitAmount": unit, "TaxType": "NONE",
                "TaxAmount": Decimal("0.00"), "LineAmount": amount, "Tracking": [],
            }  # fmt: skip
            if item_code:
                line["ItemCode"] = item_code
            if account:
                line["AccountCode"] = account
            if discount:
                line["DiscountRate"] = discount
            lines.append(line)
        return lines

    def _mark_customer(self, invoice: Mapping[str, Any]) -> None:
        contact = self.get(CONTACTS, invoice["Contact"]["ContactID"])
        flag = "IsCustomer" if invoice["Type"] == "ACCREC" else "IsSupplier"
        if contact is not None and not contact.get(flag):
            self._store(CONTACTS, {**contact, flag: True}, created=False)

    # --- payments ---

    def write_payment(self, body: Mapping[str, Any], *, create_only: bool) -> Outcome:
        """Create a payment on an authorised invoice; POST to an existing one may only set `Status: DELETED`."""
        if not create_only and body.get("PaymentID"):
            current = self.get(PAYMENTS, str(body["PaymentID"]))
            if current is None:
                return Outcome(None, ["Payment could not be found"], submitted=body)
            if body.get("Status") != "DELETED":
                return Outcome(None, ["Payments can only be deleted (Status DELETED), not edited"], submitted=body)
            return self._delete_payment(current)
        errors: list[str] = []
        invoice = None
        ref = body.get("Invoice")
        if isinstance(ref, Mapping) and ref.get("InvoiceID"):
            invoice = self.get(INVOICES, str(ref["InvoiceID"]))
        elif isinstance(ref, Mapping) and ref.get("InvoiceNumber"):
            found = self.invoice_numbers.get(str(ref["InvoiceNumber"]).lower())
            invoice = self.get(INVOICES, found) if found else None
        if invoice is None:
            errors.append("Invoice could not be found")
        account = body.get("Account")
        code = str(account.get("Code", "")) if isinstance(account, Mapping) else ""
        account_id = str(account.get("AccountID", "")).lower() if isinstance(account, Mapping) else ""
        if not code and account_id:
            code = next((c for c, a in BANK_ACCOUNTS.items() if a == account_id), "")
        if code not in BANK_ACCOUNTS:
            errors.append("Account code is not a bank account or not enabled for payments")
        amount = decimal(body.get("Amount"))
        if amount is None or amount <= 0:
            errors.append("Payment amount must be greater than zero")
        day = parse_day(body.get("Date")) if body.get("Date") else date.fromtimestamp(self.now_ms() / 1000)
        if day is None:
            errors.append("Date is not a valid date")
        if invoice is not None and invoice["Status"] != "AUTHORISED":
            errors.append("Payments can only be made against Authorised documents")
        elif invoice is not None and amount is not None and amount > invoice["AmountDue"]:
            errors.append("Payment amount exceeds the amount outstanding on this document")
        if errors or invoice is None or amount is None or day is None:
            return Outcome(None, errors, submitted=body)
        record: dict[str, Any] = {
            "PaymentID": self._new_id(), "Date": day.isoformat(), "Amount": amount, "BankAmount": amount,
            "Reference": str(body.get("Reference") or ""), "CurrencyRate": Decimal("1"),
            "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
            "Status": "AUTHORISED", "IsReconciled": False, "HasAccount": True, "HasValidationErrors": False,
            "Account": {"AccountID": BANK_ACCOUNTS[code], "Code": code},
            "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"],
                        "Type": invoice["Type"], "Contact": dict(invoice["Contact"])},
        }  # fmt: skip
        stored = self._store(PAYMENTS, record, created=True)
        self._settle(invoice)
        return Outcome(stored, created=True)

    def _delete_payment(self, current: dict[str, Any]) -> Outcome:
        if current["Status"] == "DELETED":
            return Outcome(current)
        stored = self._store(PAYMENTS, {**current, "Status": "DELETED"}, created=False)
        invoice = self.get(INVOICES, current["Invoice"]["InvoiceID"])
        if invoice is not None:
            self._settle(invoice)
        return Outcome(stored)

    def _settle(self, invoice: dict[str, Any]) -> None:
        """Recompute an invoice's payments, amounts and status after a payment came or went."""
        live = [self.records["Payments"][p] for p in self.payments_of.get(invoice["InvoiceID"], [])]
        live = [p for p in live if p["Status"] != "DELETED"]
        record = dict(invoice)
        record["Payments"] = [
            {"PaymentID": p["PaymentID"], "Date": p["Date"], "Amount": p["Amount"], "Reference": p["Reference"],
             "CurrencyRate": Decimal("1"), "HasAccount": True, "HasValidationErrors": False}
            for p in live
        ]  # fmt: skip
        _total(record)
        if record["AmountDue"] <= 0 and live:
            record["Status"] = "PAID"
            record["FullyPaidOnDate"] = max(p["Date"] for p in live)
        else:
            record["Status"] = "AUTHORISED" if record["Status"] == "PAID" else record["Status"]
            record.pop("FullyPaidOnDate", None)
        self._store(INVOICES, record, created=False)

    # --- items ---

    def write_item(self, body: Mapping[str, Any], *, create_only: bool) -> Outcome:
        """PUT (create_only) or POST (create, or update by ItemID / Code) one item."""
        existing = None
        code = body.get("Code")
        if not create_only:
            if body.get("ItemID"):
                existing = self.get(ITEMS, str(body["ItemID"]))
                if existing is None:
                    return Outcome(None, ["Item could not be found"], submitted=body)
            elif code and str(code).lower() in self.item_codes:
                existing = self.get(ITEMS, self.item_codes[str(code).lower()])
        errors: list[str] = []
        if not isinstance(code or (existing or {}).get("Code"), str) or not str(code or existing["Code"]).strip():  # type: ignore[index]
            errors.append("Item code must be specified")
        elif code and len(str(code)) > 30:
            errors.append("The Code must not be more than 30 characters long.")
        holder = self.item_codes.get(str(code).lower()) if code else None
        if holder is not None and (existing is None or holder != existing["ItemID"]):
            errors.append(f"Item code '{code}' already exists")
        if errors:
            return Outcome(None, errors, submitted=body)
        record = dict(existing) if existing else {"ItemID": self._new_id(), "IsSold": True, "IsPurchased": False,
                                                  "IsTrackedAsInventory": False}  # fmt: skip
        if existing is not None and code and str(code).lower() != str(existing["Code"]).lower():
            self.item_codes.pop(str(existing["Code"]).lower(), None)
        for key in ("Code", "Name", "Description", "IsSold", "IsPurchased", "PurchaseDescription"):
            if key in body:
                record[key] = body[key]
        record.setdefault("Name", record["Code"])
        if isinstance(body.get("SalesDetails"), Mapping):
            sales = dict(body["SalesDetails"])
            if "UnitPrice" in sales:
                sales["UnitPrice"] = decimal(sales["UnitPrice"]) or Decimal("0")
            record["SalesDetails"] = sales
        return Outcome(self._store(ITEMS, record, created=existing is None), created=existing is None)

    def delete_item(self, item: Mapping[str, Any]) -> None:
        """Remove an item for good (Xero deletes items; invoice lines keep their code as text)."""
        self.records[ITEMS.collection].pop(str(item["ItemID"]), None)
        self.order[ITEMS.collection].drop(str(item["ItemID"]))
        self.item_codes.pop(str(item["Code"]).lower(), None)


def _refused_move(status: str, wanted: str, paid: bool, new_lines: bool) -> bool:
    """Whether Xero refuses this edit of an invoice in `status` (moving it to `wanted`)."""
    if status not in EDITABLE or (status == "AUTHORISED" and paid and new_lines):
        return True
    if wanted == "VOIDED":
        return status != "AUTHORISED" or paid
    if wanted == "DELETED":
        return status not in ("DRAFT", "SUBMITTED")
    if wanted not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        return True
    return status == "AUTHORISED" and wanted != "AUTHORISED"


def _merge_typed(current: list[Any], sent: list[Any], type_key: str) -> list[dict[str, Any]]:
    """Addresses/phones are keyed by their type: a sent one replaces the whole entry of its type (parts not sent
    are blank afterwards), the other types stay. Unverified: Xero's docs do not say whether parts not sent are
    kept; this is the stricter reading, which a client that sends whole entries handles either way."""
    merged = {str(e.get(type_key)): dict(e) for e in current if isinstance(e, Mapping)}
    for entry in sent:
        if isinstance(entry, Mapping) and entry.get(type_key):
            merged[str(entry[type_key])] = dict(entry)
    return list(merged.values())


def _total(invoice: dict[str, Any]) -> None:
    """SubTotal/Total/AmountDue/AmountPaid of an invoice (no tax: every line is TaxType NONE)."""
    sub = sum((line["LineAmount"] for line in invoice["LineItems"]), Decimal("0.00"))
    paid = sum((p["Amount"] for p in invoice.get("Payments", [])), Decimal("0.00"))
    invoice["SubTotal"] = sub
    invoice["TotalTax"] = Decimal("0.00")
    invoice["Total"] = sub
    invoice["TotalDiscount"] = Decimal("0.00")
    invoice["AmountPaid"] = paid
    invoice["AmountDue"] = sub - paid - invoice.get("AmountCredited", Decimal("0"))


DATE_KEYS = ("Date", "DueDate", "FullyPaidOnDate")


def render(kind: Kind, record: Mapping[str, Any], *, lines: bool = True) -> dict[str, Any]:
    """A record as Xero answers it: dates and stamps as `/Date(…)/`; invoice lines left out of unpaged lists."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in DATE_KEYS and value:
            out[key] = ms_date(day_ms(date.fromisoformat(value)))
            if key != "FullyPaidOnDate":
                out[f"{key}String"] = f"{value}T00:00:00"
        elif key == "UpdatedDateUTC":
            out[key] = ms_date(int(value))
        elif key == "Payments" and isinstance(value, list):
            out[key] = [{**p, "Date": ms_date(day_ms(date.fromisoformat(p["Date"])))} for p in value]
        elif value is not None:
            out[key] = value
    if kind is INVOICES and not lines:
        out.pop("LineItems", None)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    return value


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$decimal"}:
            return Decimal(value["$decimal"])
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value
