"""The Accounting API routes for Contacts, Invoices, Payments and Items under `/api.xro/2.0`.

- `GET /{Collection}`: `If-Modified-Since` (records modified after it), `where`, `order` (`Field [ASC|DESC]`),
  `page` with `pageSize` (default 100, at most 1000), `IDs`, `includeArchived` (contacts), `summaryOnly`,
  `searchTerm` (contacts, invoices), `Statuses`/`ContactIDs`/`InvoiceNumbers` (invoices).
  Invoices carry their `LineItems` only in paged lists (and by id), as Xero documents.
- `GET /{Collection}/{id}` (a contact also by `ContactNumber`, an invoice by `InvoiceNumber`); 404 in plain text.
- `PUT /{Collection}` creates, `POST /{Collection}` creates or updates (by id or number/code), `POST
  /{Collection}/{id}` updates one. Bodies are `{"Collection": [...]}` (a bare element is taken too).
  `summarizeErrors=false` answers 200 with each element, the refused ones carrying `ValidationErrors`;
  otherwise one refused element refuses the whole batch with a 400 `ValidationException` and nothing is saved.
- `Idempotency-Key` (≤ 128 characters) on a write: a second request with the key gets the first answer again.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from syncd.sandbox.xero import where
from syncd.sandbox.xero.books import CONTACTS, INVOICES, ITEMS, KINDS, PAYMENTS, Kind, Outcome, XeroBooks, render
from syncd.sandbox.xero.wire import json_response, ms_date, not_found, parse_stamp, validation_error

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_KEY = 128
MAX_REPLAYS = 50_000
# The fields `searchTerm` looks in (case-insensitively), as the spec describes it per list.
SEARCHED = {CONTACTS: ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress"),
            INVOICES: ("InvoiceNumber", "Reference")}
WRITERS: dict[str, Callable[[XeroBooks, Mapping[str, Any], bool], Outcome]] = {
    "Contacts": lambda b, e, c: b.write_contact(e, create_only=c),
    "Invoices": lambda b, e, c: b.write_invoice(e, create_only=c),
    "Payments": lambda b, e, c: b.write_payment(e, create_only=c),
    "Items": lambda b, e, c: b.write_item(e, create_only=c),
}


def _bad_request(message: str) -> web.Response:
    return validation_error([{"ValidationErrors": [{"Message": message}]}])


@dataclass
class AccountingRoutes:
    """The four collections over one organisation's books."""

    books: Callable[[], XeroBooks]
    now_ms: Callable[[], int]
    after_write: Callable[[], None]
    replays: dict[str, tuple[int, str]] = field(default_factory=dict)  # Idempotency-Key -> (status, body)

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes of every collection."""
        for collection in KINDS:
            app.router.add_get(f"{prefix}/{collection}", self.list_records)
            app.router.add_put(f"{prefix}/{collection}", self.put_records)
            app.router.add_post(f"{prefix}/{collection}", self.post_records)
            app.router.add_get(f"{prefix}/{collection}/{{id}}", self.get_record)
            app.router.add_post(f"{prefix}/{collection}/{{id}}", self.post_record)
            app.router.add_get(f"{prefix}/{collection}/{{id}}/History", self.get_history)
            app.router.add_put(f"{prefix}/{collection}/{{id}}/History", self.put_history)

    @staticmethod
    def _kind(request: web.Request) -> Kind:
        segments = request.path.rstrip("/").split("/")
        collection = segments[-1] if segments[-1] in KINDS else segments[-2]
        return KINDS[collection]

    def _envelope(self, kind: Kind, records: list[dict[str, Any]], extra: Mapping[str, Any] | None = None) -> dict[
            str, Any]:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "syncd sandbox",
                "DateTimeUTC": ms_date(self.now_ms()), **(extra or {}), kind.collection: records}  # fmt: skip

    # --- reads ---

    async def list_records(self, request: web.Request) -> web.Response:
        """A list, filtered, ordered and paged."""
        kind = self._kind(request)
        books = self.books()
        query = request.query
        since_ms: int | None = None
        if "If-Modified-Since" in request.headers:
            seconds = parse_stamp(request.headers["If-Modified-Since"])
            if seconds is None:
                return _bad_request("If-Modified-Since is not a valid date")
            since_ms = int(seconds * 1000)
        try:
            groups = where.parse(query["where"]) if query.get("where") else []
        except where.WhereError as exc:
            return _bad_request(str(exc))
        records = self._candidates(books, kind, groups, since_ms, query)
        if groups:
            records = [r for r in records if where.matches(groups, r)]
        records = _by_lists(kind, records, query)
        if query.get("searchTerm") and kind in SEARCHED:
            term = query["searchTerm"].lower()
            records = [r for r in records if any(term in str(r.get(f) or "").lower() for f in SEARCHED[kind])]
        records = self._ordered(records, query.get("order"))
        paged = "page" in query and kind is not ITEMS
        extra: dict[str, Any] = {}
        if paged:
            try:
                page = max(1, int(query["page"]))
                size = min(MAX_PAGE, max(1, int(query.get("pageSize", DEFAULT_PAGE))))
            except ValueError:
                return _bad_request("page and pageSize must be whole numbers")
            count = len(records)
            records = records[(page - 1) * size : page * size]
            extra["pagination"] = {"page": page, "pageSize": size, "pageCount": -(-count // size), "itemCount": count}
        lines = paged and query.get("summaryOnly", "false").lower() != "true"
        body = self._envelope(kind, [render(kind, r, lines=lines) for r in records], extra)
        return json_response(body)

    @staticmethod
    def _candidates(books: XeroBooks, kind: Kind, groups: list[list[where.Condition]], since_ms: int | None,
                    query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Records the filter may keep: through an index for an exact lookup, else by stamp order."""
        equal = where.equalities(groups)
        indexed: list[str] | None = None
        if kind is CONTACTS and isinstance(equal.get("Name"), str):
            indexed = _present(books.contact_names.get(equal["Name"].strip().lower()))
        elif kind is CONTACTS and isinstance(equal.get("EmailAddress"), str):
            indexed = sorted(books.contact_emails.get(equal["EmailAddress"].lower(), ()))
        elif kind is CONTACTS and isinstance(equal.get("ContactNumber"), str):
            indexed = _present(books.contact_numbers.get(equal["ContactNumber"]))
        elif kind is INVOICES and isinstance(equal.get("InvoiceNumber"), str):
            indexed = _present(books.invoice_numbers.get(equal["InvoiceNumber"].lower()))
        elif kind is PAYMENTS and isinstance(equal.get("Invoice.InvoiceID"), str):
            indexed = list(books.payments_of.get(equal["Invoice.InvoiceID"].lower(), []))
        if query.get("IDs"):
            wanted = [i.strip().lower() for i in query["IDs"].split(",") if i.strip()]
            indexed = wanted if indexed is None else [i for i in indexed if i in wanted]
        if indexed is not None:
            found = [books.get(kind, i) for i in indexed]
            records = [r for r in found if r is not None]
            if since_ms is not None:
                records = [r for r in records if int(r["UpdatedDateUTC"]) > since_ms]
        else:
            records = list(books.modified_after(kind, since_ms))
        if kind is CONTACTS and query.get("includeArchived", "false").lower() != "true":
            records = [r for r in records if r.get("ContactStatus") != "ARCHIVED"]
        return records

    @staticmethod
    def _ordered(records: list[dict[str, Any]], order: str | None) -> list[dict[str, Any]]:
        if not order:
            return records  # stamp order, oldest first
        keys = []
        for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
            name, _, direction = part.partition(" ")
            keys.append((name, direction.strip().upper() == "DESC"))
        for name, descending in keys:
            records = sorted(records, key=lambda r, n=name: _sort_key(where.lookup(r, n)), reverse=descending)  # type: ignore[misc]
        return records

    async def get_record(self, request: web.Request) -> web.Response:
        """One record by id (or number)."""
        kind = self._kind(request)
        books = self.books()
        key = request.match_info["id"]
        record = books.get(kind, key)
        if record is None and kind is CONTACTS and key in books.contact_numbers:
            record = books.get(kind, books.contact_numbers[key])
        if record is None and kind is INVOICES and key.lower() in books.invoice_numbers:
            record = books.get(kind, books.invoice_numbers[key.lower()])
        if record is None:
            return not_found()
        return json_response(self._envelope(kind, [render(kind, record)]))

    async def get_history(self, request: web.Request) -> web.Response:
        """A record's history and notes, oldest first."""
        kind = KINDS[request.path.split("/")[-3]]
        record = self.books().get(kind, request.match_info["id"])
        if record is None:
            return not_found()
        rows = [{**h, "DateUTC": ms_date(int(h["DateUTC"]))} for h in self.books().history.get(record[kind.id_key], [])]
        return json_response({"HistoryRecords": rows})

    async def put_history(self, request: web.Request) -> web.Response:
        """Add notes to a record's history (`{"HistoryRecords": [{"Details": "..."}]}`)."""
        kind = KINDS[request.path.split("/")[-3]]
        books = self.books()
        record = books.get(kind, request.match_info["id"])
        if record is None:
            return not_found()
        try:
            raw = json.loads(await request.text() or "{}")
        except json.JSONDecodeError:
            return _bad_request("The request body is not valid JSON")
        notes = raw.get("HistoryRecords") if isinstance(raw, dict) else None
        if not isinstance(notes, list) or not notes or not all(
            isinstance(n, dict) and isinstance(n.get("Details"), str) and n["Details"].strip() for n in notes
        ):
            return _bad_request("HistoryRecords must be a list of notes, each with Details")
        made = [books.note(record[kind.id_key], "Note", n["Details"][:2500]) for n in notes]
        return json_response({"HistoryRecords": [{**h, "DateUTC": ms_date(int(h["DateUTC"]))} for h in made]})

    # --- writes ---

    async def put_records(self, request: web.Request) -> web.Response:
        """Create every element."""
        return await self._write(request, create_only=True)

    async def post_records(self, request: web.Request) -> web.Response:
        """Create or update every element."""
        return await self._write(request, create_only=False)

    async def post_record(self, request: web.Request) -> web.Response:
        """Update the record the path names."""
        kind = self._kind(request)
        if self.books().get(kind, request.match_info["id"]) is None:
            return not_found()
        return await self._write(request, create_only=False, record_id=request.match_info["id"].lower())

    async def _write(self, request: web.Request, *, create_only: bool, record_id: str | None = None
                     ) -> web.Response:
        kind = self._kind(request)
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > MAX_KEY:
            return _bad_request(f"Idempotency-Key must be at most {MAX_KEY} characters")
        if key is not None and key in self.replays:
            status, text = self.replays[key]
            return web.Response(status=status, text=text, content_type="application/json", charset="utf-8")
        try:
            raw = json.loads(await request.text() or "{}")
        except json.JSONDecodeError:
            return _bad_request("The request body is not valid JSON")
        elements = raw.get(kind.collection) if isinstance(raw, dict) and kind.collection in raw else [raw]
        if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements) or not elements:
            return _bad_request(f"The body must hold {kind.collection} as a list of objects")
        if record_id is not None:
            elements = [{**elements[0], kind.id_key: record_id}]
        summarize = request.query.get("summarizeErrors", "true").lower() != "false"
        response = self._apply(kind, elements, create_only, summarize)
        if key is not None and response.status < 500:
            self.replays[key] = (response.status, str(response.text))
            while len(self.replays) > MAX_REPLAYS:  # the oldest keys are forgotten first, as a store with a TTL
                self.replays.pop(next(iter(self.replays)))
        return response

    def _apply(self, kind: Kind, elements: list[dict[str, Any]], create_only: bool, summarize: bool
               ) -> web.Response:
        books = self.books()
        writer = WRITERS[kind.collection]
        if summarize and len(elements) > 1:
            # All or nothing: try the batch on a copy first.
            trial = XeroBooks(rng=random.Random(0), now_ms=books.now_ms, base_currency=books.base_currency)
            trial.load(books.dump())
            refused = [o for o in (writer(trial, e, create_only) for e in elements) if o.errors]
            if refused:
                return validation_error([_refused(o) for o in refused])
        outcomes = [writer(books, e, create_only) for e in elements]
        self.after_write()
        if summarize and outcomes[0].errors:
            return validation_error([_refused(outcomes[0])])
        answered = []
        for outcome in outcomes:
            if outcome.errors:
                answered.append(_refused(outcome))
            else:
                assert outcome.record is not None
                shown = render(kind, outcome.record)
                if not summarize:
                    shown["StatusAttributeString"] = "OK"
                answered.append(shown)
        return json_response(self._envelope(kind, answered))


def _refused(outcome: Outcome) -> dict[str, Any]:
    return {**outcome.submitted, "StatusAttributeString": "ERROR", "HasValidationErrors": True,
            "ValidationErrors": [{"Message": m} for m in outcome.errors]}  # fmt: skip


def _by_lists(kind: Kind, records: list[dict[str, Any]], query: Mapping[str, str]) -> list[dict[str, Any]]:
    """The invoice list's own filters: `Statuses`, `ContactIDs`, `InvoiceNumbers` (comma-separated)."""
    if kind is not INVOICES:
        return records
    filters = (("Statuses", "Status"), ("ContactIDs", "Contact.ContactID"), ("InvoiceNumbers", "InvoiceNumber"))
    for name, path in filters:
        if query.get(name):
            wanted = {v.strip().lower() for v in query[name].split(",") if v.strip()}
            records = [r for r in records if str(where.lookup(r, path) or "").lower() in wanted]
    return records


def _present(record_id: str | None) -> list[str]:
    return [record_id] if record_id else []


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.lower())
    return (2, value)
