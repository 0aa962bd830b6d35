"""The webhook receiver with a QuickBooks Online connection: `intuit-signature` checked against the verifier
token, the names a notification carries stored in the inbox once, bad signatures and bodies refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from syncd.connectors.quickbooks import QuickBooksConnector
from syncd.connectors.quickbooks.settings import QuickBooksConnection
from syncd.store import Database, InboxStore
from syncd.web.events import event_from_payload
from syncd.web.metrics import Metrics
from syncd.web.receiver import build_webhook_app

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
PATH = "/webhooks/books"
REALM = "9341453050298464"
VERIFIER = "b1e3c0de-5a7f-4a51-9d6e-verifier"


@pytest.fixture
async def client(aiohttp_client: ClientFactory, database: Database) -> AsyncIterator[TestClient[Any, Any]]:
    """A receiver serving the `books` connection (a QuickBooks company)."""
    settings = QuickBooksConnection(system="quickbooks", client_id="AB1", client_secret="s",
                                    realm_id=REALM, verifier_token=VERIFIER)  # type: ignore[arg-type]
    app = build_webhook_app(db=database, connectors={"books": QuickBooksConnector("books", settings)},
                            on_event=lambda _name: None, metrics=Metrics())  # fmt: skip
    yield await aiohttp_client(app)


def _body(*entities: tuple[str, str, str]) -> bytes:
    return json.dumps({"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {"entities": [
        {"name": name, "id": record_id, "operation": operation, "lastUpdated": "2026-03-01T09:30:00.000Z"}
        for name, record_id, operation in entities]}}]}).encode()  # fmt: skip


def _signed(body: bytes, key: str = VERIFIER) -> dict[str, str]:
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return {"intuit-signature": base64.b64encode(digest).decode(), "Content-Type": "application/json"}


async def test_a_signed_notification_lands_in_the_inbox_once_as_names(
    client: TestClient[Any, Any], database: Database
) -> None:
    body = _body(("Customer", "58", "Update"), ("Invoice", "130", "Void"))
    first = await client.post(PATH, data=body, headers=_signed(body))
    again = await client.post(PATH, data=body, headers=_signed(body))  # Intuit retries
    assert (first.status, again.status) == (200, 200)
    pending = await InboxStore(database).pending()
    events = [event_from_payload(p.event_id, p.payload) for p in pending]
    assert sorted((e.object, e.record_id, e.kind) for e in events) == [
        ("Customer", "58", "updated"), ("Invoice", "130", "updated")]


async def test_a_signature_with_another_key_or_over_another_body_is_401(
    client: TestClient[Any, Any], database: Database
) -> None:
    body = _body(("Customer", "58", "Create"))
    wrong_key = await client.post(PATH, data=body, headers=_signed(body, key="someone else"))
    other_body = await client.post(PATH, data=body + b" ", headers=_signed(body))
    unsigned = await client.post(PATH, data=body, headers={"Content-Type": "application/json"})
    assert [wrong_key.status, other_body.status, unsigned.status] == [401, 401, 401]
    assert await InboxStore(database).pending() == []


async def test_a_signed_body_that_is_not_a_notification_is_400(
    client: TestClient[Any, Any], database: Database
) -> None:
    body = b'{"hello": "world"}'
    response = await client.post(PATH, data=body, headers=_signed(body))
    assert response.status == 400 and await InboxStore(database).pending() == []
