"""End to end: the Xero simulator's intent-to-receive check passes against syncd's receiver, and its signed
deliveries reach the inbox; payments, which Xero announces to nobody, are not among them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from syncd.connectors.base import Create
from syncd.sandbox.xero import XeroSimulator
from syncd.store import Database, InboxStore
from syncd.web.events import event_from_payload
from syncd.web.receiver import build_webhook_app
from tests.connectors.xero_fixtures import open_xero
from tests.contracts.xero.harness import ContractHarness

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def test_intent_to_receive_then_signed_events_reach_the_inbox(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    harness = ContractHarness(XeroSimulator(rng_seed=4))
    await harness.server.start_server()
    try:
        async with open_xero(harness) as connector:
            receiver = await aiohttp_client(build_webhook_app(db=database, connectors={"xero": connector}))
            url = str(receiver.make_url("/webhooks/xero"))
            harness.sim.set_webhook_targets([url])
            await harness.sim.drain_webhooks(10)
            assert harness.sim.intent == {url: True}  # 200 to the signed delivery, 401 to the forged one
            [made] = await connector.create_many("Contacts", [Create("syncd-w1", {"Name": "Webhook Co"})])
            assert made.id
            await harness.sim.drain_webhooks(10)
        stored = [event_from_payload(e.event_id, e.payload) for e in await InboxStore(database).pending()]
        assert [(e.object, e.record_id, e.kind) for e in stored] == [("Contacts", made.id, "created")]
        assert harness.sim.stats.webhooks_retried == 0
        assert harness.check() > 0
    finally:
        await harness.server.close()
