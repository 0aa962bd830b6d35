"""The webhook receiver: only verified, well-formed deliveries reach the inbox; only stored ones get 200."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from syncd.store import Database, InboxStore, upgrade_database
from syncd.web.events import event_from_payload
from syncd.web.metrics import Metrics
from syncd.web.receiver import build_webhook_app, webhook_url
from tests.web.conftest import SignedSource, sign

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
PATH = "/webhooks/crm"


@pytest.fixture
def woken() -> list[str]:
    """Connections the receiver woke the engine for."""
    return []


@pytest.fixture
def metrics() -> Metrics:
    """A fresh registry per test."""
    return Metrics()


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, database: Database, woken: list[str], metrics: Metrics
) -> AsyncIterator[TestClient[Any, Any]]:
    """A receiver on loopback serving the `crm` connection."""
    app = build_webhook_app(
        db=database, connectors={"crm": SignedSource()}, on_event=woken.append, metrics=metrics
    )
    yield await aiohttp_client(app)


async def post_signed(client: TestClient[Any, Any], events: list[dict[str, str]], path: str = PATH) -> Any:
    """POST a correctly signed delivery and return the response."""
    body = json.dumps(events).encode()
    signature = sign("POST", str(client.make_url(path)), body)
    return await client.post(path, data=body, headers={"X-Test-Signature": signature})


def delivered(metrics: Metrics, connection: str, outcome: str) -> float:
    """How many deliveries the counter saw with this outcome."""
    value = metrics.registry.get_sample_value(
        "syncd_webhooks_received_total", {"connection": connection, "outcome": outcome}
    )
    return value or 0.0


async def test_a_verified_delivery_is_stored_then_acknowledged_and_wakes_the_engine(
    client: TestClient[Any, Any], database: Database, woken: list[str], metrics: Metrics
) -> None:
    response = await post_signed(client, [{"id": "e1", "record": "101"}, {"id": "e2", "record": "102"}])
    assert response.status == 200
    assert await response.json() == {"received": 2, "new": 2}
    pending = await InboxStore(database).pending()
    assert [(e.connection, e.event_id) for e in pending] == [("crm", "e1"), ("crm", "e2")]
    event = event_from_payload(pending[0].event_id, pending[0].payload)
    assert (event.object, event.record_id, event.kind) == ("contacts", "101", "updated")
    assert woken == ["crm"]
    assert delivered(metrics, "crm", "accepted") == 1


async def test_a_redelivered_event_is_stored_once(
    client: TestClient[Any, Any], database: Database, woken: list[str], metrics: Metrics
) -> None:
    first = await post_signed(client, [{"id": "e1", "record": "101"}])
    again = await post_signed(client, [{"id": "e1", "record": "101"}, {"id": "e3", "record": "103"}])
    same = await post_signed(client, [{"id": "e3", "record": "103"}])
    assert [first.status, again.status, same.status] == [200, 200, 200]
    assert [(await r.json())["new"] for r in (first, again, same)] == [1, 1, 0]
    assert sorted(e.event_id for e in await InboxStore(database).pending()) == ["e1", "e3"]
    assert woken == ["crm", "crm"]  # nothing new in the last delivery, nothing to wake for
    assert delivered(metrics, "crm", "duplicate") == 1


async def test_a_bad_signature_is_401_and_stores_nothing(
    client: TestClient[Any, Any], database: Database, woken: list[str], metrics: Metrics
) -> None:
    body = json.dumps([{"id": "e1", "record": "101"}]).encode()
    wrong = sign("POST", str(client.make_url(PATH)), body, secret="not-the-secret")
    response = await client.post(PATH, data=body, headers={"X-Test-Signature": wrong})
    unsigned = await client.post(PATH, data=body)
    assert (response.status, unsigned.status) == (401, 401)
    assert await response.json() == {"error": "bad signature"}
    assert await InboxStore(database).pending() == []
    assert woken == []
    assert delivered(metrics, "crm", "rejected") == 2


async def test_a_signature_over_another_body_is_401(client: TestClient[Any, Any], database: Database) -> None:
    signed_for = json.dumps([{"id": "e1", "record": "101"}]).encode()
    tampered = json.dumps([{"id": "e1", "record": "999"}]).encode()
    signature = sign("POST", str(client.make_url(PATH)), signed_for)
    response = await client.post(PATH, data=tampered, headers={"X-Test-Signature": signature})
    assert response.status == 401
    assert await InboxStore(database).pending() == []


async def test_a_malformed_body_is_400_and_stores_nothing(
    client: TestClient[Any, Any], database: Database, metrics: Metrics
) -> None:
    body = b'{"not": "a list"'
    response = await client.post(
        PATH, data=body, headers={"X-Test-Signature": sign("POST", str(client.make_url(PATH)), body)}
    )
    assert response.status == 400
    assert await response.json() == {"error": "malformed body"}
    assert await InboxStore(database).pending() == []
    assert delivered(metrics, "crm", "malformed") == 1


async def test_an_unknown_connection_is_404_without_growing_metric_labels(
    client: TestClient[Any, Any], metrics: Metrics
) -> None:
    response = await post_signed(client, [{"id": "e1", "record": "1"}], path="/webhooks/nobody")
    assert response.status == 404
    assert delivered(metrics, "unknown", "unknown_connection") == 1
    assert delivered(metrics, "nobody", "unknown_connection") == 0


async def test_a_body_over_the_cap_is_413_whether_announced_or_streamed(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    app = build_webhook_app(db=database, connectors={"crm": SignedSource()}, max_body=1024)
    client = await aiohttp_client(app)
    big = json.dumps([{"id": f"e{i}", "record": "x" * 50} for i in range(40)]).encode()
    assert len(big) > 1024
    announced = await client.post(PATH, data=big, headers={"X-Test-Signature": "x"})

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    streamed = await client.post(PATH, data=chunks(), headers={"X-Test-Signature": "x"})
    assert (announced.status, streamed.status) == (413, 413)
    assert await InboxStore(database).pending() == []


async def test_store_down_is_503_so_the_sender_retries(
    aiohttp_client: ClientFactory, tmp_path: Path, woken: list[str], metrics: Metrics
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    db = await Database.open(f"sqlite:///{folder / 'syncd.db'}")
    try:
        await upgrade_database(db)
        app = build_webhook_app(
            db=db, connectors={"crm": SignedSource()}, on_event=woken.append, metrics=metrics
        )
        client = await aiohttp_client(app)
        # The store's disk goes away: every new connection fails to open.
        await db.close()
        shutil.rmtree(folder)
        response = await post_signed(client, [{"id": "e1", "record": "101"}])
        assert response.status == 503
        assert woken == []
        assert delivered(metrics, "crm", "store_error") == 1
    finally:
        await db.close()


async def test_a_failing_wake_up_still_acknowledges_the_stored_delivery(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    def broken(_connection: str) -> None:
        raise RuntimeError("engine not running")

    app = build_webhook_app(db=database, connectors={"crm": SignedSource()}, on_event=broken)
    client = await aiohttp_client(app)
    response = await post_signed(client, [{"id": "e1", "record": "101"}])
    assert response.status == 200
    assert len(await InboxStore(database).pending()) == 1


async def test_the_signed_url_is_the_request_url_by_default_and_includes_the_query(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    source = SignedSource()
    client = await aiohttp_client(build_webhook_app(db=database, connectors={"crm": source}))
    path = PATH + "?a=1&b=%20x"
    response = await post_signed(client, [{"id": "e1", "record": "1"}], path=path)
    assert response.status == 200
    assert source.urls_seen == [f"http://127.0.0.1:{client.port}{path}"]
    # A forwarded header is not trusted unless configured: the sender's claim does not change the URL.
    await client.post(
        PATH, data=b"[]", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test"}
    )
    assert source.urls_seen[-1] == f"http://127.0.0.1:{client.port}{PATH}"


async def test_the_public_url_defines_scheme_host_and_prefix(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    source = SignedSource()
    public = "https://sync.example.com/syncd/"
    app = build_webhook_app(db=database, connectors={"crm": source}, public_url=public)
    client = await aiohttp_client(app)
    body = json.dumps([{"id": "e1", "record": "1"}]).encode()
    registered = webhook_url(public, "crm")
    assert registered == "https://sync.example.com/syncd/webhooks/crm"
    response = await client.post(
        PATH, data=body, headers={"X-Test-Signature": sign("POST", registered, body)}
    )
    assert response.status == 200


async def test_forwarded_headers_are_honoured_only_when_trusted(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    source = SignedSource()
    app = build_webhook_app(db=database, connectors={"crm": source}, trust_forwarded=True)
    client = await aiohttp_client(app)
    body = json.dumps([{"id": "e1", "record": "1"}]).encode()
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "hooks.example.com, inner-proxy",
        "X-Test-Signature": sign("POST", "https://hooks.example.com" + PATH, body),
    }
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 200


def test_a_public_url_that_cannot_be_signed_is_refused_at_start(database: Database) -> None:
    with pytest.raises(ValueError, match="public_url"):
        build_webhook_app(db=database, connectors={}, public_url="sync.example.com")
