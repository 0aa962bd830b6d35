"""Zoho Books simulator: the payments on an invoice, and deleting one (the payment stays, that amount unused)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.sandbox.test_zohobooks_support import Books, books, new_contact, new_invoice

__all__ = ["books"]

DELETED = {"code": 0, "message": "The payment has been deleted."}


async def _pay(books: Books, customer_id: str, amount: float, *applied: tuple[str, float]) -> dict[str, Any]:
    body = {
        "customer_id": customer_id, "payment_mode": "banktransfer", "amount": amount, "date": "2026-01-01",
        "invoices": [{"invoice_id": i, "amount_applied": a} for i, a in applied],
    }  # fmt: skip
    status, answer = await books.call("POST", "/customerpayments", json_body=body)
    assert status == 201, answer
    return dict(answer["payment"])


async def _get(books: Books, path: str, key: str) -> dict[str, Any]:
    status, answer = await books.call("GET", path)
    assert status == 200, answer
    return dict(answer[key])


async def _on_invoice(books: Books, invoice_id: str) -> list[dict[str, Any]]:
    status, answer = await books.call("GET", f"/invoices/{invoice_id}/payments")
    assert status == 200 and answer["code"] == 0
    return list(answer["payments"])


def _figures(invoice: dict[str, Any]) -> tuple[str, float, float]:
    return invoice["status"], invoice["balance"], invoice["payment_made"]


async def test_the_invoice_lists_its_payments_by_the_invoice_payment_id_the_payment_shows(books: Books) -> None:
    customer = (await new_contact(books, "Listed Payer"))["contact_id"]
    a = (await new_invoice(books, customer, ("A", 1000)))["invoice_id"]
    b = (await new_invoice(books, customer, ("B", 500)))["invoice_id"]
    payment = await _pay(books, customer, 1200, (a, 1000), (b, 200))
    [row] = await _on_invoice(books, a)
    [line_a] = [line for line in payment["invoices"] if line["invoice_id"] == a]
    assert (row["payment_id"], row["invoice_id"], row["amount"]) == (payment["payment_id"], a, 1000)
    assert row["invoice_payment_id"] == line_a["invoice_payment_id"]
    [row_b] = await _on_invoice(books, b)
    # One id per application: the same payment on another invoice is another invoice payment.
    assert row_b["invoice_payment_id"] != row["invoice_payment_id"] and row_b["amount"] == 200
    # A payment edit that keeps the application keeps its id.
    status, _ = await books.call("PUT", f"/customerpayments/{payment['payment_id']}", json_body={"description": "x"})
    assert status == 200 and (await _on_invoice(books, a))[0]["invoice_payment_id"] == row["invoice_payment_id"]
    status, answer = await books.call("GET", "/invoices/460000009999999/payments")
    assert (status, answer) == (404, {"code": 1002, "message": "Invoice does not exist."})


async def test_deleting_an_invoice_payment_reopens_the_invoice_and_leaves_the_amount_as_credit(books: Books) -> None:
    customer = (await new_contact(books, "Unapplied Payer"))["contact_id"]
    a = (await new_invoice(books, customer, ("A", 1000)))["invoice_id"]
    b = (await new_invoice(books, customer, ("B", 500)))["invoice_id"]
    first = await _pay(books, customer, 1200, (a, 1000), (b, 200))
    second = await _pay(books, customer, 300, (b, 300))
    assert _figures(await _get(books, f"/invoices/{a}", "invoice")) == ("paid", 0, 1000)
    assert _figures(await _get(books, f"/invoices/{b}", "invoice")) == ("paid", 0, 500)

    # The first payment comes off invoice A: A is open again, the payment keeps its 1200 with 1000 unused.
    [on_a] = await _on_invoice(books, a)
    books.clock.advance(5)
    status, answer = await books.call("DELETE", f"/invoices/{a}/payments/{on_a['invoice_payment_id']}")
    assert (status, answer) == (200, DELETED)
    invoice_a = await _get(books, f"/invoices/{a}", "invoice")
    assert _figures(invoice_a) == ("sent", 1000, 0) and invoice_a["last_payment_date"] == ""
    assert invoice_a["last_modified_time"] == "2026-01-01T00:00:05+0000"
    assert await _on_invoice(books, a) == []
    payment = await _get(books, f"/customerpayments/{first['payment_id']}", "payment")
    assert (payment["amount"], payment["unused_amount"]) == (1200, 1000)
    assert [(line["invoice_id"], line["amount_applied"]) for line in payment["invoices"]] == [(b, 200)]
    assert payment["last_modified_time"] == "2026-01-01T00:00:05+0000"
    contact = await _get(books, f"/contacts/{customer}", "contact")
    assert (contact["unused_credits_receivable_amount"], contact["outstanding_receivable_amount"]) == (1000, 1000)

    # The second payment comes off B, which the first still pays in part.
    [on_b] = [row for row in await _on_invoice(books, b) if row["payment_id"] == second["payment_id"]]
    assert (await books.call("DELETE", f"/invoices/{b}/payments/{on_b['invoice_payment_id']}")) == (200, DELETED)
    assert _figures(await _get(books, f"/invoices/{b}", "invoice")) == ("partially_paid", 300, 200)
    assert (await _get(books, f"/customerpayments/{second['payment_id']}", "payment"))["invoices"] == []

    # Unused, the amount is the customer's credit: it can be refunded, or applied to the invoice again.
    refund = {"date": "2026-01-02", "amount": 300}
    status, _ = await books.call("POST", f"/customerpayments/{second['payment_id']}/refunds", json_body=refund)
    assert status == 200
    reapply = {"invoices": [{"invoice_id": a, "amount_applied": 1000}, {"invoice_id": b, "amount_applied": 200}]}
    status, _ = await books.call("PUT", f"/customerpayments/{first['payment_id']}", json_body=reapply)
    assert status == 200 and (await _get(books, f"/invoices/{a}", "invoice"))["status"] == "paid"


async def test_an_invoice_left_unpaid_past_its_due_date_is_overdue_again(books: Books) -> None:
    customer = (await new_contact(books, "Late Payer"))["contact_id"]
    invoice = (await new_invoice(books, customer, ("Work", 100)))["invoice_id"]  # due on receipt
    await _pay(books, customer, 100, (invoice, 100))
    books.travel(3 * 86400)
    assert (await _get(books, f"/invoices/{invoice}", "invoice"))["status"] == "paid"
    [row] = await _on_invoice(books, invoice)
    assert (await books.call("DELETE", f"/invoices/{invoice}/payments/{row['invoice_payment_id']}"))[0] == 200
    assert _figures(await _get(books, f"/invoices/{invoice}", "invoice")) == ("overdue", 100, 0)


async def test_unknown_invoices_and_invoice_payments_answer_does_not_exist_and_change_nothing(books: Books) -> None:
    customer = (await new_contact(books, "Careful Payer"))["contact_id"]
    a = (await new_invoice(books, customer, ("A", 100)))["invoice_id"]
    b = (await new_invoice(books, customer, ("B", 100)))["invoice_id"]
    payment = await _pay(books, customer, 150, (a, 100), (b, 50))
    [on_a], [on_b] = await _on_invoice(books, a), await _on_invoice(books, b)
    missing_invoice = {"code": 1002, "message": "Invoice does not exist."}
    missing_payment = {"code": 1002, "message": "Payment does not exist."}
    path = f"/invoices/460000009999999/payments/{on_a['invoice_payment_id']}"
    assert await books.call("DELETE", path) == (404, missing_invoice)
    assert await books.call("DELETE", f"/invoices/{a}/payments/460000009999999") == (404, missing_payment)
    # B's invoice payment is not on A.
    assert await books.call("DELETE", f"/invoices/{a}/payments/{on_b['invoice_payment_id']}") == (404, missing_payment)
    assert _figures(await _get(books, f"/invoices/{a}", "invoice")) == ("paid", 0, 100)
    assert len((await _get(books, f"/customerpayments/{payment['payment_id']}", "payment"))["invoices"]) == 2
    # Removed once, it is gone: a second delete finds nothing; so does one after the payment is deleted.
    assert await books.call("DELETE", f"/invoices/{a}/payments/{on_a['invoice_payment_id']}") == (200, DELETED)
    assert await books.call("DELETE", f"/invoices/{a}/payments/{on_a['invoice_payment_id']}") == (404, missing_payment)
    assert (await books.call("DELETE", f"/customerpayments/{payment['payment_id']}"))[0] == 200
    assert await books.call("DELETE", f"/invoices/{b}/payments/{on_b['invoice_payment_id']}") == (404, missing_payment)
    assert _figures(await _get(books, f"/invoices/{b}", "invoice")) == ("sent", 100, 0)


@pytest.fixture
async def received(books: Books) -> AsyncIterator[list[dict[str, Any]]]:
    """The webhook events the simulator delivers from now on (to a receiver on loopback)."""
    events: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        events.append(json.loads(await request.read()))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    server = TestServer(receiver, host="127.0.0.1", port=0)
    await server.start_server()
    books.sim.set_webhook_targets([str(server.make_url("/hook"))])
    try:
        yield events
    finally:
        books.sim.set_webhook_targets([])
        await server.close()


@pytest.mark.parametrize("invoice_webhooks", [True, False], ids=["invoice-webhooks-too", "payment-webhooks-only"])
async def test_deleting_an_invoice_payment_sends_the_payment_updated_then_the_invoice(
    books: Books, received: list[dict[str, Any]], invoice_webhooks: bool
) -> None:
    books.sim.payment_routes.invoice_webhooks = invoice_webhooks
    customer = (await new_contact(books, "Hooked Payer"))["contact_id"]
    invoice = (await new_invoice(books, customer, ("Work", 400)))["invoice_id"]
    payment = await _pay(books, customer, 400, (invoice, 400))
    [row] = await _on_invoice(books, invoice)
    await asyncio.wait_for(books.sim.drain_webhooks(5.0), 6.0)
    received.clear()
    assert (await books.call("DELETE", f"/invoices/{invoice}/payments/{row['invoice_payment_id']}"))[0] == 200
    await asyncio.wait_for(books.sim.drain_webhooks(5.0), 6.0)
    expected = ["customerpayment_updated", *(["invoice_updated"] if invoice_webhooks else [])]
    assert sorted(e["event_type"] for e in received) == sorted(expected)
    by_type = {e["event_type"]: e for e in received}
    sent = by_type["customerpayment_updated"]["customerpayment"]
    assert (sent["payment_id"], sent["invoices"], sent["unused_amount"]) == (payment["payment_id"], [], 400)
    if invoice_webhooks:
        assert _figures(by_type["invoice_updated"]["invoice"]) == ("sent", 400, 0)


async def test_a_full_reset_has_payments_followed_by_invoice_webhooks_again(
    books: Books, received: list[dict[str, Any]]
) -> None:
    targets = list(books.sim.webhooks.targets)
    books.sim.payment_routes.invoice_webhooks = False
    async with books.session.post(books.root + "/_sandbox/reset", json={"scope": "all"}) as response:
        assert response.status == 200
    books.sim.set_webhook_targets(targets)  # the reset dropped them, as it does every setting
    books.token = books.sim.tokens.issue_access_token().access_token
    customer = (await new_contact(books, "Reset Payer"))["contact_id"]
    invoice = (await new_invoice(books, customer, ("Work", 400)))["invoice_id"]
    await asyncio.wait_for(books.sim.drain_webhooks(5.0), 6.0)
    received.clear()
    await _pay(books, customer, 400, (invoice, 400))
    await asyncio.wait_for(books.sim.drain_webhooks(5.0), 6.0)
    assert sorted(e["event_type"] for e in received) == ["customerpayment_created", "invoice_updated"]
