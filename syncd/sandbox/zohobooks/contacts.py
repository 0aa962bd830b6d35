"""`/contacts`: customers with contact persons, addresses, custom fields, status and receivables."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from syncd.sandbox.zohobooks import payloads
from syncd.sandbox.zohobooks.context import BooksContext, answer
from syncd.sandbox.zohobooks.customfields import as_fields, check_unique, custom_fields_json, parse_custom_fields
from syncd.sandbox.zohobooks.entities import Address, Contact, ContactPerson
from syncd.sandbox.zohobooks.errors import DUPLICATE_VALUE, HAS_TRANSACTIONS, ZohoError, invalid
from syncd.sandbox.zohobooks.ledger import BooksLedger, unique_holders, upsert_holders
from syncd.sandbox.zohobooks.listing import list_request, modified_after, page_of
from syncd.sandbox.zohobooks.upsert import resolve_upsert

CURRENCY_ID = "460000000000097"  # the organisation's only currency, USD
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SORT_COLUMNS = (
    "contact_name", "first_name", "last_name", "email", "outstanding_receivable_amount",
    "created_time", "last_modified_time",
)  # fmt: skip
ADDRESS_PARTS = tuple(Address.model_fields)
PERSON_TEXT = ("salutation", "first_name", "last_name", "email", "phone", "mobile", "designation", "department")


def primary_person(contact: Contact) -> ContactPerson | None:
    """The primary contact person, if the contact has persons."""
    return next((p for p in contact.contact_persons if p.is_primary_contact), None)


def contact_json(ctx: BooksContext, contact: Contact, *, summary: bool = False) -> dict[str, Any]:
    """A contact as GET returns it; `summary` gives the shorter shape of list rows."""
    ledger = ctx.ledger
    primary = primary_person(contact)
    outstanding = ledger.outstanding_receivable(contact.contact_id)
    credits = ledger.unused_credits(contact.contact_id)
    base: dict[str, Any] = {
        "contact_id": contact.contact_id,
        "contact_name": contact.contact_name,
        "company_name": contact.company_name,
        "contact_type": contact.contact_type,
        "customer_sub_type": contact.customer_sub_type,
        "status": contact.status,
        "payment_terms": contact.payment_terms,
        "payment_terms_label": contact.payment_terms_label,
        "currency_id": CURRENCY_ID,
        "currency_code": contact.currency_code,
        "outstanding_receivable_amount": outstanding,
        "unused_credits_receivable_amount": credits,
        "first_name": primary.first_name if primary else "",
        "last_name": primary.last_name if primary else "",
        "email": primary.email if primary else "",
        "phone": primary.phone if primary else "",
        "mobile": primary.mobile if primary else "",
        "created_time": ctx.stamp(contact.created_time),
        "last_modified_time": ctx.stamp(contact.last_modified_time),
        **custom_fields_json(contact.custom),
    }
    if summary:
        return base
    has_transaction = _has_transactions(ledger, contact)
    return {
        **base,
        "has_transaction": has_transaction,
        "website": contact.website,
        "notes": contact.notes,
        "primary_contact_id": primary.contact_person_id if primary else "",
        "currency_symbol": "$",
        "outstanding_receivable_amount_bcy": outstanding,
        "unused_credits_receivable_amount_bcy": credits,
        "billing_address": contact.billing_address.model_dump(),
        "shipping_address": contact.shipping_address.model_dump(),
        "contact_persons": [p.model_dump() for p in contact.contact_persons],
    }


def _address(body: Mapping[str, Any], key: str, current: Address) -> Address:
    raw = body.get(key)
    if raw is None:
        return current
    if not isinstance(raw, Mapping):
        raise invalid(key)
    values = current.model_dump()
    for part in ADDRESS_PARTS:
        value = payloads.text(raw, part, max_length=500)
        if value is not None:
            values[part] = value
    return Address(**values)


def person_values(entry: Mapping[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`values` (a person's fields) with the text fields `entry` gives, checked; 400 for a bad one."""
    values = dict(values)
    for key in PERSON_TEXT:
        value = payloads.text(entry, key, max_length=100)
        if value is not None:
            values[key] = value
    if values.get("email") and not EMAIL.match(values["email"]):
        raise invalid("email")
    return values


def _persons(ctx: BooksContext, raw: Any, current: list[ContactPerson]) -> list[ContactPerson]:
    """The new list of persons: ones with a known contact_person_id are updated, others added, the rest dropped."""
    if not isinstance(raw, list):
        raise invalid("contact_persons")
    known = {p.contact_person_id: p for p in current}
    persons: list[ContactPerson] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise invalid("contact_persons")
        person_id = payloads.identifier(entry, "contact_person_id")
        if person_id is not None and person_id not in known:
            raise invalid("contact_person_id")
        values: dict[str, Any] = (
            known[person_id].model_dump() if person_id else {"contact_person_id": ctx.ledger.new_id()}
        )
        values = person_values(entry, values)
        values["is_primary_contact"] = bool(payloads.flag(entry, "is_primary_contact"))
        persons.append(ContactPerson(**values))
    # Exactly one primary: the first flagged one, else the first person.
    flagged = [p for p in persons if p.is_primary_contact]
    chosen = flagged[0] if flagged else (persons[0] if persons else None)
    for person in persons:
        person.is_primary_contact = person is chosen
    return persons


def _apply_input(ctx: BooksContext, contact: Contact, body: Mapping[str, Any], *, creating: bool) -> None:
    """Validate a create/update body completely, then write it onto `contact`."""
    name = payloads.text(body, "contact_name", required=creating, max_length=200)
    if name is not None:
        name = name.strip()
        if not name:
            raise invalid("contact_name")
        clash = [
            c for c in ctx.ledger.contact_index.find("name", name.lower())
            if c.contact_id != contact.contact_id and c.contact_name.lower() == name.lower()
        ]  # fmt: skip
        if clash:
            raise ZohoError(400, DUPLICATE_VALUE, "The contact name already exists. Please specify a different name.")
    contact_type = payloads.text(body, "contact_type")
    if contact_type is not None and contact_type not in ("customer", "vendor"):
        raise invalid("contact_type")
    sub_type = payloads.text(body, "customer_sub_type")
    if sub_type is not None and sub_type not in ("business", "individual"):
        raise invalid("customer_sub_type")
    terms = payloads.integer(body, "payment_terms")
    billing = _address(body, "billing_address", contact.billing_address)
    shipping = _address(body, "shipping_address", contact.shipping_address)
    persons = (
        _persons(ctx, body["contact_persons"], contact.contact_persons)
        if body.get("contact_persons") is not None
        else contact.contact_persons
    )
    custom = dict(contact.custom)
    if body.get("custom_fields") is not None:
        custom.update(parse_custom_fields(body["custom_fields"]))
    check_unique(
        custom,
        (c.custom for c in unique_holders(ctx.ledger.contact_index, custom) if c.contact_id != contact.contact_id),
        "contact",
    )
    texts = {key: payloads.text(body, key, max_length=2000) for key in ("company_name", "website", "notes")}
    label = payloads.text(body, "payment_terms_label")
    # Everything is valid: write.
    if name is not None:
        contact.contact_name = name
    if contact_type is not None:
        contact.contact_type = contact_type  # type: ignore[assignment]
    if sub_type is not None:
        contact.customer_sub_type = sub_type  # type: ignore[assignment]
    if terms is not None:
        contact.payment_terms = terms
        contact.payment_terms_label = label or ("Due on Receipt" if terms == 0 else f"Net {terms}")
    for key, value in texts.items():
        if value is not None:
            setattr(contact, key, value)
    contact.billing_address = billing
    contact.shipping_address = shipping
    contact.contact_persons = persons
    contact.custom = custom
    contact.last_modified_time = ctx.now()
    ctx.ledger.contact_index.refile(contact.contact_id, contact)


class ContactRoutes:
    """Handlers of the contacts module."""

    def __init__(self, ctx: BooksContext) -> None:
        self.ctx = ctx

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under the Books prefix."""
        app.add_routes(
            [
                web.post(f"{prefix}/contacts", self.create),
                web.get(f"{prefix}/contacts", self.list),
                web.put(f"{prefix}/contacts", self.upsert),
                web.get(f"{prefix}/contacts/{{contact_id}}", self.get),
                web.put(f"{prefix}/contacts/{{contact_id}}", self.update),
                web.delete(f"{prefix}/contacts/{{contact_id}}", self.delete),
                web.post(f"{prefix}/contacts/{{contact_id}}/active", self.mark_active),
                web.post(f"{prefix}/contacts/{{contact_id}}/inactive", self.mark_inactive),
            ]
        )

    def _new_contact(self) -> Contact:
        now = self.ctx.now()
        return Contact(contact_id="", contact_name="", created_time=now, last_modified_time=now)

    def create_contact(self, body: Mapping[str, Any], custom: dict[str, str] | None = None) -> Contact:
        """Validate and add a contact (also used by seeding); notifies `contact created`."""
        return self._add(body, custom)[0]

    def _add(self, body: Mapping[str, Any], custom: dict[str, str] | None = None) -> tuple[Contact, dict[str, Any]]:
        """`create_contact`, with the contact as JSON (built once, for its webhook and the answer alike)."""
        contact = self._new_contact()
        if custom:
            given = body.get("custom_fields") or []
            if not isinstance(given, list):
                raise invalid("custom_fields")
            body = {**body, "custom_fields": [*given, *as_fields(custom)]}
        _apply_input(self.ctx, contact, body, creating=True)
        contact.contact_id = self.ctx.ledger.new_id()
        self.ctx.ledger.contacts[contact.contact_id] = contact
        payload = contact_json(self.ctx, contact)
        self.ctx.notify("contact", "created", payload)
        return contact, payload

    async def create(self, request: web.Request) -> web.Response:
        """POST /contacts → 201."""
        _, payload = self._add(await payloads.read_body(request))
        return answer({"code": 0, "message": "The contact has been added.", "contact": payload}, 201)

    def _update(self, contact: Contact, body: Mapping[str, Any]) -> web.Response:
        _apply_input(self.ctx, contact, body, creating=False)
        payload = contact_json(self.ctx, contact)
        self.ctx.notify("contact", "updated", payload)
        return answer({"code": 0, "message": "Contact has been updated successfully", "contact": payload})

    async def update(self, request: web.Request) -> web.Response:
        """PUT /contacts/{contact_id}."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        return self._update(contact, await payloads.read_body(request))

    async def upsert(self, request: web.Request) -> web.Response:
        """PUT /contacts with X-Unique-Identifier-Key/-Value (and X-Upsert: true to create)."""
        holders = upsert_holders(self.ctx.ledger.contact_index, lambda c: c.contact_id)
        target = resolve_upsert(request, holders, "Contact")
        body = await payloads.read_body(request)
        if target.existing_id is not None:
            return self._update(self.ctx.ledger.contact(target.existing_id), body)
        _, payload = self._add(body, {target.key: target.value})
        return answer({"code": 0, "message": "The contact has been added.", "contact": payload}, 201)

    async def get(self, request: web.Request) -> web.Response:
        """GET /contacts/{contact_id}."""
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        return answer({"code": 0, "message": "success", "contact": contact_json(self.ctx, contact)})

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /contacts/{contact_id}; refused while invoices or payments refer to it."""
        ledger = self.ctx.ledger
        contact = ledger.contact(request.match_info["contact_id"])
        if _has_transactions(ledger, contact):
            raise ZohoError(
                400, HAS_TRANSACTIONS, "The contact cannot be deleted as it has transactions associated with it."
            )
        payload = contact_json(self.ctx, contact)
        contact.deleted = True
        contact.last_modified_time = self.ctx.now()
        self.ctx.notify("contact", "deleted", payload)
        return answer({"code": 0, "message": "The contact has been deleted."})

    async def _mark(self, request: web.Request, status: str) -> web.Response:
        contact = self.ctx.ledger.contact(request.match_info["contact_id"])
        contact.status = status  # type: ignore[assignment]
        contact.last_modified_time = self.ctx.now()
        self.ctx.notify("contact", "updated", contact_json(self.ctx, contact))
        return answer({"code": 0, "message": f"The contact has been marked as {status}."})

    async def mark_active(self, request: web.Request) -> web.Response:
        """POST /contacts/{contact_id}/active."""
        return await self._mark(request, "active")

    async def mark_inactive(self, request: web.Request) -> web.Response:
        """POST /contacts/{contact_id}/inactive."""
        return await self._mark(request, "inactive")

    async def list(self, request: web.Request) -> web.Response:
        """GET /contacts with name/email/status/last_modified_time filters, sorting and paging."""
        ctx = self.ctx
        listing = list_request(request, sort_columns=SORT_COLUMNS, default_sort="contact_name")
        query = request.query
        rows = _candidates(ctx.ledger, query)
        rows = _filter_text(rows, query, "contact_name", lambda c: [c.contact_name])
        rows = _filter_text(rows, query, "company_name", lambda c: [c.company_name])
        rows = _filter_text(rows, query, "email", lambda c: [p.email for p in c.contact_persons])
        rows = _filter_text(rows, query, "first_name", lambda c: [p.first_name for p in c.contact_persons])
        rows = _filter_text(rows, query, "last_name", lambda c: [p.last_name for p in c.contact_persons])
        if "contact_type" in query:
            rows = [c for c in rows if c.contact_type == query["contact_type"]]
        status_filter = query.get("filter_by", "Status.All")
        wanted = {"Status.All": None, "Status.Active": "active", "Status.Inactive": "inactive"}
        if status_filter not in wanted:
            raise invalid("filter_by")
        if wanted[status_filter] is not None:
            rows = [c for c in rows if c.status == wanted[status_filter]]
        if "search_text" in query:
            needle = query["search_text"].lower()
            rows = [
                c for c in rows
                if needle in c.contact_name.lower() or needle in c.company_name.lower()
                or any(needle in p.email.lower() for p in c.contact_persons)
            ]  # fmt: skip
        after = modified_after(request)
        if after is not None:
            rows = [c for c in rows if c.last_modified_time > after]
        page, context = page_of(
            rows,
            listing,
            key=_sort_key(ctx, listing.sort_column),
            render=lambda c: contact_json(ctx, c, summary=True),
            report_name="Contacts",
            applied_filter=status_filter,
        )
        return answer({"code": 0, "message": "success", "contacts": page, "page_context": context})


def _has_transactions(ledger: BooksLedger, contact: Contact) -> bool:
    return bool(ledger.invoices_of_customer(contact.contact_id) or ledger.payments_of_customer(contact.contact_id))


def _candidates(ledger: BooksLedger, query: Mapping[str, str]) -> list[Contact]:
    """The live contacts an exact name or e-mail filter can match (all live contacts without one), in creation
    order; the filters themselves are applied to them afterwards, as to all."""
    if "email" in query:
        return ledger.contact_index.find("email", query["email"].lower())
    if "contact_name" in query:
        return ledger.contact_index.find("name", query["contact_name"].lower())
    return ledger.live_contacts()


def _sort_key(ctx: BooksContext, column: str) -> Callable[[Contact], Any]:
    """The value of a sort column as the list row shows it (text lower-cased, times as formatted)."""
    if column in ("created_time", "last_modified_time"):
        return lambda c: ctx.stamp(getattr(c, column))
    if column == "outstanding_receivable_amount":
        return lambda c: ctx.ledger.outstanding_receivable(c.contact_id)
    if column == "contact_name":
        return lambda c: c.contact_name.lower()

    def of_primary(contact: Contact) -> str:
        primary = primary_person(contact)
        return getattr(primary, column).lower() if primary else ""

    return of_primary


def _filter_text(rows: list[Contact], query: Mapping[str, str], field: str, values: Any) -> list[Contact]:
    """Zoho's `<field>`, `<field>_startswith` and `<field>_contains` filters, case-insensitive."""
    for suffix, test in (
        ("", lambda have, want: have == want),
        ("_startswith", lambda have, want: have.startswith(want)),
        ("_contains", lambda have, want: want in have),
    ):
        wanted = query.get(field + suffix)
        if wanted is not None:
            needle = wanted.lower()
            rows = [r for r in rows if any(test(v.lower(), needle) for v in values(r))]
    return rows
