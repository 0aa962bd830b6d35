"""The receiver with the real `HubSpotConnector`: v3 signatures made by HubSpot's own SDK code."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hubspot.utils.signature import Signature

from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.store import Database, InboxStore, upgrade_database
from syncd.web.receiver import build_webhook_app

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
APP_SECRET = "hubspot-app-secret"
PATH = "/webhooks/hubspot"


def contact_event(event_id: int, object_id: int) -> dict[str, Any]:
    """A delivery item as HubSpot documents it."""
    return {
        "eventId": event_id,
        "subscriptionId": 12345,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": "email",
        "propertyValue": "a@example.com",
        "changeSource": "CRM",
    }


@pytest.fixture
async def hubspot() -> AsyncIterator[HubSpotConnector]:
    """A real HubSpot connector (it makes no call to HubSpot to check a webhook)."""
    settings = HubSpotConnection(
        system="hubspot",
        client_id="client",
        client_secret="client-secret",
        app_secret=APP_SECRET,
    )
    connector = HubSpotConnector("hubspot", settings)
    await connector.start()
    try:
        yield connector
    finally:
        await connector.close()


async def deliver(
    client: TestClient[Any, Any], body: bytes, *, secret: str = APP_SECRET, sent_at_ms: int | None = None
) -> Any:
    """POST `body` signed v3 the way HubSpot does, over the exact URL the receiver is reached at."""
    stamp = str(int(time.time() * 1000) if sent_at_ms is None else sent_at_ms)
    url = str(client.make_url(PATH))
    signature = Signature.get_signature(secret, body.decode(), "v3", url, "POST", stamp)
    headers = {
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return await client.post(PATH, data=body, headers=headers)


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, database: Database, hubspot: HubSpotConnector
) -> TestClient[Any, Any]:
    """The receiver on loopback with the HubSpot connection."""
    return await aiohttp_client(build_webhook_app(db=database, connectors={"hubspot": hubspot}))


async def test_a_good_v3_delivery_lands_in_the_inbox(
    client: TestClient[Any, Any], database: Database
) -> None:
    body = json.dumps([contact_event(1, 101), contact_event(2, 102)]).encode()
    response = await deliver(client, body)
    assert response.status == 200
    pending = await InboxStore(database).pending()
    assert [(e.event_id, e.payload["record_id"]) for e in pending] == [("1", "101"), ("2", "102")]


async def test_the_same_event_twice_is_one_inbox_row(
    client: TestClient[Any, Any], database: Database
) -> None:
    body = json.dumps([contact_event(7, 101)]).encode()
    first, second = await deliver(client, body), await deliver(client, body)
    assert (first.status, second.status) == (200, 200)
    assert [e.event_id for e in await InboxStore(database).pending()] == ["7"]


async def test_a_bad_signature_is_401_and_nothing_is_stored(
    client: TestClient[Any, Any], database: Database
) -> None:
    response = await deliver(client, json.dumps([contact_event(1, 101)]).encode(), secret="someone-else")
    assert response.status == 401
    assert await InboxStore(database).pending() == []


async def test_a_stale_timestamp_is_401_even_when_correctly_signed(
    client: TestClient[Any, Any], database: Database
) -> None:
    ten_minutes_ago = int((time.time() - 600) * 1000)
    response = await deliver(client, json.dumps([contact_event(1, 101)]).encode(), sent_at_ms=ten_minutes_ago)
    assert response.status == 401
    assert "stale" in (await response.json())["error"]
    assert await InboxStore(database).pending() == []


async def test_a_malformed_body_is_400(client: TestClient[Any, Any], database: Database) -> None:
    response = await deliver(client, b'{"eventId": 1}')
    missing_fields = await deliver(client, json.dumps([{"subscriptionType": "contact.creation"}]).encode())
    assert (response.status, missing_fields.status) == (400, 400)
    assert await InboxStore(database).pending() == []


async def test_store_down_is_503(
    aiohttp_client: ClientFactory, tmp_path: Path, hubspot: HubSpotConnector
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    db = await Database.open(f"sqlite:///{folder / 'syncd.db'}")
    try:
        await upgrade_database(db)
        client = await aiohttp_client(build_webhook_app(db=db, connectors={"hubspot": hubspot}))
        await db.close()
        shutil.rmtree(folder)
        response = await deliver(client, json.dumps([contact_event(1, 101)]).encode())
        assert response.status == 503
    finally:
        await db.close()


@pytest.mark.parametrize("depth", [50_000, 100_000])
async def test_deeply_nested_json_with_a_valid_signature_is_400(
    client: TestClient[Any, Any], database: Database, depth: int
) -> None:
    response = await deliver(client, b"[" * depth + b"]" * depth)
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]
    assert await InboxStore(database).pending() == []


async def test_a_delivery_stripped_of_its_v3_headers_is_401_on_a_default_connection(
    client: TestClient[Any, Any], database: Database
) -> None:
    # What an attacker holding one captured delivery would send: its v1 signature, which never expires.
    body = json.dumps([contact_event(1, 101)]).encode()
    v1 = Signature.get_signature(APP_SECRET, body.decode(), "v1")
    response = await client.post(PATH, data=body, headers={"X-HubSpot-Signature": v1,
                                                            "X-HubSpot-Signature-Version": "v1"})
    assert response.status == 401
    assert "v1 signatures are not accepted" in (await response.json())["error"]
    assert await InboxStore(database).pending() == []


async def test_a_30_day_old_event_in_a_fresh_v3_delivery_is_401(
    client: TestClient[Any, Any], database: Database
) -> None:
    event = {**contact_event(1, 101), "occurredAt": int((time.time() - 30 * 86400) * 1000)}
    response = await deliver(client, json.dumps([event]).encode())
    assert response.status == 401
    assert "stale" in (await response.json())["error"]
    assert await InboxStore(database).pending() == []
