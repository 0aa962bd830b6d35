"""`/customerpayments`: payments applied to invoices, excess kept as customer credit, refunds of that credit;
also `DELETE /invoices/{id}/payments/{invoice_payment_id}`, which takes one application off its invoice."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from syncd.sandbox.zohobooks import payloads
from syncd.sandbox.zohobooks.context import BooksContext, answer
from syncd.sandbox.zohobooks.customfields import as_fields, check_unique, custom_fields_json, parse_custom_fields
from syncd.sandbox.zohobooks.entities import Invoice, Payment, PaymentAllocation, Refund
from syncd.sandbox.zohobooks.errors import OVER_APPLIED, ZohoError, invalid, mandatory
from syncd.sandbox.zohobooks.invoices import invoice_json
from syncd.sandbox.zohobooks.ledger import BooksLedger, unique_holders, upsert_holders
from syncd.sandbox.zohobooks.listing import list_request, modified_after, page_of
from syncd.sandbox.zohobooks.money import ZERO, round_money
from syncd.sandbox.zohobooks.upsert import resolve_upsert

SORT_COLUMNS = (
    "customer_name", "payment_number", "payment_mode", "date", "reference_number", "amount", "created_time",
    "last_modified_time",
)  # fmt: skip


def payment_json(ctx: BooksContext, payment: Payment, *, summary: bool = False) -> dict[str, Any]:
    """A payment as GET returns it; `summary` is the list row shape."""
    ledger = ctx.ledger
    customer = ledger.contacts.get(payment.customer_id)
    numbers = []
    applied = []
    for allocation in payment.allocations:
        invoice = ledger.invoices.get(allocation.invoice_id)
        if invoice is None:
            continue
        numbers.append(invoice.invoice_number)
        applied.append(
            {
                "invoice_payment_id": allocation.invoice_payment_id,
                "invoice_id": invoice.invoice_id,
                "invoice_number": invoice.invoice_number,
                "date": invoice.date.isoformat(),
                "invoice_amount": invoice.total,
                "amount_applied": allocation.amount_applied,
                "balance_amount": invoice.balance,
            }
        )
    base: dict[str, Any] = {
        "payment_id": payment.payment_id,
        "payment_number": payment.payment_number,
        "customer_id": payment.customer_id,
        "customer_name": customer.contact_name if customer else "",
        "invoice_numbers": ",".join(numbers),
        "date": payment.date.isoformat(),
        "payment_mode": payment.payment_mode,
        "amount": payment.amount,
        "unused_amount": payment.unused_amount,
        "reference_number": payment.reference_number,
        "description": payment.description,
        "created_time": ctx.stamp(payment.created_time),
        "last_modified_time": ctx.stamp(payment.last_modified_time),
        **custom_fields_json(payment.custom),
    }
    if summary:
        return {**base, "invoice_number": ",".join(numbers)}
    primary = next((p for p in customer.contact_persons if p.is_primary_contact), None) if customer else None
    return {
        **base,
        "amount_refunded": payment.amount_refunded,
        "bank_charges": payment.bank_charges,
        "exchange_rate": payment.exchange_rate,
        "status": "success",
        "email": primary.email if primary else "",
        "currency_code": "USD",
        "currency_symbol": "$",
        "invoices": applied,
    }


def _allocations(raw: Any) -> list[tuple[str, Decimal]]:
    """The `invoices` array of a payment body: `[{invoice_id, amount_applied}]`."""
    if not isinstance(raw, list):
        raise mandatory("invoices")
    wanted = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise invalid("invoices")
        invoice_id = payloads.identifier(entry, "invoice_id", required=True)
        applied = payloads.amount(entry, "amount_applied", required=True)
        assert invoice_id is not None and applied is not None
        wanted.append((invoice_id, round_money(applied)))
    return wanted


class PaymentRoutes:
    """Handlers of the customer payments module."""

    def __init__(self, ctx: BooksContext) -> None:
        self.ctx = ctx
        # Whether booking, changing or deleting a payment also sends `invoice_updated` for each invoice whose
        # balance it changed. Not verified for live Zoho (an invoice's workflow rule firing on a payment is
        # reported both ways), so tests run both; the `customerpayment_*` event is sent either way.
        self.invoice_webhooks = True

    def add_to(self, app: web.Application, prefix: str) -> None:
        """Register the routes under the Books prefix."""
        p = f"{prefix}/customerpayments"
        app.add_routes(
            [
                web.post(p, self.create),
                web.get(p, self.list),
                web.put(p, self.upsert),
                web.get(p + "/{payment_id}", self.get),
                web.put(p + "/{payment_id}", self.update),
                web.delete(p + "/{payment_id}", self.delete),
                web.get(p + "/{payment_id}/refunds", self.list_refunds),
                web.post(p + "/{payment_id}/refunds", self.refund),
                # Served here, not with the invoices: it changes a payment and notifies like the routes above.
                web.delete(
                    f"{prefix}/invoices/{{invoice_id}}/payments/{{invoice_payment_id}}", self.remove_from_invoice
                ),
            ]
        )

    def _write(self, payment: Payment, body: Mapping[str, Any], *, creating: bool) -> list[Invoice]:
        """Validate a create/update body completely, then (re)apply the payment; returns invoices touched."""
        ctx = self.ctx
        ledger = ctx.ledger
        customer_id = payloads.identifier(body, "customer_id", required=creating) or payment.customer_id
        customer = ledger.contact(customer_id)
        if customer.contact_type != "customer":
            raise invalid("customer_id")
        mode = payloads.text(body, "payment_mode", required=creating, max_length=100)
        amount = payloads.amount(body, "amount", required=creating)
        new_amount = payment.amount if amount is None else round_money(amount)
        if new_amount <= ZERO:
            raise invalid("amount")
        day = payloads.day(body, "date", required=creating) or payment.date
        if creating or "invoices" in body:
            wanted = _allocations(body.get("invoices"))
        else:
            wanted = [(a.invoice_id, a.amount_applied) for a in payment.allocations]
        ledger.check_allocations(customer_id, new_amount, wanted, None if creating else payment)
        if new_amount - sum((a for _, a in wanted), ZERO) < payment.amount_refunded:
            raise ZohoError(400, OVER_APPLIED, "The payment amount cannot be less than the amount refunded.")
        bank_charges = payloads.amount(body, "bank_charges", minimum=ZERO)
        exchange_rate = payloads.amount(body, "exchange_rate", minimum=ZERO)
        custom = dict(payment.custom)
        if body.get("custom_fields") is not None:
            custom.update(parse_custom_fields(body["custom_fields"]))
        holders = unique_holders(ledger.payment_index, custom)
        check_unique(custom, (p.custom for p in holders if p.payment_id != payment.payment_id), "payment")
        texts = {key: payloads.text(body, key, max_length=500) for key in ("reference_number", "description")}
        # Everything is valid: reverse the old allocations, write, apply the new ones.
        now = ctx.now()
        touched = {i.invoice_id: i for i in ledger.unapply(payment, now)} if not creating else {}
        previous = {a.invoice_id: a.invoice_payment_id for a in payment.allocations}
        payment.customer_id = customer_id
        payment.payment_mode = mode if mode is not None else payment.payment_mode
        payment.amount = new_amount
        payment.date = day
        payment.bank_charges = payment.bank_charges if bank_charges is None else bank_charges
        payment.exchange_rate = payment.exchange_rate if exchange_rate is None else exchange_rate
        for key, value in texts.items():
            if value is not None:
                setattr(payment, key, value)
        payment.custom = custom
        payment.allocations = [
            PaymentAllocation(
                invoice_payment_id=previous.get(invoice_id) or ledger.new_id(),
                invoice_id=invoice_id,
                amount_applied=applied,
            )
            for invoice_id, applied in wanted
        ]
        payment.last_modified_time = now
        ledger.payment_index.refile(payment.payment_id, payment)
        for invoice in ledger.apply(payment, now, ctx.today()):
            touched[invoice.invoice_id] = invoice
        return list(touched.values())

    def create_payment(self, body: Mapping[str, Any], custom: Mapping[str, str] | None = None) -> Payment:
        """Validate and book a new payment (also used by seeding); notifies payment and invoice changes."""
        ctx = self.ctx
        if custom:
            given = body.get("custom_fields") or []
            if not isinstance(given, list):
                raise invalid("custom_fields")
            body = {**body, "custom_fields": [*given, *as_fields(custom)]}
        now = ctx.now()
        payment = Payment(
            payment_id="", payment_number="", customer_id="", payment_mode="", amount=ZERO, date=ctx.today(),
            created_time=now, last_modified_time=now,
        )  # fmt: skip
        touched = self._write(payment, body, creating=True)
        payment.payment_id = ctx.ledger.new_id()
        payment.payment_number = ctx.ledger.new_payment_number()
        ctx.ledger.payments[payment.payment_id] = payment
        ctx.notify("customerpayment", "created", payment_json(ctx, payment))
        self._notify_invoices(touched)
        return payment

    def _notify_invoices(self, invoices: list[Invoice]) -> None:
        if not self.invoice_webhooks:
            return
        for invoice in invoices:
            self.ctx.notify("invoice", "updated", invoice_json(self.ctx, invoice))

    def _created(self, payment: Payment) -> web.Response:
        return answer(
            {"code": 0, "message": "The payment has been created.", "payment": payment_json(self.ctx, payment)}, 201
        )

    async def create(self, request: web.Request) -> web.Response:
        """POST /customerpayments → 201."""
        return self._created(self.create_payment(await payloads.read_body(request)))

    def _update(self, payment: Payment, body: Mapping[str, Any]) -> web.Response:
        touched = self._write(payment, body, creating=False)
        payload = payment_json(self.ctx, payment)
        self.ctx.notify("customerpayment", "updated", payload)
        self._notify_invoices(touched)
        return answer({"code": 0, "message": "The payment details have been updated.", "payment": payload})

    async def update(self, request: web.Request) -> web.Response:
        """PUT /customerpayments/{payment_id}: the payment is re-applied as given."""
        payment = self.ctx.ledger.payment(request.match_info["payment_id"])
        return self._update(payment, await payloads.read_body(request))

    async def upsert(self, request: web.Request) -> web.Response:
        """PUT /customerpayments with X-Unique-Identifier-Key/-Value (and X-Upsert: true to create)."""
        holders = upsert_holders(self.ctx.ledger.payment_index, lambda p: p.payment_id)
        target = resolve_upsert(request, holders, "Payment")
        body = await payloads.read_body(request)
        if target.existing_id is not None:
            return self._update(self.ctx.ledger.payment(target.existing_id), body)
        return self._created(self.create_payment(body, {target.key: target.value}))

    async def get(self, request: web.Request) -> web.Response:
        """GET /customerpayments/{payment_id}."""
        payment = self.ctx.ledger.payment(request.match_info["payment_id"])
        return answer({"code": 0, "message": "success", "payment": payment_json(self.ctx, payment)})

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /customerpayments/{payment_id}: balances and statuses of its invoices are restored."""
        ctx = self.ctx
        payment = ctx.ledger.payment(request.match_info["payment_id"])
        payload = payment_json(ctx, payment)
        now = ctx.now()
        touched = ctx.ledger.unapply(payment, now)
        payment.deleted = True
        payment.last_modified_time = now
        ctx.notify("customerpayment", "deleted", payload)
        self._notify_invoices(touched)
        return answer({"code": 0, "message": "The payment has been deleted."})

    async def remove_from_invoice(self, request: web.Request) -> web.Response:
        """DELETE /invoices/{invoice_id}/payments/{invoice_payment_id}: the payment is no longer applied to the
        invoice (its balance and status go back); the payment stays, that amount now unused (customer credit)."""
        ctx = self.ctx
        payment, invoice = ctx.ledger.remove_application(
            request.match_info["invoice_id"], request.match_info["invoice_payment_id"], ctx.now()
        )
        # The payment's applications changed: an edit of the payment, as Zoho's workflow rules see it.
        ctx.notify("customerpayment", "updated", payment_json(ctx, payment))
        self._notify_invoices([invoice])
        return answer({"code": 0, "message": "The payment has been deleted."})

    async def refund(self, request: web.Request) -> web.Response:
        """POST /customerpayments/{payment_id}/refunds: pay back part of the unused amount."""
        ctx = self.ctx
        payment = ctx.ledger.payment(request.match_info["payment_id"])
        body = await payloads.read_body(request)
        day = payloads.day(body, "date", required=True)
        amount = payloads.amount(body, "amount", required=True)
        assert day is not None and amount is not None
        amount = round_money(amount)
        if amount <= ZERO:
            raise invalid("amount")
        if amount > payment.unused_amount:
            raise ZohoError(400, OVER_APPLIED, "The refund amount is more than the unused amount of the payment.")
        refund = Refund(
            refund_id=ctx.ledger.new_id(),
            date=day,
            amount=amount,
            refund_mode=payloads.text(body, "refund_mode", max_length=100) or "",
            reference_number=payloads.text(body, "reference_number", max_length=100) or "",
            description=payloads.text(body, "description", max_length=500) or "",
        )
        payment.refunds.append(refund)
        payment.last_modified_time = ctx.now()
        ctx.notify("customerpayment", "updated", payment_json(ctx, payment))
        return answer(
            {
                "code": 0,
                "message": "The refund information for this payment has been saved.",
                "payment_refund": _refund_json(payment, refund),
            },
            200,
        )

    async def list_refunds(self, request: web.Request) -> web.Response:
        """GET /customerpayments/{payment_id}/refunds."""
        payment = self.ctx.ledger.payment(request.match_info["payment_id"])
        rows = [_refund_json(payment, r) for r in payment.refunds]
        context = {"page": 1, "per_page": 200, "has_more_page": False, "report_name": "Refunds",
                   "sort_column": "date", "sort_order": "D"}  # fmt: skip
        return answer({"code": 0, "message": "success", "payment_refunds": rows, "page_context": context})

    async def list(self, request: web.Request) -> web.Response:
        """GET /customerpayments with customer, reference, date, text and time filters."""
        ctx = self.ctx
        listing = list_request(request, sort_columns=SORT_COLUMNS, default_sort="created_time")
        query = request.query
        rows = _candidates(ctx.ledger, query)
        for key in ("customer_id", "reference_number", "payment_mode"):
            if key in query:
                rows = [p for p in rows if getattr(p, key) == query[key]]
        if "date" in query:
            rows = [p for p in rows if p.date == payloads.day(query, "date")]
        if "search_text" in query:
            needle = query["search_text"].lower()
            rows = [p for p in rows if needle in p.reference_number.lower() or needle in p.payment_number]
        after = modified_after(request)
        if after is not None:
            rows = [p for p in rows if p.last_modified_time > after]
        page, context = page_of(
            rows,
            listing,
            key=_sort_key(ctx, listing.sort_column),
            render=lambda p: payment_json(ctx, p, summary=True),
            report_name="Customer Payments",
            applied_filter=query.get("filter_by", "PaymentMode.All"),
        )
        # The live API names the list `customerpayments` (Zoho's API docs and every client in the wild read that
        # key); the downloadable OpenAPI file's `customer_payments` is a defect of the file.
        return answer({"code": 0, "message": "success", "customerpayments": page, "page_context": context})


def _candidates(ledger: BooksLedger, query: Mapping[str, str]) -> list[Payment]:
    """The live payments an exact reference or customer filter can match (all live payments without one), in
    creation order; every filter is applied to them afterwards, as to all."""
    if "reference_number" in query:
        return ledger.payment_index.find("reference", query["reference_number"])
    if "customer_id" in query:
        return ledger.payments_of_customer(query["customer_id"])
    return ledger.live_payments()


def _sort_key(ctx: BooksContext, column: str) -> Callable[[Payment], Any]:
    """The value of a sort column as the list row shows it (payment numbers as numbers)."""
    if column == "customer_name":

        def customer_name(payment: Payment) -> str:
            customer = ctx.ledger.contacts.get(payment.customer_id)
            return customer.contact_name if customer else ""

        return customer_name
    if column == "payment_number":
        return lambda p: int(p.payment_number)
    if column in ("created_time", "last_modified_time"):
        return lambda p: ctx.stamp(getattr(p, column))
    if column == "date":
        return lambda p: p.date.isoformat()
    return lambda p: getattr(p, column)


def _refund_json(payment: Payment, refund: Refund) -> dict[str, Any]:
    return {
        "payment_refund_id": refund.refund_id,
        "payment_id": payment.payment_id,
        "date": refund.date.isoformat(),
        "refund_mode": refund.refund_mode,
        "reference_number": refund.reference_number,
        "description": refund.description,
        "amount": refund.amount,
        "customer_name": "",
    }
