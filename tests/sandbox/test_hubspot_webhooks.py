"""HubSpot simulator webhooks: signed (v1, v3) batches, retries with attemptNumber, and the doc test vectors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hubspot.utils.signature import Signature

from syncd.sandbox.hubspot import HubSpotSimulator
from syncd.sandbox.hubspot.webhooks import signature_v1, signature_v2
from tests.contracts.hubspot.harness import ContractHarness

# HubSpot's documented example body (appId last), which the README's v1 vector was computed over.
README_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)


def test_signature_vectors_from_the_contracts_readme() -> None:
    secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    assert signature_v1(secret, README_BODY) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    assert signature_v2(secret, "GET", "https://www.example.com/webhook_uri", b"") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )


class Receiver:
    """A loopback webhook endpoint that fails the first `failures` deliveries with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.deliveries: list[tuple[dict[str, str], bytes, str]] = []
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append((dict(request.headers), await request.read(), str(request.url)))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[ContractHarness, Receiver, aiohttp.ClientSession]]:
    harness = ContractHarness(HubSpotSimulator(rng_seed=5))
    harness.sim.dispatcher.retry_base_s = 0.01  # keep the retry test fast
    receiver = Receiver(failures=1)
    await harness.server.start_server()
    await receiver.server.start_server()
    harness.sim.set_webhook_targets([str(receiver.server.make_url("/hooks"))])
    session = aiohttp.ClientSession(base_url=harness.base_url, headers=harness.headers())
    yield harness, receiver, session
    await session.close()
    await receiver.server.close()
    await harness.server.close()
    assert harness.check() > 0


async def test_events_are_signed_batched_and_retried(setup: Any) -> None:
    harness, receiver, session = setup
    sim = harness.sim
    async with session.post("/crm/v3/objects/contacts", json={"properties": {"email": "w@example.com"}}) as r:
        contact = await r.json()
    async with session.patch(f"/crm/v3/objects/contacts/{contact['id']}",
                             json={"properties": {"firstname": "Wen"}}) as r:
        assert r.status == 200
    async with session.delete(f"/crm/v3/objects/contacts/{contact['id']}") as r:
        assert r.status == 204
    await sim.drain_webhooks(10)
    assert len(receiver.deliveries) == 2  # one failed attempt, one retry of the same batch
    first, second = (json.loads(body) for _, body, _ in receiver.deliveries)
    assert [e["eventId"] for e in first] == [e["eventId"] for e in second]
    assert {e["attemptNumber"] for e in first} == {0} and {e["attemptNumber"] for e in second} == {1}
    by_type = {e["subscriptionType"]: e for e in second}
    assert set(by_type) == {"contact.creation", "contact.propertyChange", "contact.deletion"}
    assert by_type["contact.propertyChange"]["propertyName"] == "firstname"
    assert by_type["contact.propertyChange"]["propertyValue"] == "Wen"
    assert all(e["objectId"] == int(contact["id"]) and e["appId"] and e["portalId"] for e in second)
    for headers, body, url in receiver.deliveries:
        assert headers["X-HubSpot-Signature-Version"] == "v1"
        assert Signature.is_valid(headers["X-HubSpot-Signature"], sim.app_secret, body.decode(),
                                  signature_version="v1")
        assert Signature.is_valid(headers["X-HubSpot-Signature-v3"], sim.app_secret, body.decode(),
                                  http_uri=url, http_method="POST", signature_version="v3",
                                  timestamp=headers["X-HubSpot-Request-Timestamp"])
        assert not Signature.is_valid(headers["X-HubSpot-Signature"], "wrong-secret", body.decode(),
                                      signature_version="v1")
    assert sim.stats.webhooks_sent == 1 and sim.stats.webhooks_retried == 1


async def test_subscriptions_api_and_merge_event(setup: Any) -> None:
    harness, receiver, session = setup
    receiver.failures = 0
    developer = {"hapikey": harness.sim.developer_api_key}
    async with session.post("/webhooks/v3/54321/subscriptions", params=developer,
                            json={"eventType": "contact.propertyChange", "propertyName": "email", "active": True}) as r:
        assert r.status == 201
        created = await r.json()
    async with session.get("/webhooks/v3/54321/subscriptions", params=developer) as r:
        assert created in (await r.json())["results"]
    async with session.post("/webhooks/v3/54321/subscriptions", params=developer,
                            json={"eventType": "contact.nope"}) as r:
        assert r.status == 400
    ids = []
    for email in ("m1@example.com", "m2@example.com"):
        async with session.post("/crm/v3/objects/contacts", json={"properties": {"email": email}}) as r:
            ids.append((await r.json())["id"])
    async with session.post("/crm/v3/objects/contacts/merge",
                            json={"primaryObjectId": ids[0], "objectIdToMerge": ids[1]}) as r:
        assert r.status == 200
    await harness.sim.drain_webhooks(10)
    events = [e for _, body, _ in receiver.deliveries for e in json.loads(body)]
    email_events = [e for e in events if e["subscriptionId"] == int(created["id"])]
    assert sorted(e["propertyValue"] for e in email_events) == ["m1@example.com", "m2@example.com"]
    merge = next(e for e in events if e["subscriptionType"] == "contact.merge")
    assert merge["primaryObjectId"] == int(ids[0]) and merge["mergedObjectIds"] == [int(ids[1])]


async def test_association_changes_reach_association_change_subscribers(setup: Any) -> None:
    harness, receiver, session = setup
    receiver.failures = 0
    async with session.post("/webhooks/v3/54321/subscriptions", params={"hapikey": harness.sim.developer_api_key},
                            json={"eventType": "contact.associationChange", "active": True}) as r:
        assert r.status == 201
        subscription = await r.json()
    async with session.post("/crm/v3/objects/contacts", json={"properties": {"email": "a@example.com"}}) as r:
        contact = (await r.json())["id"]
    async with session.post("/crm/v3/objects/companies", json={"properties": {"name": "Acme"}}) as r:
        company = (await r.json())["id"]
    association = f"/crm/v4/objects/contacts/{contact}/associations"
    async with session.put(f"{association}/default/companies/{company}") as r:
        assert r.status == 200
    async with session.delete(f"{association}/companies/{company}") as r:
        assert r.status == 204
    await harness.sim.drain_webhooks(10)
    events = [e for _, body, _ in receiver.deliveries for e in json.loads(body)]
    changes = [e for e in events if e["subscriptionType"] == "contact.associationChange"]
    # Only the contact side is subscribed: company.associationChange events would need their own subscription.
    assert [(e["associationType"], e["associationRemoved"]) for e in changes] == [
        ("CONTACT_TO_COMPANY", False), ("CONTACT_TO_COMPANY", True)
    ]
    assert all(e["fromObjectId"] == int(contact) and e["toObjectId"] == int(company) for e in changes)
    assert all(e["subscriptionId"] == int(subscription["id"]) and e["associationTypeId"] == 279 for e in changes)
    assert len({e["eventId"] for e in events}) == len(events)


async def test_restoring_an_archived_record_emits_restore_and_revives_it(setup: Any) -> None:
    harness, receiver, session = setup
    receiver.failures = 0
    async with session.post("/crm/v3/objects/contacts", json={"properties": {"email": "r@example.com"}}) as r:
        contact = (await r.json())["id"]
    async with session.delete(f"/crm/v3/objects/contacts/{contact}") as r:
        assert r.status == 204
    async with session.post(f"/_sandbox/restore/contacts/{contact}") as r:
        assert r.status == 200 and (await r.json())["restored"]["archived"] is False
    async with session.get(f"/crm/v3/objects/contacts/{contact}") as r:
        assert r.status == 200 and (await r.json())["properties"]["email"] == "r@example.com"
    async with session.post(f"/_sandbox/restore/contacts/{contact}") as r:
        assert r.status == 404  # live records are not in the recycle bin
    # A restore that would duplicate a unique value taken meanwhile is refused, as in HubSpot.
    async with session.delete(f"/crm/v3/objects/contacts/{contact}") as r:
        assert r.status == 204
    async with session.post("/crm/v3/objects/contacts", json={"properties": {"email": "r@example.com"}}) as r:
        assert r.status == 201
    async with session.post(f"/_sandbox/restore/contacts/{contact}") as r:
        assert r.status == 409
    await harness.sim.drain_webhooks(10)
    events = [e for _, body, _ in receiver.deliveries for e in json.loads(body)]
    restores = [e for e in events if e["subscriptionType"] == "contact.restore"]
    assert [(e["objectId"], e["changeFlag"]) for e in restores] == [(int(contact), "RESTORED")]
