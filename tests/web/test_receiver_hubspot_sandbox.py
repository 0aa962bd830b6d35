"""End to end: the HubSpot simulator's signed deliveries reach the inbox through the receiver."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.sandbox.hubspot import HubSpotSimulator
from syncd.store import Database, InboxStore
from syncd.web.events import event_from_payload
from syncd.web.receiver import build_webhook_app

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def test_simulator_deliveries_are_verified_and_stored(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    sim = HubSpotSimulator(rng_seed=3)
    sim_server = TestServer(sim.build_app(), host="127.0.0.1", port=0)
    await sim_server.start_server()
    settings = HubSpotConnection(
        system="hubspot",
        client_id="client",
        client_secret=SecretStr(sim.client_secret),
        app_secret=SecretStr(sim.app_secret),
    )
    connector = HubSpotConnector("hubspot", settings)
    await connector.start()
    woken: list[str] = []
    try:
        receiver = await aiohttp_client(
            build_webhook_app(db=database, connectors={"hubspot": connector}, on_event=woken.append)
        )
        sim.set_webhook_targets([str(receiver.make_url("/webhooks/hubspot"))])
        token = sim.tokens.issue_access_token().access_token
        async with aiohttp.ClientSession(
            base_url=str(sim_server.make_url("")), headers={"Authorization": f"Bearer {token}"}
        ) as session:
            async with session.post(
                "/crm/v3/objects/contacts", json={"properties": {"email": "e@x.test"}}
            ) as r:
                contact_id = str((await r.json())["id"])
            async with session.patch(
                f"/crm/v3/objects/contacts/{contact_id}", json={"properties": {"firstname": "Eve"}}
            ) as r:
                assert r.status == 200
        await sim.drain_webhooks(10)
        stored = [event_from_payload(e.event_id, e.payload) for e in await InboxStore(database).pending()]
        assert {(e.object, e.record_id) for e in stored} == {("contacts", contact_id)}
        assert {"created", "updated"} <= {e.kind for e in stored}
        assert woken and set(woken) == {"hubspot"}
        assert sim.stats.webhooks_retried == 0  # every delivery was acknowledged the first time
    finally:
        await connector.close()
        await sim_server.close()
