"""Zoho Books webhooks from the simulator: signatures verified, events parsed, forgeries refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.connectors.base import Create, WebhookRejected, WebhookRequest
from syncd.connectors.zohobooks import ZohoBooksConnector
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
    zoho: ZohoBooksConnector, inbox: tuple[str, asyncio.Queue[WebhookRequest]]
) -> None:
    url, received = inbox
    assert await zoho.register_webhooks(url)
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
