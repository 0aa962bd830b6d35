"""The HubSpot simulator's Webhooks v3 management API, driven by the official client with the developer API key:
settings, subscriptions (CRUD, batch update), authentication, and deliveries to the settings' target URL only for
active subscriptions. Every response is checked against HubSpot's Webhooks OpenAPI file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hubspot import HubSpot
from hubspot.utils.signature import Signature
from hubspot.webhooks import (
    ApiException,
    BatchInputSubscriptionBatchUpdateRequest,
    SettingsChangeRequest,
    SubscriptionBatchUpdateRequest,
    SubscriptionCreateRequest,
    SubscriptionPatchRequest,
    ThrottlingSettings,
)

from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.sandbox.command import write_config
from syncd.sandbox.hubspot import HubSpotSimulator
from syncd.sandbox.hubspot.app import APP_ID
from syncd.sandbox.runner import Sandbox
from syncd.settings import load_settings
from tests.contracts.hubspot.harness import ContractHarness

TIMEOUT = 10


class Receiver:
    """A loopback webhook endpoint keeping every delivery (headers, body, URL)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes, str]] = []
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    @property
    def url(self) -> str:
        """Where to deliver."""
        return str(self.server.make_url("/hooks"))

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append((dict(request.headers), await request.read(), str(request.url)))
        return web.Response(status=204)

    def events(self) -> list[dict[str, Any]]:
        """Every event received, in arrival order."""
        return [event for _, body, _ in self.deliveries for event in json.loads(body)]


@pytest.fixture
async def hub() -> AsyncIterator[ContractHarness]:
    """A fresh simulator; afterwards every response it gave must match HubSpot's OpenAPI files."""
    harness = ContractHarness(HubSpotSimulator(rng_seed=9))
    await harness.server.start_server()
    yield harness
    await harness.server.close()
    assert harness.check() > 0


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    """Two running receivers: one for the app's target URL, one for control-plane deliveries."""
    pair = (Receiver(), Receiver())
    for receiver in pair:
        await receiver.server.start_server()
    yield pair
    for receiver in pair:
        await receiver.server.close()


@pytest.fixture
def developer(hub: ContractHarness) -> Any:
    """The official client as a developer account uses it: the developer API key, no OAuth token."""
    return HubSpot(api_key=hub.sim.developer_api_key, host=hub.base_url).webhooks


@pytest.fixture
async def crm(hub: ContractHarness) -> AsyncIterator[aiohttp.ClientSession]:
    """Someone working in the portal through the CRM API (an OAuth access token)."""
    async with aiohttp.ClientSession(base_url=hub.base_url, headers=hub.headers()) as session:
        yield session


async def call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """One SDK call off the event loop (the simulator answers on this loop)."""
    return await asyncio.to_thread(method, *args, _request_timeout=TIMEOUT, **kwargs)


async def create_contact(crm: aiohttp.ClientSession, **properties: str) -> str:
    async with crm.post("/crm/v3/objects/contacts", json={"properties": properties}) as r:
        assert r.status == 201
        return str((await r.json())["id"])


async def update_contact(crm: aiohttp.ClientSession, contact_id: str, **properties: str) -> None:
    async with crm.patch(f"/crm/v3/objects/contacts/{contact_id}", json={"properties": properties}) as r:
        assert r.status == 200


def settings_for(url: str) -> SettingsChangeRequest:
    return SettingsChangeRequest(target_url=url, throttling=ThrottlingSettings(max_concurrent_requests=10))


async def test_the_target_url_receives_only_active_subscriptions_events(
    hub: ContractHarness, developer: Any, crm: aiohttp.ClientSession, receivers: tuple[Receiver, Receiver]
) -> None:
    target, _ = receivers
    with pytest.raises(ApiException) as none_yet:
        await call(developer.settings_api.get_all, APP_ID)
    assert none_yet.value.status == 404
    configured = await call(developer.settings_api.configure, APP_ID, settings_for(target.url))
    assert configured.target_url == target.url and configured.throttling.max_concurrent_requests == 10
    read = await call(developer.settings_api.get_all, APP_ID)
    assert read.target_url == target.url and read.created_at == configured.created_at

    # A target but no subscription: a new app hears nothing.
    quiet = await create_contact(crm, email="quiet@example.com")
    await hub.sim.drain_webhooks(10)
    assert target.deliveries == []

    created = await call(developer.subscriptions_api.create, APP_ID,
                         SubscriptionCreateRequest(event_type="contact.creation", active=True))
    # Paused unless switched on, as the spec's default says.
    paused = await call(developer.subscriptions_api.create, APP_ID,
                        SubscriptionCreateRequest(event_type="contact.propertyChange", property_name="firstname"))
    assert created.active is True and paused.active is False
    contact = await create_contact(crm, email="ada@example.com", firstname="Ada")
    await update_contact(crm, contact, firstname="Augusta")
    await hub.sim.drain_webhooks(10)
    assert [(e["subscriptionType"], e["objectId"]) for e in target.events()] == [("contact.creation", int(contact))]

    await call(developer.subscriptions_api.update, paused.id, APP_ID, SubscriptionPatchRequest(active=True))
    await update_contact(crm, contact, firstname="Ada")
    await update_contact(crm, quiet, lastname="Not subscribed")
    await hub.sim.drain_webhooks(10)
    [change] = target.events()[1:]
    assert (change["subscriptionType"], change["propertyName"], change["propertyValue"]) == (
        "contact.propertyChange", "firstname", "Ada")
    assert change["subscriptionId"] == int(paused.id) and change["appId"] == APP_ID
    for headers, body, url in target.deliveries:
        assert Signature.is_valid(headers["X-HubSpot-Signature-v3"], hub.sim.app_secret, body.decode(),
                                  http_uri=url, http_method="POST", signature_version="v3",
                                  timestamp=headers["X-HubSpot-Request-Timestamp"])

    # Settings cleared: the subscriptions stay, but nothing is delivered any more.
    await call(developer.settings_api.clear, APP_ID)
    await update_contact(crm, contact, firstname="Augusta")
    await hub.sim.drain_webhooks(10)
    assert len(target.events()) == 2
    assert len((await call(developer.subscriptions_api.get_all, APP_ID)).results) == 2


async def test_subscriptions_crud_batch_update_and_validation(
    hub: ContractHarness, developer: Any, crm: aiohttp.ClientSession
) -> None:
    api = developer.subscriptions_api
    assert (await call(api.get_all, APP_ID)).results == []  # a new app has none
    deletion = await call(api.create, APP_ID, SubscriptionCreateRequest(event_type="deal.deletion"))
    email = await call(api.create, APP_ID, SubscriptionCreateRequest(
        event_type="contact.propertyChange", property_name="email", active=True))
    assert email.property_name == "email" and email.event_type == "contact.propertyChange"
    assert (await call(api.get_by_id, int(deletion.id), APP_ID)).event_type == "deal.deletion"

    batch = BatchInputSubscriptionBatchUpdateRequest(inputs=[
        SubscriptionBatchUpdateRequest(id=int(deletion.id), active=True),
        SubscriptionBatchUpdateRequest(id=4567, active=True),
    ])
    partial = await call(api.update_batch, APP_ID, batch)
    assert [(s.id, s.active) for s in partial.results] == [(deletion.id, True)]
    assert partial.num_errors == 1 and partial.errors[0].category == "SUBSCRIPTION_ID_NOT_FOUND"
    assert partial.errors[0].context == {"subscriptionIds": ["4567"]}

    await call(api.archive, int(email.id), APP_ID)
    with pytest.raises(ApiException) as gone:
        await call(api.get_by_id, int(email.id), APP_ID)
    assert gone.value.status == 404
    assert [s.id for s in (await call(api.get_all, APP_ID)).results] == [deletion.id]

    bad_requests = [
        {"eventType": "contact.propertyChange"},  # no propertyName
        {"eventType": "contact.propertyChange", "propertyName": "no_such_property"},
        {"eventType": "contact.nope"},
    ]
    for body in bad_requests:
        # Sent raw: the client's own checks would refuse some of these before sending them.
        async with crm.post(f"/webhooks/v3/{APP_ID}/subscriptions", json=body,
                            params={"hapikey": hub.sim.developer_api_key}) as r:
            assert r.status == 400, body
            assert (await r.json())["category"] == "VALIDATION_ERROR"
    with pytest.raises(ApiException) as duplicate:
        await call(api.create, APP_ID, SubscriptionCreateRequest(event_type="deal.deletion", active=True))
    assert duplicate.value.status == 409


async def test_only_the_developer_key_opens_the_management_api(hub: ContractHarness) -> None:
    sim = hub.sim
    assert sim.developer_api_key not in (sim.app_secret, sim.client_secret)
    invalid, missing = "The API key provided is invalid", "Authentication credentials not found"
    cases = {
        "wrong key": (HubSpot(api_key="not-the-key", host=hub.base_url), invalid),
        "the app secret": (HubSpot(api_key=sim.app_secret, host=hub.base_url), invalid),
        # A portal's OAuth token is no developer credential: the webhooks API ignores it, so no key is sent.
        "an OAuth token": (HubSpot(access_token=sim.tokens.issue_access_token().access_token, host=hub.base_url),
                           missing),
    }
    for what, (client, message) in cases.items():
        with pytest.raises(ApiException) as refused:
            await call(client.webhooks.subscriptions_api.get_all, APP_ID)
        body = json.loads(refused.value.body)
        assert (refused.value.status, body["status"], body["category"]) == (
            401, "error", "INVALID_AUTHENTICATION"), what
        assert body["message"].startswith(message), what
    right = HubSpot(api_key=sim.developer_api_key, host=hub.base_url).webhooks
    with pytest.raises(ApiException) as other_app:
        await call(right.subscriptions_api.get_all, APP_ID + 1)
    assert other_app.value.status == 404


async def test_control_plane_targets_share_the_apps_event_ids(
    hub: ContractHarness, developer: Any, crm: aiohttp.ClientSession, receivers: tuple[Receiver, Receiver]
) -> None:
    target, control = receivers
    hub.sim.set_webhook_targets([control.url])
    await call(developer.settings_api.configure, APP_ID, settings_for(target.url))
    await call(developer.subscriptions_api.create, APP_ID,
               SubscriptionCreateRequest(event_type="contact.creation", active=True))
    contact = await create_contact(crm, email="grace@example.com")
    await update_contact(crm, contact, firstname="Grace")
    await hub.sim.drain_webhooks(10)
    [app_event] = target.events()
    by_type = {e["subscriptionType"]: e for e in control.events()}
    # The creation reaches the control-plane target as the app's own event (the same id, so a receiver that is
    # both dedupes it); the sandbox's catch-all still brings what the app did not subscribe to.
    assert set(by_type) == {"contact.creation", "contact.propertyChange"}
    assert by_type["contact.creation"]["eventId"] == app_event["eventId"]


async def test_settings_subscriptions_and_key_survive_a_restart_and_reset_all_clears_them(
    hub: ContractHarness, developer: Any, receivers: tuple[Receiver, Receiver]
) -> None:
    target, _ = receivers
    await call(developer.settings_api.configure, APP_ID, settings_for(target.url))
    await call(developer.subscriptions_api.create, APP_ID,
               SubscriptionCreateRequest(event_type="company.creation", active=True))
    state = json.loads(json.dumps(hub.sim.dump_state()))
    restarted = HubSpotSimulator(rng_seed=123)
    restarted.load_state(state)
    assert restarted.developer_api_key == hub.sim.developer_api_key
    assert restarted.app_settings is not None and restarted.app_settings.target_url == target.url
    assert restarted.app_dispatcher.targets == [target.url]
    assert [s["eventType"] for s in restarted.subscriptions.items] == ["company.creation"]

    hub.sim.restore_defaults()
    with pytest.raises(ApiException):
        await call(developer.settings_api.get_all, APP_ID)
    assert (await call(developer.subscriptions_api.get_all, APP_ID)).results == []


async def test_the_written_sandbox_config_carries_the_app_id_and_developer_key(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path / "sandbox", systems=("hubspot",)) as sandbox:
        described = sandbox.descriptor["hubspot"]
        assert described["app_id"] == str(APP_ID)
        sim = sandbox.hubspot
        assert isinstance(sim, HubSpotSimulator) and described["developer_api_key"] == sim.developer_api_key
        config = tmp_path / "syncd.toml"
        write_config(config, sandbox.descriptor)
    connection = load_settings(config).connections["hubspot"]
    # With both, `syncd run --config` registers HubSpot's webhooks itself.
    assert isinstance(connection, HubSpotConnection) and connection.app_id == APP_ID
    assert connection.developer_api_key is not None
    assert connection.developer_api_key.get_secret_value() == described["developer_api_key"]
