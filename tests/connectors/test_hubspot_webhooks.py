"""HubSpot webhooks: deliveries from the simulator verify and parse; forged, stale or malformed ones are refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.connectors.base import ChangeEvent, Create, WebhookRejected, WebhookRequest
from syncd.connectors.hubspot.webhooks import parse_events, verify_signature
from syncd.sandbox.runner import Sandbox
from tests.connectors.conftest import ControlPlane
from tests.connectors.hubspot_fixtures import hubspot_connector

# The documented test vector (contracts README §1).
VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
# (HubSpot's own example body, with appId last: the key order the published signature was computed over.)
VECTOR_BODY = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
               b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
               b'"changeFlag":"NEW","appId":54321}]')
VECTOR_V1 = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


class Receiver:
    """A loopback endpoint that keeps every delivery as a WebhookRequest."""

    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []
        self.arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self.arrived:
            self.requests.append(WebhookRequest("POST", str(request.url), dict(request.headers), body))
            self.arrived.notify_all()
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A running receiver and its URL."""
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/hubspot", found.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield found, str(server.make_url("/hooks/hubspot"))
    finally:
        await server.close()


async def test_simulator_deliveries_verify_and_parse(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane], receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    await control["hubspot"].post("webhooks", {"urls": [url]})
    async with hubspot_connector(reset_sandbox) as hubspot:
        created = await hubspot.create_many("contacts", [Create("w1", {"email": "w1@x.com"})])
        async with found.arrived:
            await asyncio.wait_for(found.arrived.wait_for(lambda: bool(found.requests)), 10)
        events: list[ChangeEvent] = []
        for request in found.requests:
            hubspot.verify_webhook(request)
            events.extend(hubspot.parse_webhook(request))
        kinds = {(e.object, e.record_id, e.kind) for e in events}
        assert ("contacts", created[0].id, "created") in kinds

        forged = found.requests[0]
        tampered = WebhookRequest(forged.method, forged.url, forged.headers, forged.body.replace(b"contact", b"deal"))
        with pytest.raises(WebhookRejected) as caught:
            hubspot.verify_webhook(tampered)
        assert caught.value.status == 401


def test_v1_signature_vector_and_stale_v3_timestamps() -> None:
    request = WebhookRequest("POST", "https://example.com/hook", {"X-HubSpot-Signature": VECTOR_V1,
                                                                   "X-HubSpot-Signature-Version": "v1"}, VECTOR_BODY)
    verify_signature(request, VECTOR_SECRET)
    with pytest.raises(WebhookRejected):
        verify_signature(request, "another-secret")

    def v3(stamp: str) -> WebhookRequest:
        message = b"POST" + b"https://example.com/hook" + VECTOR_BODY + stamp.encode()
        digest = base64.b64encode(hmac.new(VECTOR_SECRET.encode(), message, hashlib.sha256).digest()).decode()
        return WebhookRequest("POST", "https://example.com/hook",
                              {"X-HubSpot-Signature-v3": digest, "X-HubSpot-Request-Timestamp": stamp}, VECTOR_BODY)

    now_ms = int(time.time() * 1000)
    verify_signature(v3(str(now_ms)), VECTOR_SECRET)
    for stale in (now_ms - 301_000, now_ms + 301_000):
        with pytest.raises(WebhookRejected, match="stale"):
            verify_signature(v3(str(stale)), VECTOR_SECRET)
    with pytest.raises(WebhookRejected) as missing:
        verify_signature(WebhookRequest("POST", "https://example.com/hook", {}, VECTOR_BODY), VECTOR_SECRET)
    assert missing.value.status == 401


def test_parsing_events_merges_and_malformed_bodies() -> None:
    events = parse_events(VECTOR_BODY, ["contacts"])
    assert [(e.event_id, e.object, e.record_id, e.kind) for e in events] == [("1", "contacts", "123", "created")]
    merge = json.dumps([{"eventId": 9, "subscriptionType": "contact.merge", "objectId": 5, "occurredAt": 1,
                         "primaryObjectId": 5, "mergedObjectIds": [7]}]).encode()
    parsed = parse_events(merge, ["contacts"])
    assert [(e.record_id, e.kind, e.merged_into) for e in parsed] == [("5", "updated", None), ("7", "merged", "5")]
    assert parse_events(b'[{"eventId":1,"subscriptionType":"ticket.creation","objectId":1,"occurredAt":1}]',
                        ["contacts"]) == []
    for bad in (b"{}", b"not json", b'[{"eventId": 1}]', b"[1]"):
        with pytest.raises(WebhookRejected) as caught:
            parse_events(bad, ["contacts"])
        assert caught.value.status == 400


async def test_register_webhooks_needs_an_app_id(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        assert await hubspot.register_webhooks("http://127.0.0.1:1/hooks") is False
