"""The Salesforce simulator's change feed: CDC-shaped events, signed, sent to the webhook targets."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from syncd.sandbox.salesforce import SalesforceSimulator
from syncd.sandbox.salesforce.cdc import SIGNATURE_HEADER
from syncd.sandbox.salesforce.schema import STANDARD_PRICEBOOK_ID

API = "/services/data/v59.0"


class Receiver:
    """A webhook target that records every delivery."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        """Store the delivery and acknowledge it."""
        self.deliveries.append((dict(request.headers), await request.read()))
        return web.Response(status=200)

    def events(self) -> list[dict[str, Any]]:
        """Every event received, in delivery order."""
        return [event for _, body in self.deliveries for event in json.loads(body)]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A running webhook target and its URL."""
    target = Receiver()
    app = web.Application()
    app.router.add_post("/cdc", target.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield target, str(server.make_url("/cdc"))
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[tuple[SalesforceSimulator, TestClient[web.Request, web.Application]]]:
    """The simulator over plain http (TLS is not what these tests are about) and a client for it."""
    simulator = SalesforceSimulator(rng_seed=3)
    async with TestClient(TestServer(simulator.build_app(), host="127.0.0.1", port=0)) as test_client:
        yield simulator, test_client


async def test_changes_are_posted_as_signed_cdc_events(
    receiver: tuple[Receiver, str], client: tuple[SalesforceSimulator, TestClient[web.Request, web.Application]]
) -> None:
    target, url = receiver
    simulator, http = client
    simulator.set_webhook_targets([url])
    headers = {
        "Authorization": "Bearer " + simulator.tokens.issue_access_token().access_token,
        "Sforce-Call-Options": "client=syncd",
    }
    created = await http.post(
        f"{API}/sobjects/Contact/", json={"LastName": "Feed", "Email": "f@x.com"}, headers=headers
    )
    assert created.status == 201
    record_id = (await created.json())["id"]
    updated = await http.patch(
        f"{API}/sobjects/Contact/{record_id}",
        json={"Email": None, "Title": "CTO"},
        headers={"Authorization": headers["Authorization"]},
    )
    assert updated.status == 204
    deleted = await http.delete(f"{API}/sobjects/Contact/{record_id}", headers=headers)
    assert deleted.status == 204
    await simulator.drain_webhooks(5.0)

    secret = simulator.credentials("https://127.0.0.1:1")["client_secret"]
    for delivery_headers, body in target.deliveries:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert delivery_headers[SIGNATURE_HEADER] == expected
    events = target.events()
    assert [e["ChangeEventHeader"]["changeType"] for e in events] == ["CREATE", "UPDATE", "DELETE"]
    create, update, delete = events
    assert create["ChangeEventHeader"]["entityName"] == "Contact"
    assert create["ChangeEventHeader"]["recordIds"] == [record_id]
    assert create["ChangeEventHeader"]["changeOrigin"] == "com/salesforce/api/rest/59.0;client=syncd"
    assert create["LastName"] == "Feed" and create["Email"] == "f@x.com"
    # The update came without Sforce-Call-Options: it is not marked as ours.
    assert update["ChangeEventHeader"]["changeOrigin"] == "com/salesforce/api/rest/59.0"
    assert {"Email", "Title", "LastModifiedDate"} <= set(update["ChangeEventHeader"]["changedFields"])
    assert update["ChangeEventHeader"]["nulledFields"] == ["Email"]
    assert update["Title"] == "CTO" and "Email" not in update
    assert delete["ChangeEventHeader"]["recordIds"] == [record_id]
    for event in events:
        header = event["ChangeEventHeader"]
        assert {"transactionKey", "sequenceNumber", "commitTimestamp", "commitUser", "commitNumber"} <= set(header)


async def test_a_rolled_back_collection_publishes_nothing(
    receiver: tuple[Receiver, str], client: tuple[SalesforceSimulator, TestClient[web.Request, web.Application]]
) -> None:
    target, url = receiver
    simulator, http = client
    simulator.set_webhook_targets([url])
    auth = {"Authorization": "Bearer " + simulator.tokens.issue_access_token().access_token}
    records = [{"attributes": {"type": "Account"}, "Name": "Fine"}, {"attributes": {"type": "Account"}}]
    response = await http.post(f"{API}/composite/sobjects", json={"allOrNone": True, "records": records}, headers=auth)
    assert response.status == 200
    response = await http.post(f"{API}/composite/sobjects", json={"records": records[:1]}, headers=auth)
    await simulator.drain_webhooks(5.0)
    events = target.events()
    assert len(events) == 1 and events[0]["ChangeEventHeader"]["changeType"] == "CREATE"
    assert simulator.records("Account") is not None and len(simulator.records("Account") or []) == 1


async def test_line_item_changes_announce_the_opportunity_amount(
    receiver: tuple[Receiver, str], client: tuple[SalesforceSimulator, TestClient[web.Request, web.Application]]
) -> None:
    target, url = receiver
    simulator, http = client
    auth = {"Authorization": "Bearer " + simulator.tokens.issue_access_token().access_token}
    opp = await http.post(
        f"{API}/sobjects/Opportunity",
        headers=auth,
        json={"Name": "O", "StageName": "Prospecting", "CloseDate": "2025-01-31"},
    )
    opp_id = (await opp.json())["id"]
    product = await http.post(f"{API}/sobjects/Product2", headers=auth, json={"Name": "Widget", "IsActive": True})
    product_id = (await product.json())["id"]
    entry = await http.post(
        f"{API}/sobjects/PricebookEntry",
        headers=auth,
        json={"Pricebook2Id": STANDARD_PRICEBOOK_ID, "Product2Id": product_id, "UnitPrice": 12, "IsActive": True},
    )
    assert entry.status == 201
    simulator.set_webhook_targets([url])
    line = await http.post(
        f"{API}/sobjects/OpportunityLineItem",
        headers=auth,
        json={"OpportunityId": opp_id, "Product2Id": product_id, "Quantity": 2, "UnitPrice": 10},
    )
    assert line.status == 201
    await simulator.drain_webhooks(5.0)
    events = target.events()
    assert [e["ChangeEventHeader"]["entityName"] for e in events] == ["OpportunityLineItem", "Opportunity"]
    assert len({e["ChangeEventHeader"]["transactionKey"] for e in events}) == 1
    assert events[1]["Amount"] == 20.0
    # The first line puts the opportunity on the standard price book, in the same change.
    assert events[1]["Pricebook2Id"] == STANDARD_PRICEBOOK_ID
