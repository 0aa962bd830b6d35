"""Zoho Books simulator: invoice lifecycle and statuses, payments and credits, webhooks, seeding and state."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.zohobooks import ZohoBooksSimulator
from tests.sandbox.test_zohobooks_support import Books, books, new_contact, new_invoice

__all__ = ["books"]


async def _pay(
    books: Books, customer_id: str, amount: float, *applied: tuple[str, float]
) -> tuple[int, dict[str, Any]]:
    body = {
        "customer_id": customer_id, "payment_mode": "banktransfer", "amount": amount, "date": "2026-01-02",
        "invoices": [{"invoice_id": i, "amount_applied": a} for i, a in applied],
    }  # fmt: skip
    return await books.call("POST", "/customerpayments", json_body=body)


async def _invoice(books: Books, invoice_id: str) -> dict[str, Any]:
    status, answer = await books.call("GET", f"/invoices/{invoice_id}")
    assert status == 200
    return dict(answer["invoice"])


async def test_invoice_lifecycle_totals_and_status_endpoints(books: Books) -> None:
    customer = await new_contact(books, "Life Cycle", payment_terms=15)
    body = {
        "customer_id": customer["contact_id"], "reference_number": "DEAL-1", "date": "2026-01-01",
        "line_items": [
            {"name": "Licence", "rate": "100.10", "quantity": 3, "discount": "10%"},
            {"name": "Setup", "description": "one-off", "rate": 49.99, "quantity": 1, "discount": 9.99},
        ],
        "custom_fields": [{"api_name": "cf_syncd_ref", "value": "deal-1"}],
    }  # fmt: skip
    status, answer = await books.call("POST", "/invoices", json_body=body)
    assert status == 201
    invoice = answer["invoice"]
    # 300.30 − 30.03 = 270.27; 49.99 − 9.99 = 40.00
    assert [line["item_total"] for line in invoice["line_items"]] == [270.27, 40]
    assert (invoice["sub_total"], invoice["total"], invoice["balance"]) == (310.27, 310.27, 310.27)
    assert invoice["status"] == "draft" and invoice["due_date"] == "2026-01-16"
    assert invoice["reference_number"] == "DEAL-1" and invoice["cf_syncd_ref"] == "deal-1"
    invoice_id = invoice["invoice_id"]
    status, answer = await books.call("POST", f"/invoices/{invoice_id}/status/sent")
    assert status == 200 and (await _invoice(books, invoice_id))["status"] == "sent"
    books.travel(20 * 86400)  # past the due date
    assert (await _invoice(books, invoice_id))["status"] == "overdue"
    _, overdue = await books.call("GET", "/invoices", params={"status": "overdue"})
    assert [i["invoice_id"] for i in overdue["invoices"]] == [invoice_id]
    assert (await books.call("POST", f"/invoices/{invoice_id}/status/void"))[0] == 200
    status, answer = await books.call("PUT", f"/invoices/{invoice_id}", json_body={"reference_number": "x"})
    assert status == 400  # void invoices cannot be edited
    assert (await books.call("POST", f"/invoices/{invoice_id}/status/draft"))[0] == 200
    one_line = {"line_items": [{"name": "Only", "rate": 5}]}
    status, answer = await books.call("PUT", f"/invoices/{invoice_id}", json_body=one_line)
    assert status == 200 and answer["invoice"]["total"] == 5 and len(answer["invoice"]["line_items"]) == 1
    status, answer = await books.call("DELETE", f"/invoices/{invoice_id}")
    assert (status, answer) == (200, {"code": 0, "message": "The invoice has been deleted."})
    status, answer = await books.call("GET", f"/invoices/{invoice_id}")
    assert (status, answer["code"], answer["message"]) == (404, 1002, "Invoice does not exist.")


async def test_invoice_filters_and_modified_after(books: Books) -> None:
    customer = await new_contact(books, "Filter Co")
    first = await new_invoice(books, customer["contact_id"], ("A", 10), reference_number="REF-A")
    books.clock.advance(30)
    await new_invoice(books, customer["contact_id"], ("B", 20), send=False)
    _, answer = await books.call("GET", "/invoices", params={"reference_number": "REF-A"})
    assert [i["invoice_id"] for i in answer["invoices"]] == [first["invoice_id"]]
    _, answer = await books.call("GET", "/invoices", params={"filter_by": "Status.Draft"})
    assert [i["total"] for i in answer["invoices"]] == [20]
    _, answer = await books.call("GET", "/invoices", params={"last_modified_time": "2026-01-01T00:00:10+0000"})
    assert [i["total"] for i in answer["invoices"]] == [20]
    _, answer = await books.call("GET", "/invoices", params={"search_text": "filter co", "sort_column": "total"})
    assert [i["total"] for i in answer["invoices"]] == [10, 20]
    status, answer = await books.call("POST", "/invoices", json_body={"customer_id": customer["contact_id"]})
    assert status == 400 and "line_items" in answer["message"]
    unknown = {"customer_id": "460000009999999", "line_items": [{"name": "x", "rate": 1}]}
    status, answer = await books.call("POST", "/invoices", json_body=unknown)
    assert (status, answer["code"]) == (404, 1002)


async def test_full_partial_and_several_payments_move_balance_and_status(books: Books) -> None:
    customer = await new_contact(books, "Payer One")
    invoice = await new_invoice(books, customer["contact_id"], ("Work", 1000))
    invoice_id = invoice["invoice_id"]
    status, first = await _pay(books, customer["contact_id"], 400, (invoice_id, 400))
    assert status == 201 and first["payment"]["invoices"][0]["balance_amount"] == 600
    after = await _invoice(books, invoice_id)
    assert (after["status"], after["balance"], after["payment_made"]) == ("partially_paid", 600, 400)
    status, second = await _pay(books, customer["contact_id"], 600, (invoice_id, 600))
    assert status == 201
    after = await _invoice(books, invoice_id)
    assert (after["status"], after["balance"], after["last_payment_date"]) == ("paid", 0, "2026-01-02")
    _, listed = await books.call("GET", f"/invoices/{invoice_id}/payments")
    assert sorted(p["amount"] for p in listed["payments"]) == [400, 600]
    assert (await books.call("PUT", f"/invoices/{invoice_id}", json_body={"notes": "n"}))[0] == 400
    assert (await books.call("POST", f"/invoices/{invoice_id}/status/void"))[0] == 400
    # Deleting a payment restores the balance and status.
    status, answer = await books.call("DELETE", f"/customerpayments/{second['payment']['payment_id']}")
    assert (status, answer["message"]) == (200, "The payment has been deleted.")
    after = await _invoice(books, invoice_id)
    assert (after["status"], after["balance"]) == ("partially_paid", 600)
    _, contact = await books.call("GET", f"/contacts/{customer['contact_id']}")
    assert contact["contact"]["outstanding_receivable_amount"] == 600


async def test_one_payment_across_invoices_with_excess_as_credit_and_update_reapplies(books: Books) -> None:
    customer = await new_contact(books, "Payer Two")
    a = (await new_invoice(books, customer["contact_id"], ("A", 300)))["invoice_id"]
    b = (await new_invoice(books, customer["contact_id"], ("B", 200)))["invoice_id"]
    status, answer = await _pay(books, customer["contact_id"], 600, (a, 300), (b, 100))
    assert status == 201 and answer["payment"]["unused_amount"] == 200
    payment_id = answer["payment"]["payment_id"]
    assert (await _invoice(books, a))["status"] == "paid"
    assert (await _invoice(books, b))["balance"] == 100
    _, contact = await books.call("GET", f"/contacts/{customer['contact_id']}")
    assert contact["contact"]["unused_credits_receivable_amount"] == 200
    assert contact["contact"]["outstanding_receivable_amount"] == 100
    # Re-applied as given: all of B now, less of A.
    update = {
        "amount": 600,
        "invoices": [{"invoice_id": a, "amount_applied": 100}, {"invoice_id": b, "amount_applied": 200}],
    }
    status, answer = await books.call("PUT", f"/customerpayments/{payment_id}", json_body=update)
    assert status == 200 and answer["payment"]["unused_amount"] == 300
    assert (await _invoice(books, a))["balance"] == 200
    assert (await _invoice(books, b))["status"] == "paid"
    refund = {"date": "2026-01-03", "amount": 300, "from_account_id": "460000000000001"}
    status, answer = await books.call("POST", f"/customerpayments/{payment_id}/refunds", json_body=refund)
    assert status == 200
    _, contact = await books.call("GET", f"/contacts/{customer['contact_id']}")
    assert contact["contact"]["unused_credits_receivable_amount"] == 0
    assert (await books.call("DELETE", f"/customerpayments/{payment_id}"))[0] == 200
    assert (await _invoice(books, a))["balance"] == 300
    assert (await _invoice(books, b))["status"] == "sent"


async def test_over_application_is_rejected_and_changes_nothing(books: Books) -> None:
    customer = await new_contact(books, "Over Payer")
    other = await new_contact(books, "Someone Else")
    invoice_id = (await new_invoice(books, customer["contact_id"], ("Work", 100)))["invoice_id"]
    assert (await _pay(books, customer["contact_id"], 500, (invoice_id, 150)))[0] == 400  # beyond the balance
    assert (await _pay(books, customer["contact_id"], 50, (invoice_id, 80)))[0] == 400  # beyond the payment
    assert (await _pay(books, other["contact_id"], 50, (invoice_id, 50)))[0] == 400  # another's invoice
    assert (await _invoice(books, invoice_id))["balance"] == 100
    _, listed = await books.call("GET", "/customerpayments")
    assert listed["customerpayments"] == []


async def test_webhooks_are_signed_one_event_per_request(books: Books) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    server = TestServer(receiver, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        books.sim.set_webhook_targets([str(server.make_url("/hook")) + "?zeta=1&alpha=two"])
        customer = await new_contact(books, "Hooked Customer")
        invoice = await new_invoice(books, customer["contact_id"], ("Hook", 10))
        await asyncio.wait_for(books.sim.drain_webhooks(5.0), 6.0)
    finally:
        await server.close()
    events = [json.loads(body) for _, body in received]
    assert sorted(e["event_type"] for e in events) == ["contact_created", "invoice_created"]
    by_type = {e["event_type"]: e for e in events}
    assert by_type["contact_created"]["contact"]["contact_id"] == customer["contact_id"]
    assert by_type["invoice_created"]["invoice"]["invoice_id"] == invoice["invoice_id"]
    secret = books.sim.credentials(books.root)["webhook_secret"].encode()
    for headers, body in received:
        # Independent computation: query pairs sorted by key, concatenated, then the raw body.
        expected = hmac.new(secret, b"alphatwozeta1" + body, hashlib.sha256).hexdigest()
        assert headers["X-Zoho-Webhook-Signature"] == expected


def test_seeding_and_state_round_trip() -> None:
    sim = ZohoBooksSimulator(clock=lambda: 1_767_225_600.0)
    world = SeedWorld.build(7, 12)
    created = sim.seed(world, SeedCounts(contacts=10, invoices=6, payments=3))
    assert created == {"contacts": 10, "invoices": 6, "payments": 3}
    contacts = sim.records("contacts") or []
    assert contacts[0]["email"] == world.people[0].email and contacts[0]["deleted"] is False
    invoices = sim.records("invoices") or []
    assert [i["status"] for i in invoices][:3] == ["paid", "paid", "partially_paid"]
    clone = ZohoBooksSimulator(clock=lambda: 1_767_225_600.0)
    clone.load_state(sim.dump_state())
    assert clone.records("invoices") == invoices
    assert clone.credentials("http://x")["refresh_token"] == sim.credentials("http://x")["refresh_token"]
    assert sim.records("nothing") is None
