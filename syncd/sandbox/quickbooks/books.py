"""One QuickBooks Online company's records and rules: Customers (DisplayName unique), Items (Name unique),
Invoices with SalesItemLineDetail lines, Payments linked to invoices; SyncToken checks, sparse updates, void,
delete, and a LastUpdatedTime index that serves CDC and `MetaData.LastUpdatedTime >` queries without a scan.

Records are kept as QBO's JSON (the wire shape); amounts are computed with Decimal and sent as JSON numbers.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from syncd.sandbox.quickbooks import faults
from syncd.sandbox.quickbooks.faults import QboFault
from syncd.sandbox.quickbooks.properties import XSD_PROPERTIES
from syncd.sandbox.quickbooks.query import Query, QueryError, lookup, matches

ENTITIES = ("Customer", "Invoice", "Payment", "Item")
# Name-list entities: unique name, made inactive instead of deleted, and only active ones listed by default.
NAME_FIELD = {"Customer": "DisplayName", "Item": "Name"}
# The company's time zone: QBO stamps MetaData in it, with its offset.
COMPANY_TZ = timezone(timedelta(hours=-8))
CENT = Decimal("0.01")
ZERO = Decimal("0")
INCOME_ACCOUNT = {"value": "79", "name": "Sales of Product Income"}

WRITABLE: dict[str, frozenset[str]] = {
    "Customer": frozenset({
        "DisplayName", "Title", "GivenName", "MiddleName", "FamilyName", "Suffix", "CompanyName",
        "PrimaryEmailAddr", "PrimaryPhone", "Mobile", "Fax", "WebAddr", "BillAddr", "ShipAddr", "Notes",
        "Active", "PrintOnCheckName", "CurrencyRef", "Taxable", "PreferredDeliveryMethod", "ParentRef", "Job",
        "BillWithParent",
    }),
    "Invoice": frozenset({
        "CustomerRef", "Line", "DocNumber", "TxnDate", "DueDate", "PrivateNote", "CustomerMemo", "BillEmail",
        "CurrencyRef", "SalesTermRef", "BillAddr", "ShipAddr", "CustomField", "EmailStatus", "PrintStatus",
        "ApplyTaxAfterDiscount",
    }),
    "Payment": frozenset({
        "CustomerRef", "TotalAmt", "Line", "TxnDate", "PaymentRefNum", "PrivateNote", "CurrencyRef",
        "PaymentMethodRef", "DepositToAccountRef", "ProcessPayment",
    }),
    "Item": frozenset({
        "Name", "Description", "Active", "Type", "UnitPrice", "IncomeAccountRef", "Taxable", "Sku",
        "PurchaseCost", "ExpenseAccountRef", "TrackQtyOnHand",
    }),
}
# Properties a write may carry besides the writable ones: what identifies it and how it is applied.
ENVELOPE = frozenset({"Id", "SyncToken", "sparse", "domain", "MetaData", "status"})
READ_ONLY = {
    "Customer": frozenset({"FullyQualifiedName", "Balance", "BalanceWithJobs", "Level"}),
    "Invoice": frozenset({"TotalAmt", "Balance", "LinkedTxn", "HomeTotalAmt"}),
    "Payment": frozenset({"UnappliedAmt"}),
    "Item": frozenset({"FullyQualifiedName"}),
}


def money(value: Any, prop: str) -> Decimal:
    """A JSON amount as Decimal cents; 2010-style refusal for something that is not a number."""
    if isinstance(value, bool):
        raise faults.unsupported(prop)
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise QboFault(faults.UNSUPPORTED_PROPERTY, "Request has invalid or unsupported property",
                       f"{prop} is not a number: {value!r}", element=prop) from None
    if not parsed.is_finite():
        raise faults.unsupported(prop)
    return parsed.quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: Decimal) -> int | float:
    """A Decimal as QBO writes amounts in JSON."""
    return float(value) if value != value.to_integral_value() else float(int(value))


def stamp_text(epoch: float) -> str:
    """A MetaData time: whole seconds in the company's zone, with its offset."""
    return datetime.fromtimestamp(int(epoch), COMPANY_TZ).isoformat()


def parse_time(text: Any) -> float:
    """A time from a query or CDC parameter (with offset, `Z`, or a bare date in the company's zone)."""
    if not isinstance(text, str):
        raise QueryError(f"Error parsing query: {text!r} is not a date-time", code=faults.INVALID_QUERY)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"Error parsing query: {text!r} is not a date-time", code=faults.INVALID_QUERY) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=COMPANY_TZ)
    return moment.timestamp()


def _date(value: Any, prop: str) -> str:
    if not isinstance(value, str):
        raise faults.unsupported(prop)
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise faults.unsupported(prop) from None


class Books:
    """The records of one company and every rule the API applies to them."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.records: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self.deleted: dict[str, dict[str, float]] = {e: {} for e in ENTITIES}  # Id -> when, for CDC
        self.names: dict[str, dict[str, str]] = {e: {} for e in NAME_FIELD}  # folded name -> Id
        # (LastUpdatedTime epoch, Id), sorted, per entity: CDC and time-filtered queries bisect it.
        self.by_time: dict[str, list[tuple[int, int]]] = {e: [] for e in ENTITIES}
        self.stamps: dict[str, dict[str, int]] = {e: {} for e in ENTITIES}
        self.next_id = 1
        self.next_doc = 1001
        self.create({"Name": "Services", "Type": "Service", "IncomeAccountRef": dict(INCOME_ACCOUNT)}, "Item")

    # --- state ---

    def dump(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"records": self.records, "deleted": self.deleted, "stamps": self.stamps,
                "next_id": self.next_id, "next_doc": self.next_doc}  # fmt: skip

    def load(self, state: dict[str, Any]) -> None:
        """Restore `dump()`; indexes are rebuilt."""
        self.records = {e: dict(state["records"].get(e, {})) for e in ENTITIES}
        self.deleted = {e: {k: float(v) for k, v in state["deleted"].get(e, {}).items()} for e in ENTITIES}
        self.stamps = {e: {k: int(v) for k, v in state["stamps"].get(e, {}).items()} for e in ENTITIES}
        self.next_id = int(state["next_id"])
        self.next_doc = int(state["next_doc"])
        self.by_time = {e: sorted((s, int(i)) for i, s in self.stamps[e].items()) for e in ENTITIES}
        self.names = {e: {} for e in NAME_FIELD}
        for entity, field in NAME_FIELD.items():
            for record_id, record in self.records[entity].items():
                self.names[entity][self._fold(record[field])] = record_id

    # --- reading ---

    def get(self, entity: str, record_id: str) -> dict[str, Any]:
        """The record as the API answers it (computed amounts filled in); 610 if there is none."""
        record = self.records[entity].get(str(record_id))
        if record is None:
            raise faults.not_found(entity, str(record_id))
        return self.render(entity, record)

    def render(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as answered: a customer's balance is that of its open invoices."""
        out = copy.deepcopy(record)
        if entity == "Customer":
            balance = sum((money(i.get("Balance", 0), "Balance") for i in self.records["Invoice"].values()
                           if i["CustomerRef"]["value"] == record["Id"]), ZERO)  # fmt: skip
            out["Balance"] = out["BalanceWithJobs"] = number(balance)
        return out

    def query(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        """Records a query selects, in order, one page of them; and how many matched in all."""
        entity = self._entity(query.entity)
        for condition in query.where:
            if condition.field.split(".")[0] not in self._queryable(entity):
                raise QueryError(f"Property {condition.field} not found for Entity {entity}",
                                 code=faults.INVALID_QUERY)  # fmt: skip
        candidates = self._candidates(entity, query)
        time_key = lambda v: parse_time(v) if isinstance(v, str) else None  # noqa: E731
        selected = [
            r for r in candidates
            if all(matches(r, c, time_key if c.field.startswith("MetaData.") else None) for c in query.where)
        ]  # fmt: skip
        if entity in NAME_FIELD and not any(c.field == "Active" for c in query.where):
            selected = [r for r in selected if r.get("Active", True)]  # QBO lists active names unless asked
        for name, descending in reversed(query.order or [("Id", False)]):
            selected.sort(key=lambda r, n=name: self._sort_key(r, n), reverse=descending)  # type: ignore[misc]
        page = selected[query.start - 1: query.start - 1 + query.max_results]
        return [self.render(entity, r) for r in page], len(selected)

    def _candidates(self, entity: str, query: Query) -> Iterable[dict[str, Any]]:
        """The records a query can select, narrowed by an index where a condition allows it."""
        table = self.records[entity]
        for c in query.where:
            if c.field == "Id" and c.op in ("=", "IN"):
                return [table[i] for i in dict.fromkeys(str(v) for v in c.values) if i in table]
            if c.field in NAME_FIELD.values() and entity in NAME_FIELD and c.op in ("=", "IN"):
                holders = [self.names[entity].get(self._fold(str(v))) for v in c.values]
                return [table[i] for i in dict.fromkeys(holders) if i is not None and i in table]
            if c.field == "MetaData.LastUpdatedTime" and c.op in (">", ">="):
                since = parse_time(c.values[0])
                index = self.by_time[entity]
                start = bisect.bisect_left(index, (int(since), -1))
                return [table[str(i)] for _, i in index[start:] if str(i) in table]
        return list(table.values())

    @staticmethod
    def _sort_key(record: dict[str, Any], name: str) -> Any:
        value = lookup(record, name)
        if name == "Id" or name.endswith("Ref"):
            value = value.get("value") if isinstance(value, dict) else value
            return (0, int(value)) if isinstance(value, str) and value.isdigit() else (1, str(value))
        if name.startswith("MetaData."):
            return parse_time(value) if isinstance(value, str) else 0.0
        if isinstance(value, str):
            return (0, value.lower())
        return (1, value if value is not None else 0)

    def changed_since(self, entity: str, since: float) -> list[dict[str, Any]]:
        """CDC for one entity: records changed at or after `since`, deleted ones as `status: Deleted`."""
        index = self.by_time[entity]
        start = bisect.bisect_left(index, (int(since), -1))
        out = [self.render(entity, self.records[entity][str(i)]) for _, i in index[start:]
               if str(i) in self.records[entity]]  # fmt: skip
        for record_id, when in self.deleted[entity].items():
            if when >= int(since):
                out.append({"domain": "QBO", "status": "Deleted", "Id": record_id,
                            "MetaData": {"LastUpdatedTime": stamp_text(when)}})  # fmt: skip
        return out

    # --- writing ---

    def create(self, body: dict[str, Any], entity: str) -> dict[str, Any]:
        """Create a record from a request body; Id, SyncToken 0 and MetaData are set here."""
        entity = self._entity(entity)
        self._check_props(entity, body)
        if "Id" in body:
            raise faults.unsupported("Id")
        record_id = str(self.next_id)
        now = int(self.clock())
        record: dict[str, Any] = {"domain": "QBO", "sparse": False, "Id": record_id, "SyncToken": "0",
                                  "MetaData": {"CreateTime": stamp_text(now), "LastUpdatedTime": stamp_text(now)}}
        getattr(self, f"_write_{entity.lower()}")(record, body, creating=True)
        self.next_id += 1
        self._store(entity, record, now)
        return self.render(entity, record)

    def update(self, body: dict[str, Any], entity: str) -> dict[str, Any]:
        """A full or sparse (`"sparse": true`) update; the SyncToken must be the current one (else 5010)."""
        entity = self._entity(entity)
        self._check_props(entity, body)
        record_id = str(body.get("Id", ""))
        current = self._current(entity, body)
        if current.get("status") == "Deleted" or not record_id:
            raise faults.not_found(entity, record_id)
        record = copy.deepcopy(current)
        if not body.get("sparse"):
            # A full update replaces the record: writable properties not sent are cleared.
            for prop in WRITABLE[entity] - set(body) - {"Active", "Type", "IncomeAccountRef", "CustomerRef"}:
                record.pop(prop, None)
        getattr(self, f"_write_{entity.lower()}")(record, body, creating=False)
        now = int(self.clock())
        record["SyncToken"] = str(int(current["SyncToken"]) + 1)
        record["MetaData"] = {**current["MetaData"], "LastUpdatedTime": stamp_text(now)}
        self._store(entity, record, now)
        return self.render(entity, record)

    def void_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /invoice?operation=void`: amounts become zero, `PrivateNote` says "Voided"; a paid (or
        partly paid) invoice is refused, as QBO refuses voiding a transaction with payments linked."""
        current = self._current("Invoice", body)
        if any(t.get("TxnType") == "Payment" for t in current.get("LinkedTxn", [])):
            raise faults.business("This transaction has payments applied to it; delete the payments first")
        record = copy.deepcopy(current)
        for line in record["Line"]:
            line["Amount"] = 0.0
            detail = line.get("SalesItemLineDetail")
            if isinstance(detail, dict):
                detail["Qty"] = 0
                detail["UnitPrice"] = 0
        record["TotalAmt"] = record["Balance"] = 0.0
        note = record.get("PrivateNote", "")
        record["PrivateNote"] = "Voided" if not note else f"Voided - {note}"
        now = int(self.clock())
        record["SyncToken"] = str(int(current["SyncToken"]) + 1)
        record["MetaData"] = {**current["MetaData"], "LastUpdatedTime": stamp_text(now)}
        self._store("Invoice", record, now)
        return self.render("Invoice", record)

    def void_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /payment?operation=update&include=void`: the payment stays, at zero, noted "Voided", and what it
        paid is owed again on its invoices."""
        current = self._current("Payment", body)
        record = copy.deepcopy(current)
        self._move_balances(record["Id"], self._applied_by(current), {})
        for line in record.get("Line", []):
            line["Amount"] = 0.0
        record["TotalAmt"] = record["UnappliedAmt"] = 0.0
        note = record.get("PrivateNote", "")
        record["PrivateNote"] = "Voided" if not note else f"Voided - {note}"
        now = int(self.clock())
        record["SyncToken"] = str(int(current["SyncToken"]) + 1)
        record["MetaData"] = {**current["MetaData"], "LastUpdatedTime": stamp_text(now)}
        self._store("Payment", record, now)
        return self.render("Payment", record)

    def delete(self, body: dict[str, Any], entity: str) -> dict[str, Any]:
        """`?operation=delete` of a transaction (Invoice, Payment); name-list entities are made inactive."""
        entity = self._entity(entity)
        if entity in NAME_FIELD:
            raise QboFault(faults.UNSUPPORTED_PROPERTY, "Operation Delete is not supported",
                           f"{entity} cannot be deleted: make it inactive (Active false)")  # fmt: skip
        current = self._current(entity, body)
        if entity == "Invoice" and any(t.get("TxnType") == "Payment" for t in current.get("LinkedTxn", [])):
            raise faults.business("This transaction has payments applied to it; delete the payments first")
        if entity == "Payment":
            self._unapply(current)
        record_id = current["Id"]
        del self.records[entity][record_id]
        self._unindex(entity, record_id)
        self.deleted[entity][record_id] = int(self.clock())
        return {"domain": "QBO", "status": "Deleted", "Id": record_id}

    # --- entity rules ---

    def _write_customer(self, record: dict[str, Any], body: dict[str, Any], *, creating: bool) -> None:
        for prop in WRITABLE["Customer"] & set(body):
            record[prop] = copy.deepcopy(body[prop])
        if "DisplayName" not in record or not str(record.get("DisplayName", "")).strip():
            parts = [record.get(p) for p in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
            derived = " ".join(str(p).strip() for p in parts if p)
            if not derived:
                raise faults.required("DisplayName")
            record["DisplayName"] = derived
        record["DisplayName"] = str(record["DisplayName"]).strip()
        if len(record["DisplayName"]) > 500:
            raise faults.unsupported("DisplayName")
        email = record.get("PrimaryEmailAddr")
        if email is not None and (not isinstance(email, dict) or "@" not in str(email.get("Address", "@"))):
            raise QboFault(faults.UNSUPPORTED_PROPERTY, "Invalid Email Address format",
                           "Email Address does not conform to the syntax rules of RFC 822", element="Email")
        record.setdefault("Active", True)
        record.setdefault("Job", False)
        record.setdefault("BillWithParent", False)
        record.setdefault("Taxable", False)
        record.setdefault("PrintOnCheckName", record["DisplayName"])
        record.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        record.setdefault("PreferredDeliveryMethod", "Print")
        record["FullyQualifiedName"] = record["DisplayName"]
        self._claim_name("Customer", record)

    def _write_item(self, record: dict[str, Any], body: dict[str, Any], *, creating: bool) -> None:
        for prop in WRITABLE["Item"] & set(body):
            record[prop] = copy.deepcopy(body[prop])
        if not str(record.get("Name", "")).strip():
            raise faults.required("Name")
        record["Name"] = str(record["Name"]).strip()
        record.setdefault("Type", "Service")
        if record["Type"] not in ("Service", "NonInventory", "Inventory"):
            raise faults.unsupported("Type")
        if record["Type"] != "Inventory":
            record.setdefault("IncomeAccountRef", dict(INCOME_ACCOUNT))
        if "UnitPrice" in record:
            record["UnitPrice"] = number(money(record["UnitPrice"], "UnitPrice"))
        record.setdefault("Active", True)
        record.setdefault("Taxable", False)
        record["FullyQualifiedName"] = record["Name"]
        self._claim_name("Item", record)

    def _write_invoice(self, record: dict[str, Any], body: dict[str, Any], *, creating: bool) -> None:
        if not creating and str(record.get("PrivateNote", "")).startswith("Voided") and body.get("Line"):
            raise faults.business("A voided transaction cannot be changed")
        for prop in WRITABLE["Invoice"] & set(body):
            record[prop] = copy.deepcopy(body[prop])
        customer = self._ref(record, "CustomerRef", "Customer")
        record["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        lines = record.get("Line")
        if not isinstance(lines, list) or not lines:
            raise faults.required("Line")
        sales = [self._sales_line(n, line) for n, line in enumerate(
            (x for x in lines if isinstance(x, dict) and x.get("DetailType") != "SubTotalLineDetail"), start=1)]
        total = sum((money(line["Amount"], "Line.Amount") for line in sales), ZERO)
        record["Line"] = [*sales, {"Amount": number(total), "DetailType": "SubTotalLineDetail",
                                   "SubTotalLineDetail": {}}]  # fmt: skip
        record["TxnDate"] = _date(record.get("TxnDate") or stamp_text(self.clock())[:10], "TxnDate")
        if record.get("DueDate"):
            record["DueDate"] = _date(record["DueDate"], "DueDate")
        else:
            record["DueDate"] = (date.fromisoformat(record["TxnDate"]) + timedelta(days=30)).isoformat()
        if not record.get("DocNumber"):
            record["DocNumber"] = str(self.next_doc)
            self.next_doc += 1
        if len(str(record["DocNumber"])) > 21:
            raise QboFault(faults.UNSUPPORTED_PROPERTY, "String length is either shorter or longer than "
                           "supported by specification", "DocNumber is longer than 21 characters",
                           element="DocNumber")  # fmt: skip
        # What payments settled stays settled: TotalAmt less Balance as stored (read-only, so still the old ones).
        stored = self.records["Invoice"].get(record["Id"])
        applied = ZERO if creating or stored is None else (
            money(stored.get("TotalAmt", 0), "TotalAmt") - money(stored.get("Balance", 0), "Balance"))
        if applied > total:
            raise faults.business(f"the invoice total {total} is less than the {applied} paid on it")
        record["TotalAmt"] = number(total)
        record["Balance"] = number(total - applied)
        record.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        record.setdefault("EmailStatus", "NotSet")
        record.setdefault("PrintStatus", "NeedToPrint")
        record.setdefault("LinkedTxn", [])

    def _sales_line(self, number_: int, line: dict[str, Any]) -> dict[str, Any]:
        if line.get("DetailType") not in ("SalesItemLineDetail", "DescriptionOnly"):
            raise faults.unsupported("Line.DetailType")
        out: dict[str, Any] = {"Id": str(number_), "LineNum": number_, "DetailType": line["DetailType"]}
        if line.get("Description"):
            out["Description"] = str(line["Description"])[:4000]
        if line["DetailType"] == "DescriptionOnly":
            out["Amount"] = 0.0
            out["DescriptionLineDetail"] = {}
            return out
        detail = line.get("SalesItemLineDetail")
        if not isinstance(detail, dict):
            raise faults.required("Line.SalesItemLineDetail")
        item_ref = detail.get("ItemRef") or {"value": "1"}
        item = self.records["Item"].get(str(item_ref.get("value") if isinstance(item_ref, dict) else ""))
        if item is None:
            raise QboFault(faults.INVALID_REFERENCE, "Invalid Reference Id",
                           f"Invalid Reference Id : Item assigned to this transaction has been deleted. "
                           f"Id={item_ref}", element="ItemRef")  # fmt: skip
        qty = money(detail.get("Qty", 1), "Qty")
        price = money(detail["UnitPrice"], "UnitPrice") if "UnitPrice" in detail else money(
            item.get("UnitPrice", 0), "UnitPrice")
        amount = money(line["Amount"], "Amount") if "Amount" in line else (qty * price).quantize(CENT)
        if "Amount" in line and "UnitPrice" in detail and (qty * price).quantize(CENT) != amount:
            raise faults.business(f"Amount {amount} is not equal to UnitPrice * Qty ({price} * {qty})")
        out["Amount"] = number(amount)
        out["SalesItemLineDetail"] = {"ItemRef": {"value": item["Id"], "name": item["Name"]},
                                      "UnitPrice": number(price), "Qty": number(qty)}  # fmt: skip
        return out

    def _write_payment(self, record: dict[str, Any], body: dict[str, Any], *, creating: bool) -> None:
        """Apply a payment to its invoices; checked in full before any invoice changes, so a refused write
        (an amount over a balance) leaves every invoice as it was."""
        before = {} if creating else self._applied_by(self.records["Payment"][record["Id"]])
        for prop in WRITABLE["Payment"] & set(body):
            record[prop] = copy.deepcopy(body[prop])
        customer = self._ref(record, "CustomerRef", "Customer")
        record["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        if "TotalAmt" not in record:
            raise faults.required("TotalAmt")
        total = money(record["TotalAmt"], "TotalAmt")
        out_lines = []
        wanted: dict[str, Decimal] = {}
        for line in record.get("Line") or []:
            amount = money(line.get("Amount", 0), "Line.Amount")
            linked = line.get("LinkedTxn") or []
            if not isinstance(linked, list) or len(linked) != 1 or linked[0].get("TxnType") != "Invoice":
                raise faults.unsupported("Line.LinkedTxn")
            invoice_id = str(linked[0].get("TxnId"))
            invoice = self.records["Invoice"].get(invoice_id)
            if invoice is None:
                raise faults.not_found("Invoice", invoice_id)
            if invoice["CustomerRef"]["value"] != customer["Id"]:
                raise faults.business(f"Invoice {invoice_id} belongs to another customer")
            wanted[invoice_id] = wanted.get(invoice_id, ZERO) + amount
            open_amount = money(invoice["Balance"], "Balance") + before.get(invoice_id, ZERO)
            if wanted[invoice_id] > open_amount:
                raise faults.business(f"the amount applied to invoice {invoice_id} exceeds its balance")
            out_lines.append({"Amount": number(amount), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]})
        applied = sum(wanted.values(), ZERO)
        if applied > total:
            raise faults.business("the amounts applied exceed the payment's total")
        record["Line"] = out_lines
        record["TotalAmt"] = number(total)
        record["UnappliedAmt"] = number(total - applied)
        record["TxnDate"] = _date(record.get("TxnDate") or stamp_text(self.clock())[:10], "TxnDate")
        record.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        record.setdefault("ProcessPayment", False)
        self._move_balances(record["Id"], before, wanted)

    @staticmethod
    def _applied_by(payment: dict[str, Any]) -> dict[str, Decimal]:
        """What a stored payment applies to each invoice."""
        applied: dict[str, Decimal] = {}
        for line in payment.get("Line", []):
            for linked in line.get("LinkedTxn", []):
                invoice_id = str(linked.get("TxnId"))
                applied[invoice_id] = applied.get(invoice_id, ZERO) + money(line["Amount"], "Amount")
        return applied

    def _move_balances(self, payment_id: str, before: dict[str, Decimal], after: dict[str, Decimal]) -> None:
        """Invoices' balances and links as a payment moves from applying `before` to applying `after`."""
        now = int(self.clock())
        for invoice_id in sorted(set(before) | set(after)):
            stored = self.records["Invoice"].get(invoice_id)
            if stored is None:
                continue
            invoice = copy.deepcopy(stored)
            balance = money(invoice["Balance"], "Balance") + before.get(invoice_id, ZERO) - after.get(invoice_id, ZERO)
            invoice["Balance"] = number(balance)
            links = [t for t in invoice.get("LinkedTxn", []) if t.get("TxnId") != payment_id]
            if invoice_id in after:
                links.append({"TxnId": payment_id, "TxnType": "Payment"})
            invoice["LinkedTxn"] = links
            self._touch("Invoice", invoice, now)

    def _unapply(self, payment: dict[str, Any]) -> None:
        """Give a deleted payment's applied amounts back to its invoices."""
        self._move_balances(payment["Id"], self._applied_by(payment), {})

    def _touch(self, entity: str, record: dict[str, Any], now: int) -> None:
        """A change the company makes itself (a payment moves an invoice's balance): new stamp and token."""
        record["SyncToken"] = str(int(record["SyncToken"]) + 1)
        record["MetaData"] = {**record["MetaData"], "LastUpdatedTime": stamp_text(now)}
        self._store(entity, record, now)

    # --- shared checks and indexes ---

    @staticmethod
    def _entity(name: str) -> str:
        """The entity a query or write names: case-sensitive, as QBO's query language is."""
        if name in ENTITIES:
            return name
        raise QueryError(f"Invalid query: unknown entity {name}", code=faults.INVALID_QUERY)

    @staticmethod
    def _queryable(entity: str) -> frozenset[str]:
        return WRITABLE[entity] | READ_ONLY[entity] | {"Id", "MetaData", "SyncToken"}

    def _check_props(self, entity: str, body: dict[str, Any]) -> None:
        if not isinstance(body, dict):
            raise faults.unsupported(entity)
        for prop in body:
            if prop not in XSD_PROPERTIES[entity] and prop not in ENVELOPE:
                raise faults.unsupported(prop)

    def _current(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """The record a write names by Id, after checking its SyncToken."""
        record_id = str(body.get("Id", ""))
        record = self.records[entity].get(record_id)
        if record is None:
            raise faults.not_found(entity, record_id)
        if "SyncToken" not in body:
            raise faults.required("SyncToken")
        if str(body["SyncToken"]) != record["SyncToken"]:
            raise faults.stale(entity, record_id)
        return record

    def _ref(self, record: dict[str, Any], prop: str, entity: str) -> dict[str, Any]:
        ref = record.get(prop)
        if not isinstance(ref, dict) or not ref.get("value"):
            raise faults.required(prop)
        found = self.records[entity].get(str(ref["value"]))
        if found is None:
            raise QboFault(faults.INVALID_REFERENCE, "Invalid Reference Id",
                           f"Invalid Reference Id : {entity} Id={ref['value']}", element=prop)  # fmt: skip
        return found

    @staticmethod
    def _fold(name: str) -> str:
        return " ".join(str(name).split()).lower()

    def _claim_name(self, entity: str, record: dict[str, Any]) -> None:
        """The unique name: refused with 6240 when another record holds it (compared regardless of case)."""
        key = self._fold(record[NAME_FIELD[entity]])
        holder = self.names[entity].get(key)
        if holder is not None and holder != record["Id"]:
            raise QboFault(faults.DUPLICATE_NAME, "Duplicate Name Exists Error",
                           f"The name supplied already exists. : Another {entity.lower()} is already using "
                           f"this name. Please use a different name. Id={holder}",
                           element=NAME_FIELD[entity])  # fmt: skip

    def _store(self, entity: str, record: dict[str, Any], now: int) -> None:
        record_id = record["Id"]
        old = self.records[entity].get(record_id)
        if entity in NAME_FIELD:
            field = NAME_FIELD[entity]
            if old is not None:
                self.names[entity].pop(self._fold(old[field]), None)
            self.names[entity][self._fold(record[field])] = record_id
        self._unindex(entity, record_id)
        self.records[entity][record_id] = record
        self.stamps[entity][record_id] = now
        bisect.insort(self.by_time[entity], (now, int(record_id)))

    def _unindex(self, entity: str, record_id: str) -> None:
        old_stamp = self.stamps[entity].pop(record_id, None)
        if old_stamp is not None:
            index = self.by_time[entity]
            at = bisect.bisect_left(index, (old_stamp, int(record_id)))
            if at < len(index) and index[at] == (old_stamp, int(record_id)):
                del index[at]


def utc_text(epoch: float) -> str:
    """The `time` of an answer (QBO sends it with the company's offset and milliseconds)."""
    return datetime.fromtimestamp(epoch, COMPANY_TZ).isoformat(timespec="milliseconds")


