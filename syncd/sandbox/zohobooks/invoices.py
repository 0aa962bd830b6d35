"""`/invoices`: line items and totals, derived statuses, status changes, filters and the payments on an invoice."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from syncd.sandbox.zohobooks import payloads
from syncd.sandbox.zohobooks.context import BooksContext, answer
from syncd.sandbox.zohobooks.customfields import as_fields, check_unique, custom_fields_json, parse_custom_fields
from syncd.sandbox.zohobooks.entities import Invoice, InvoiceLine
from syncd.sandbox.zohobooks.errors import DUPLICATE_VALUE, ZohoError, bad_state, invalid, mandatory
from syncd.sandbox.zohobooks.ledger import BooksLedger, invoice_status, unique_holders, upsert_holders
from syncd.sandbox.zohobooks.listing import list_request, modified_after, page_of
from syncd.sandbox.zohobooks.money import ZERO, parse_decimal, round_money
from syncd.sandbox.zohobooks.timestamps import add_days
from syncd.sandbox.zohobooks.upsert import resolve_upsert

CURRENCY_ID = "460000000000097"
SORT_COLUMNS = (
    "customer_name", "invoice_number", "date", "due_date", "total", "balance", "created_time",
    "last_modified_time",
)  # fmt: skip
STATUS_FILTERS = {
    "Status.All": None, "Status.Sent": {"sent"}, "Status.Draft": {"draft"}, "Status.OverDue": {"overdue"},
    "Status.Paid": {"paid"}, "Status.Void": {"void"}, "Status.Unpaid": {"sent", "overdue", "partially_paid"},
    "Status.PartiallyPaid": {"partially_paid"}, "Status.Viewed": set(),
}  # fmt: skip
STATUS_VALUES = {
    "sent": {"sent"}, "draft": {"draft"}, "overdue": {"overdue"}, "paid": {"paid"}, "void": {"void"},
    "unpaid": {"sent", "overdue", "partially_paid"}, "partially_paid": {"partially_paid"}, "viewed": set(),
}  # fmt: skip


def line_json(line: InvoiceLine) -> dict[str, Any]:
    """One line item as GET /invoices/{id} returns it."""
    return {
        "line_item_id": line.line_item_id,
        "item_id": line.item_id,
        "name": line.name,
        "description": line.description,
        "item_order": line.item_order,
        "bcy_rate": line.rate,
        "rate": line.rate,
        "quantity": line.quantity,
        "unit": line.unit,
        "discount_amount": line.discount_amount,
        "discount": line.discount,
        "item_total": line.item_total,
    }


def invoice_json(ctx: BooksContext, invoice: Invoice, *, summary: bool = False) -> dict[str, Any]:
    """An invoice as GET returns it; `summary` is the list row shape, which has no line items."""
    customer = ctx.ledger.contacts.get(invoice.customer_id)
    status = invoice_status(invoice, ctx.today())
    days = (invoice.due_date - ctx.today()).days
    base: dict[str, Any] = {
        "invoice_id": invoice.invoice_id,
        "invoice_number": invoice.invoice_number,
        "status": status,
        "date": invoice.date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "customer_id": invoice.customer_id,
        "customer_name": customer.contact_name if customer else "",
        "reference_number": invoice.reference_number,
        "currency_id": CURRENCY_ID,
        "currency_code": invoice.currency_code,
        "exchange_rate": invoice.exchange_rate,
        "total": invoice.total,
        "balance": invoice.balance,
        "adjustment": invoice.adjustment,
        "write_off_amount": ZERO,
        "is_emailed": False,
        "is_viewed_by_client": False,
        "has_attachment": False,
        "reminders_sent": 0,
        "last_payment_date": invoice.last_payment_date.isoformat() if invoice.last_payment_date else "",
        "created_time": ctx.stamp(invoice.created_time),
        "last_modified_time": ctx.stamp(invoice.last_modified_time),
        **custom_fields_json(invoice.custom),
    }
    if summary:
        base["due_days"] = f"Due in {days} day(s)" if days >= 0 else f"Overdue by {-days} day(s)"
        return base
    return {
        **base,
        "payment_terms": invoice.payment_terms,
        "payment_terms_label": invoice.payment_terms_label,
        "discount": ZERO,
        "is_discount_before_tax": True,
        "discount_type": "item_level",
        "is_inclusive_tax": False,
        "line_items": [line_json(line) for line in invoice.line_items],
        "adjustment_description": invoice.adjustment_description,
        "sub_total": invoice.sub_total,
        "tax_total": ZERO,
        "payment_made": invoice.payment_made,
        "credits_applied": ZERO,
        "allow_partial_payments": True,
        "price_precision": 2,
        "billing_address": _invoice_address(ctx, invoice, "billing_address"),
        "shipping_address": _invoice_address(ctx, invoice, "shipping_address"),
        "notes": invoice.notes,
        "terms": invoice.terms,
        "invoice_url": f"https://books.zoho.com/SecurePayment?CInvoiceID={invoice.invoice_id}",
    }


def _invoice_address(ctx: BooksContext, invoice: Invoice, key: str) -> dict[str, str]:
    customer = ctx.ledger.contacts.get(invoice.customer_id)
    if customer is None:
        return {}
    address = getattr(customer, key).model_dump()
    return {k: address[k] for k in ("address", "street2", "city", "state", "zip", "country", "fax")}


def _lines(ctx: BooksContext, raw: Any, current: list[InvoiceLine]) -> list[InvoiceLine]:
    """Parse `line_items`; a known line_item_id keeps its line's ID, others get new ones."""
    if not isinstance(raw, list) or not raw:
        raise mandatory("line_items")
    known = {line.line_item_id: line for line in current}
    lines: list[InvoiceLine] = []
    for order, entry in enumerate(raw, start=1):
        if not isinstance(entry, Mapping):
            raise invalid("line_items")
        line_id = payloads.identifier(entry, "line_item_id")
        if line_id is not None and line_id not in known:
            raise invalid("line_item_id")
        item_id = payloads.identifier(entry, "item_id")
        item = ctx.ledger.item(item_id) if item_id else None
        name = payloads.text(entry, "name", max_length=255)
        if name is None:
            name = item.name if item else (known[line_id].name if line_id else None)
        description = payloads.text(entry, "description", max_length=2000) or ""
        if not name and not description:
            raise ZohoError(400, 11, "Please enter an item name or description for each line item.")
        rate = payloads.amount(entry, "rate", minimum=ZERO)
        if rate is None:
            rate = item.rate if item else (known[line_id].rate if line_id else None)
        if rate is None:
            raise mandatory("rate")
        quantity = payloads.amount(entry, "quantity", minimum=ZERO)
        quantity = Decimal(1) if quantity is None else quantity
        if quantity == ZERO:
            raise invalid("quantity")
        gross = rate * quantity
        discount, is_percent, discount_amount = _discount(entry.get("discount"), gross)
        lines.append(
            InvoiceLine(
                line_item_id=line_id or ctx.ledger.new_id(),
                item_id=item_id or "",
                name=name or "",
                description=description,
                item_order=order,
                rate=rate,
                quantity=quantity,
                unit=payloads.text(entry, "unit", max_length=100) or (item.unit if item else ""),
                discount=discount,
                discount_is_percent=is_percent,
                discount_amount=discount_amount,
                item_total=round_money(gross - discount_amount),
            )
        )
    return lines


def _discount(raw: Any, gross: Decimal) -> tuple[Decimal, bool, Decimal]:
    """A line discount: an amount (`190`) or a percentage (`"12.5%"`); returns (value, is_percent, amount)."""
    if raw is None or raw == "":
        return ZERO, False, ZERO
    is_percent = isinstance(raw, str) and raw.strip().endswith("%")
    value = parse_decimal(raw.strip().rstrip("%") if isinstance(raw, str) else raw)
    if value is None or value < ZERO or (is_percent and value > 100):
        raise invalid("discount")
    amount = round_money(gross * value / 100) if is_percent else value
    if amount > gross:
        raise invalid("discount")
    return value, is_percent, amount


def _apply_input(ctx: BooksContext, invoice: Invoice, body: Mapping[str, Any], *, creating: bool) -> None:
    """Validate a create/update body completely, then write it and recompute the totals."""
    ledger = ctx.ledger
    customer_id = payloads.identifier(body, "customer_id", required=creating)
    if customer_id is not None:
        customer = ledger.contact(customer_id)
        if customer.contact_type != "customer":
            raise invalid("customer_id")
        if not creating and customer_id != invoice.customer_id and invoice.payment_made > ZERO:
            raise bad_state("The customer cannot be changed on an invoice that has payments.")
    lines = (
        _lines(ctx, body.get("line_items"), invoice.line_items)
        if creating or body.get("line_items") is not None
        else invoice.line_items
    )
    number = payloads.text(body, "invoice_number", max_length=100)
    if number is not None:
        number = number.strip()
        if not number:
            raise invalid("invoice_number")
        taken = ledger.invoice_index.find("number", number)
        if any(i.invoice_number == number and i.invoice_id != invoice.invoice_id for i in taken):
            raise ZohoError(400, DUPLICATE_VALUE, "Invoice number already exists. Please specify a different number.")
    day = payloads.day(body, "date") or (invoice.date if not creating else ctx.today())
    terms = payloads.integer(body, "payment_terms")
    terms_value = invoice.payment_terms if terms is None else terms
    if creating and terms is None and customer_id is not None:
        terms_value = ledger.contact(customer_id).payment_terms
    due = payloads.day(body, "due_date")
    if due is None:
        due = add_days(day, terms_value) if (creating or terms is not None or "date" in body) else invoice.due_date
    if due < day:
        raise ZohoError(400, 4, "Due date cannot be earlier than the invoice date.")
    adjustment = payloads.amount(body, "adjustment")
    custom = dict(invoice.custom)
    if body.get("custom_fields") is not None:
        custom.update(parse_custom_fields(body["custom_fields"]))
    holders = unique_holders(ledger.invoice_index, custom)
    check_unique(custom, (i.custom for i in holders if i.invoice_id != invoice.invoice_id), "invoice")
    texts = {
        key: payloads.text(body, key, max_length=length)
        for key, length in (
            ("reference_number", 100),
            ("notes", 5000),
            ("terms", 10000),
            ("adjustment_description", 100),
        )
    }
    sub_total = round_money(sum((line.item_total for line in lines), ZERO))
    new_adjustment = invoice.adjustment if adjustment is None else round_money(adjustment)
    total = round_money(sub_total + new_adjustment)
    if total < ZERO:
        raise invalid("total")
    if total < invoice.payment_made:
        raise bad_state("The invoice total cannot be less than the payments already recorded for it.")
    # Everything is valid: write.
    if customer_id is not None:
        invoice.customer_id = customer_id
    if number is not None:
        invoice.invoice_number = number
    invoice.line_items = lines
    invoice.date = day
    invoice.due_date = due
    invoice.payment_terms = terms_value
    invoice.payment_terms_label = "Due on Receipt" if terms_value == 0 else f"Net {terms_value}"
    for key, value in texts.items():
        if value is not None:
            setattr(invoice, key, value)
    invoice.adjustment = new_adjustment
    invoice.sub_total = sub_total
    invoice.total = total
    invoice.custom = custom
    invoice.last_modified_time = ctx.now()
    ledger.invoice_index.refile(invoice.invoice_id, invoice)


class InvoiceRoutes:
    """Handlers of the invoices module."""

    def __init__(self, ctx: BooksContext) -> None:
        self.ctx = ctx

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under the Books prefix."""
        p = f"{prefix}/invoices"
        app.add_routes(
            [
                web.post(p, self.create),
                web.get(p, self.list),
                web.put(p, self.upsert),
                web.get(p + "/{invoice_id}", self.get),
                web.put(p + "/{invoice_id}", self.update),
                web.delete(p + "/{invoice_id}", self.delete),
                web.post(p + "/{invoice_id}/status/sent", self.mark_sent),
                web.post(p + "/{invoice_id}/status/void", self.mark_void),
                web.post(p + "/{invoice_id}/status/draft", self.mark_draft),
                web.get(p + "/{invoice_id}/payments", self.payments),
            ]
        )

    def create_invoice(
        self, body: Mapping[str, Any], *, send: bool, custom: Mapping[str, str] | None = None
    ) -> Invoice:
        """Validate and book a new invoice (also used by seeding); notifies `invoice created`."""
        ctx = self.ctx
        if custom:
            given = body.get("custom_fields") or []
            if not isinstance(given, list):
                raise invalid("custom_fields")
            body = {**body, "custom_fields": [*given, *as_fields(custom)]}
        now = ctx.now()
        invoice = Invoice(
            invoice_id="", invoice_number="", customer_id="", date=ctx.today(), due_date=ctx.today(),
            line_items=[], sub_total=ZERO, total=ZERO, created_time=now, last_modified_time=now,
        )  # fmt: skip
        _apply_input(ctx, invoice, body, creating=True)
        invoice.invoice_id = ctx.ledger.new_id()
        if not invoice.invoice_number:
            invoice.invoice_number = ctx.ledger.new_invoice_number()
        invoice.base_status = "sent" if send else "draft"
        ctx.ledger.invoices[invoice.invoice_id] = invoice
        ctx.notify("invoice", "created", invoice_json(ctx, invoice))
        return invoice

    def _created(self, invoice: Invoice) -> web.Response:
        return answer(
            {"code": 0, "message": "The invoice has been created.", "invoice": invoice_json(self.ctx, invoice)}, 201
        )

    async def create(self, request: web.Request) -> web.Response:
        """POST /invoices (`?send=true` marks it sent) → 201."""
        send = payloads.query_flag(request, "send")
        payloads.query_flag(request, "ignore_auto_number_generation")
        return self._created(self.create_invoice(await payloads.read_body(request), send=send))

    def _update(self, invoice: Invoice, body: Mapping[str, Any]) -> web.Response:
        status = invoice_status(invoice, self.ctx.today())
        if status == "void":
            raise bad_state("Void invoices cannot be edited. Mark the invoice as draft first.")
        if status == "paid":
            raise bad_state("Paid invoices cannot be edited.")
        _apply_input(self.ctx, invoice, body, creating=False)
        payload = invoice_json(self.ctx, invoice)
        self.ctx.notify("invoice", "updated", payload)
        return answer({"code": 0, "message": "Invoice information has been updated.", "invoice": payload})

    async def update(self, request: web.Request) -> web.Response:
        """PUT /invoices/{invoice_id}; paid and void invoices are refused."""
        invoice = self.ctx.ledger.invoice(request.match_info["invoice_id"])
        return self._update(invoice, await payloads.read_body(request))

    async def upsert(self, request: web.Request) -> web.Response:
        """PUT /invoices with X-Unique-Identifier-Key/-Value (and X-Upsert: true to create)."""
        holders = upsert_holders(self.ctx.ledger.invoice_index, lambda i: i.invoice_id)
        target = resolve_upsert(request, holders, "Invoice")
        body = await payloads.read_body(request)
        if target.existing_id is not None:
            return self._update(self.ctx.ledger.invoice(target.existing_id), body)
        return self._created(self.create_invoice(body, send=False, custom={target.key: target.value}))

    async def get(self, request: web.Request) -> web.Response:
        """GET /invoices/{invoice_id} (with line items)."""
        invoice = self.ctx.ledger.invoice(request.match_info["invoice_id"])
        return answer({"code": 0, "message": "success", "invoice": invoice_json(self.ctx, invoice)})

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /invoices/{invoice_id}; refused while payments are applied to it."""
        invoice = self.ctx.ledger.invoice(request.match_info["invoice_id"])
        if self.ctx.ledger.payments_of_invoice(invoice.invoice_id):
            raise bad_state("The invoice cannot be deleted as payments have been recorded for it.")
        payload = invoice_json(self.ctx, invoice)
        invoice.deleted = True
        invoice.last_modified_time = self.ctx.now()
        self.ctx.notify("invoice", "deleted", payload)
        return answer({"code": 0, "message": "The invoice has been deleted."})

    def _set_status(self, invoice: Invoice, status: str, message: str) -> web.Response:
        invoice.base_status = status  # type: ignore[assignment]
        invoice.last_modified_time = self.ctx.now()
        self.ctx.notify("invoice", "updated", invoice_json(self.ctx, invoice))
        return answer({"code": 0, "message": message})

    async def mark_sent(self, request: web.Request) -> web.Response:
        """POST /invoices/{id}/status/sent: a draft becomes open."""
        invoice = self.ctx.ledger.invoice(request.match_info["invoice_id"])
        if invoice.base_status != "draft":
            raise bad_state("Only draft invoices can be marked as sent.")
        return self._set_status(invoice, "sent", "Invoice status has been changed to Sent.")

    async def mark_void(self, request: web.Request) -> web.Response:
        """POST /invoices/{id}/status/void: refused for void invoices and invoices with payments."""
        invoice = self.ctx.ledger.invoice(request.match_info["invoice_id"])
        if invoice.base_status == "void":
            raise bad_state("The invoice is already void.")
        if invoice.payment_made > ZERO:
            raise bad_state("Invoices with payments recorded cannot be voided. Delete the payments first.")
        return self._set_status(invoice, "void", "Invoice status has been changed to Void.")

    async def mark_draft(self, request: web.Request) -> web.Response:
        """POST /invoices/{id}/status/draft: a void invoice becomes a draft again."""
        invoice = self.ctx.ledger.invoice(request.match_info["invoice_id"])
        if invoice.base_status != "void":
            raise bad_state("Only void invoices can be marked as draft.")
        return self._set_status(invoice, "draft", "Status of invoice changed from void to draft.")

    async def payments(self, request: web.Request) -> web.Response:
        """GET /invoices/{invoice_id}/payments: every payment allocation on the invoice."""
        invoice = self.ctx.ledger.invoice(request.match_info["invoice_id"])
        rows = [
            {
                "payment_id": payment.payment_id,
                "invoice_id": invoice.invoice_id,
                "invoice_payment_id": allocation.invoice_payment_id,
                "payment_mode": payment.payment_mode,
                "description": payment.description,
                "date": payment.date.isoformat(),
                "reference_number": payment.reference_number,
                "exchange_rate": payment.exchange_rate,
                "amount": allocation.amount_applied,
                "tax_amount_withheld": ZERO,
                "online_transaction_id": "",
                "is_single_invoice_payment": len(payment.allocations) == 1,
            }
            for payment, allocation in self.ctx.ledger.payments_of_invoice(invoice.invoice_id)
        ]
        return answer({"code": 0, "message": "success", "payments": rows})

    async def list(self, request: web.Request) -> web.Response:
        """GET /invoices: summaries without line items; status, customer, reference, text and time filters."""
        ctx = self.ctx
        listing = list_request(request, sort_columns=SORT_COLUMNS, default_sort="created_time")
        query = request.query
        rows = _candidates(ctx.ledger, query)
        applied_filter = query.get("filter_by", "Status.All")
        if applied_filter not in STATUS_FILTERS:
            raise invalid("filter_by")
        wanted = STATUS_FILTERS[applied_filter]
        if "status" in query:
            if query["status"] not in STATUS_VALUES:
                raise invalid("status")
            wanted = STATUS_VALUES[query["status"]]
        today = ctx.today()
        if wanted is not None:
            rows = [i for i in rows if invoice_status(i, today) in wanted]
        for key in ("customer_id", "reference_number", "invoice_number"):
            if key in query:
                rows = [i for i in rows if getattr(i, key) == query[key]]
        for key in ("reference_number", "invoice_number"):
            if key + "_startswith" in query:
                rows = [i for i in rows if getattr(i, key).startswith(query[key + "_startswith"])]
            if key + "_contains" in query:
                rows = [i for i in rows if query[key + "_contains"] in getattr(i, key)]
        rows = _filter_custom(rows, query)
        if "search_text" in query:
            needle = query["search_text"].lower()
            rows = [i for i in rows if _matches_text(ctx, i, needle)]
        start = payloads.day(query, "date_start")
        if start is not None:
            rows = [i for i in rows if i.date >= start]
        end = payloads.day(query, "date_end")
        if end is not None:
            rows = [i for i in rows if i.date <= end]
        after = modified_after(request)
        if after is not None:
            rows = [i for i in rows if i.last_modified_time > after]
        page, context = page_of(
            rows,
            listing,
            key=_sort_key(ctx, listing.sort_column),
            render=lambda i: invoice_json(ctx, i, summary=True),
            report_name="Invoices",
            applied_filter=applied_filter,
        )
        return answer({"code": 0, "message": "success", "invoices": page, "page_context": context})


def _matches_text(ctx: BooksContext, invoice: Invoice, needle: str) -> bool:
    customer = ctx.ledger.contacts.get(invoice.customer_id)
    haystack = [invoice.invoice_number, invoice.reference_number, customer.contact_name if customer else ""]
    return any(needle in value.lower() for value in haystack)


def _candidates(ledger: BooksLedger, query: Mapping[str, str]) -> list[Invoice]:
    """The live invoices an exact customer, number, reference or custom field filter can match (all live invoices
    without one), in creation order; every filter is applied to them afterwards, as to all."""
    for key, index in (("invoice_number", "number"), ("reference_number", "reference"),
                       ("custom_field", "custom"), ("customer_id", "customer")):  # fmt: skip
        if key in query:
            return ledger.invoice_index.find(index, query[key])
    return ledger.live_invoices()


def _filter_custom(rows: list[Invoice], query: Mapping[str, str]) -> list[Invoice]:
    """The documented `custom_field` filter and its `_startswith`/`_contains` variants: invoices with a custom
    field value equal to, starting with or containing the given text."""
    for suffix, test in (
        ("", lambda have, want: have == want),
        ("_startswith", lambda have, want: have.startswith(want)),
        ("_contains", lambda have, want: want in have),
    ):
        wanted = query.get("custom_field" + suffix)
        if wanted is not None:
            rows = [i for i in rows if any(test(value, wanted) for value in i.custom.values())]
    return rows


def _sort_key(ctx: BooksContext, column: str) -> Callable[[Invoice], Any]:
    """The value of a sort column as the list row shows it (customer name lower-cased, dates as written)."""
    if column == "customer_name":

        def customer_name(invoice: Invoice) -> str:
            customer = ctx.ledger.contacts.get(invoice.customer_id)
            return customer.contact_name.lower() if customer else ""

        return customer_name
    if column in ("created_time", "last_modified_time"):
        return lambda i: ctx.stamp(getattr(i, column))
    if column in ("date", "due_date"):
        return lambda i: getattr(i, column).isoformat()
    return lambda i: getattr(i, column)
