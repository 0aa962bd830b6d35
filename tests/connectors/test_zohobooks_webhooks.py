"""Zoho Books webhooks from the simulator: signatures verified, events parsed (a payment's into its applications
and invoices too), forgeries refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.connectors.base import ChangeEvent, Create, FieldValue, Update, WebhookRejected, WebhookRequest
from syncd.connectors.zohobooks import ZohoBooksConnector, webhooks
from syncd.sandbox.runner import Sandbox
from tests.connectors.zohobooks_fixtures import open_zoho


@pytest.fixture
async def zoho(reset_sandbox: Sandbox) -> AsyncIterator[ZohoBooksConnector]:
    """A started connector against a sandbox with no records."""
    async with open_zoho(reset_sandbox) as connector:
        yield connector


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[str, asyncio.Queue[WebhookRequest]]]:
    """A receiver on loopback that queues each delivery as the connector will see it."""
    received: asyncio.Queue[WebhookRequest] = asyncio.Queue()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        await received.put(
            WebhookRequest(request.method, str(request.url), dict(request.headers), body, dict(request.query))
        )
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks/zoho", handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/hooks/zoho?source=books")), received
    finally:
        await server.close()


async def test_delivered_webhooks_verify_and_parse(
    zoho: ZohoBooksConnector, inbox: tuple[str, asyncio.Queue[WebhookRequest]], sandbox: Sandbox
) -> None:
    url, received = inbox
    sandbox.simulator("zohobooks").set_webhook_targets([url])  # as `syncd sandbox --webhook-url` does
    [created] = await zoho.create_many("contacts", [Create("ref-hook", {"contact_name": "Hooked"})])
    request = await asyncio.wait_for(received.get(), 10)
    zoho.verify_webhook(request)
    [event] = zoho.parse_webhook(request)
    assert (event.object, event.record_id, event.kind) == ("contacts", created.id, "created")
    assert event.occurred_at.tzinfo is not None

    forged = WebhookRequest(
        request.method, request.url, request.headers, request.body.replace(b"Hooked", b"Hacked")
    )
    with pytest.raises(WebhookRejected) as bad_signature:
        zoho.verify_webhook(forged)
    assert bad_signature.value.status == 401
    unsigned = WebhookRequest(request.method, request.url, {}, request.body)
    with pytest.raises(WebhookRejected):
        zoho.verify_webhook(unsigned)


async def test_malformed_and_foreign_bodies_are_400(zoho: ZohoBooksConnector) -> None:
    for body in (
        b"not json",
        b"[]",
        json.dumps(
            {"module": "invoice", "event_type": "invoice_exploded", "event_time": "2025-01-06T10:00:00+0000"}
        ).encode(),
        json.dumps(
            {
                "module": "contact",
                "event_type": "contact_created",
                "organization_id": "1",
                "event_time": "2025-01-06T10:00:00+0000",
                "contact": {"contact_id": "9"},
            }
        ).encode(),
    ):
        with pytest.raises(WebhookRejected) as raised:
            zoho.parse_webhook(WebhookRequest("POST", "http://127.0.0.1/x", {}, body))
        assert raised.value.status == 400


# --- customer payments: one delivery announces the payment, its applications and the invoices they pay ------


async def made(zoho: ZohoBooksConnector, obj: str, ref: str, fields: Mapping[str, FieldValue]) -> str:
    """Create one record through the connector and return its id."""
    [outcome] = await zoho.create_many(obj, [Create(ref, fields)])
    assert outcome.ok and outcome.id is not None, outcome.error
    return outcome.id


async def open_invoices(zoho: ZohoBooksConnector, count: int) -> tuple[str, list[str]]:
    """A customer with `count` sent invoices of 100 each."""
    customer = await made(zoho, "contacts", "payer", {"contact_name": "Payer", "contact_type": "customer"})
    invoices = []
    for n in range(count):
        line: Mapping[str, FieldValue] = {"name": "Work", "rate": Decimal(100)}
        invoice = await made(zoho, "invoices", f"inv-{n}", {"customer_id": customer, "line_items": [line]})
        await zoho.act("invoices", invoice, "sent")
        invoices.append(invoice)
    return customer, invoices


def applied_to(invoice: str, amount: str = "40") -> list[Mapping[str, FieldValue]]:
    """A payment's `invoices` field applying `amount` to one invoice."""
    return [{"invoice_id": invoice, "amount_applied": Decimal(amount)}]


async def delivery(received: asyncio.Queue[WebhookRequest], event_type: str) -> WebhookRequest:
    """The next delivery of `event_type` (earlier deliveries of other types are passed over)."""
    while True:
        request = await asyncio.wait_for(received.get(), 10)
        if json.loads(request.body)["event_type"] == event_type:
            return request


def announced(events: Sequence[ChangeEvent]) -> set[tuple[str, str, str]]:
    """(object, record id, kind) of each event."""
    return {(e.object, e.record_id, e.kind) for e in events}


def without_applications(request: WebhookRequest) -> WebhookRequest:
    """The same delivery with a payload that does not list the payment's invoices (a leaner payload format)."""
    event = json.loads(request.body)
    del event["customerpayment"]["invoices"]
    return WebhookRequest(request.method, request.url, request.headers, json.dumps(event).encode(), request.query)


async def test_payment_webhooks_announce_each_application_and_invoice(
    reset_sandbox: Sandbox, zoho: ZohoBooksConnector, inbox: tuple[str, asyncio.Queue[WebhookRequest]]
) -> None:
    url, received = inbox
    reset_sandbox.simulator("zohobooks").set_webhook_targets([url])  # as `syncd sandbox --webhook-url` does
    customer, (first, second) = await open_invoices(zoho, 2)
    payment = await made(zoho, "customerpayments", "pay", {
        "customer_id": customer, "payment_mode": "cash", "amount": Decimal(40), "date": date(2025, 1, 7),
        "invoices": applied_to(first),
    })  # fmt: skip

    created = await delivery(received, "customerpayment_created")
    zoho.verify_webhook(created)
    events = zoho.parse_webhook(created)
    assert announced(events) == {
        ("customerpayments", payment, "created"),
        ("invoicepayments", f"{payment}:{first}", "created"),
        ("invoices", first, "updated"),
    }
    # Each event has its own id, the same again when Zoho delivers the event twice.
    assert len({e.event_id for e in events}) == 3
    assert [e.event_id for e in zoho.parse_webhook(created)] == [e.event_id for e in events]
    # The announced application is the record the connector reads under that id.
    found = await zoho.get_many("invoicepayments", [f"{payment}:{first}"])
    assert found[f"{payment}:{first}"].fields["amount_applied"] == Decimal(40)

    # Re-applied to the other invoice: the application it left is announced too (read again, it is found gone),
    # and both invoices as changed.
    [moved] = await zoho.update_many("customerpayments", [Update(payment, {"invoices": applied_to(second)})])
    assert moved.ok, moved.error
    updated = await delivery(received, "customerpayment_updated")
    assert announced(zoho.parse_webhook(updated)) == {
        ("customerpayments", payment, "updated"),
        ("invoicepayments", f"{payment}:{second}", "updated"),
        ("invoicepayments", f"{payment}:{first}", "updated"),
        ("invoices", first, "updated"),
        ("invoices", second, "updated"),
    }
    assert list(await zoho.get_many("invoicepayments", [f"{payment}:{first}", f"{payment}:{second}"])) == [
        f"{payment}:{second}"
    ]

    # Deleted: its last state lists the application that goes with it.
    [removed] = await zoho.delete_many("customerpayments", [payment])
    assert removed.ok
    deleted = await delivery(received, "customerpayment_deleted")
    zoho.verify_webhook(deleted)
    assert announced(zoho.parse_webhook(deleted)) == {
        ("customerpayments", payment, "deleted"),
        ("invoicepayments", f"{payment}:{second}", "deleted"),
        ("invoices", second, "updated"),
    }

    # A deletion payload that does not list the invoices: what an earlier event said still names them...
    async with open_zoho(reset_sandbox) as restarted:
        restarted.parse_webhook(updated)
        assert announced(restarted.parse_webhook(without_applications(deleted))) == {
            ("customerpayments", payment, "deleted"),
            ("invoicepayments", f"{payment}:{second}", "deleted"),
            ("invoices", second, "updated"),
        }
    # ...and without one (a restart in between), only the payment itself is named: polling finds the rest.
    async with open_zoho(reset_sandbox) as restarted:
        assert announced(restarted.parse_webhook(without_applications(deleted))) == {
            ("customerpayments", payment, "deleted")
        }
        # Likewise an update read by a connector that never saw the payment names only where it is applied now.
        assert announced(restarted.parse_webhook(updated)) == {
            ("customerpayments", payment, "updated"),
            ("invoicepayments", f"{payment}:{second}", "updated"),
            ("invoices", second, "updated"),
        }


async def test_a_redelivered_payment_event_announces_what_it_did_the_first_time(
    zoho: ZohoBooksConnector, inbox: tuple[str, asyncio.Queue[WebhookRequest]], sandbox: Sandbox
) -> None:
    # The receiver parses a delivery before storing its events; when the store fails, Zoho delivers it again.
    url, received = inbox
    sandbox.simulator("zohobooks").set_webhook_targets([url])  # as `syncd sandbox --webhook-url` does
    customer, (first, second) = await open_invoices(zoho, 2)
    payment = await made(zoho, "customerpayments", "pay", {
        "customer_id": customer, "payment_mode": "cash", "amount": Decimal(40), "date": date(2025, 1, 7),
        "invoices": applied_to(first),
    })  # fmt: skip
    zoho.parse_webhook(await delivery(received, "customerpayment_created"))
    [moved] = await zoho.update_many("customerpayments", [Update(payment, {"invoices": applied_to(second)})])
    assert moved.ok, moved.error
    updated = await delivery(received, "customerpayment_updated")

    first_time = zoho.parse_webhook(updated)
    again = zoho.parse_webhook(updated)
    assert again == first_time
    # The application the payment left and the invoice it no longer pays are still named the second time.
    assert {(e.object, e.record_id) for e in again} >= {("invoicepayments", f"{payment}:{first}"), ("invoices", first)}


@pytest.mark.parametrize(("event_time", "word"), [("2026-03-01T10:59:00+0000", "stale"),
                                                  ("2025-03-01T12:00:00+0000", "stale"),
                                                  ("2026-03-01T12:30:00+0000", "future"),
                                                  ("2027-03-01T12:00:00+0000", "future")])
def test_a_signed_event_stale_or_from_the_future_is_refused(event_time: str, word: str) -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    body = json.dumps({"event_id": "e1", "module": "contact", "event_type": "contact_updated", "organization_id": "1",
                       "event_time": event_time, "contact": {"contact_id": "9"}}).encode()
    url = "https://syncd.example.com/webhooks/books?source=books"
    request = WebhookRequest("POST", url, {webhooks.SIGNATURE_HEADER: webhooks.signature("s3cret", url, body)}, body)
    with pytest.raises(WebhookRejected, match=word) as refused:
        webhooks.verify(request, "s3cret", now=now)
    assert refused.value.status == 401
    fresh = body.replace(event_time.encode(), b"2026-03-01T11:58:00+0000")
    signed = {webhooks.SIGNATURE_HEADER: webhooks.signature("s3cret", url, fresh)}
    webhooks.verify(WebhookRequest("POST", url, signed, fresh), "s3cret", now=now)
