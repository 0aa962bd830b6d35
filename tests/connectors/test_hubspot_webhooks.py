"""HubSpot webhooks: deliveries from the simulator verify and parse; forged, stale or malformed ones are refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.connectors.base import ChangeEvent, Create, WebhookRejected, WebhookRequest
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.hubspot.webhooks import parse_events, verify_signature
from syncd.errors import ConfigError, FatalError
from syncd.sandbox.hubspot import HubSpotSimulator
from syncd.sandbox.runner import Sandbox
from syncd.settings import load_settings
from tests.connectors.conftest import ControlPlane
from tests.connectors.hubspot_fixtures import hubspot_connector

# The documented test vector (contracts README §1).
VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
# (HubSpot's own example body, with appId last: the key order the published signature was computed over.)
VECTOR_BODY = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
               b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
               b'"changeFlag":"NEW","appId":54321}]')
VECTOR_V1 = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
# When the documented vector's event happened (its occurredAt), and the dawn of time for the short examples.
VECTOR_NOW = datetime.fromtimestamp(1564113600, UTC)
EPOCH = datetime.fromtimestamp(0, UTC)


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
    verify_signature(request, VECTOR_SECRET, legacy=["v1"])
    with pytest.raises(WebhookRejected):
        verify_signature(request, "another-secret", legacy=["v1"])

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


def test_a_delivery_without_v3_is_refused_unless_the_connection_takes_v1() -> None:
    # The documented v1 vector, stripped of nothing but v3: the default connection wants v3.
    request = WebhookRequest("POST", "https://example.com/hook", {"X-HubSpot-Signature": VECTOR_V1,
                                                                   "X-HubSpot-Signature-Version": "v1"}, VECTOR_BODY)
    with pytest.raises(WebhookRejected, match="v1 signatures are not accepted") as refused:
        verify_signature(request, VECTOR_SECRET)
    assert refused.value.status == 401
    assert HubSpotConnection(system="hubspot", client_id="a", client_secret="s").legacy_webhook_signatures == []
    verify_signature(request, VECTOR_SECRET, legacy=["v1"])
    with pytest.raises(WebhookRejected, match="v2 signatures are not accepted"):
        headers = {"X-HubSpot-Signature": VECTOR_V1, "X-HubSpot-Signature-Version": "v2"}
        verify_signature(WebhookRequest("POST", "https://example.com/hook", headers, VECTOR_BODY), VECTOR_SECRET,
                         legacy=["v1"])


@pytest.mark.parametrize(("offset", "word"), [(timedelta(days=-30), "stale"), (timedelta(days=-2), "stale"),
                                              (timedelta(hours=1), "future")])
def test_an_event_too_old_or_from_the_future_is_refused_whatever_the_signature(offset: timedelta, word: str) -> None:
    # A v1 delivery is signed for ever, and a v3 retry carries a fresh request time: the event's own time counts.
    body = VECTOR_BODY.replace(b"1564113600000", str(int((VECTOR_NOW + offset).timestamp() * 1000)).encode())
    fresh = b'{"eventId":2,"subscriptionType":"contact.creation","objectId":1,"occurredAt":1564113600000}'
    with pytest.raises(WebhookRejected, match=word) as refused:
        parse_events(body[:-1] + b"," + fresh + b"]", ["contacts"], now=VECTOR_NOW)
    assert refused.value.status == 401
    # A retry within HubSpot's day of retries is still taken.
    retried = VECTOR_BODY.replace(b"1564113600000", str(int((VECTOR_NOW - timedelta(hours=23)).timestamp() * 1000)
                                                        ).encode())
    assert len(parse_events(retried, ["contacts"], now=VECTOR_NOW)) == 1


def test_parsing_events_merges_and_malformed_bodies() -> None:
    events = parse_events(VECTOR_BODY, ["contacts"], now=VECTOR_NOW)
    assert [(e.event_id, e.object, e.record_id, e.kind) for e in events] == [("1", "contacts", "123", "created")]
    merge = json.dumps([{"eventId": 9, "subscriptionType": "contact.merge", "objectId": 5, "occurredAt": 1,
                         "primaryObjectId": 5, "mergedObjectIds": [7]}]).encode()
    parsed = parse_events(merge, ["contacts"], now=EPOCH)
    assert [(e.record_id, e.kind, e.merged_into) for e in parsed] == [("5", "updated", None), ("7", "merged", "5")]
    assert parse_events(b'[{"eventId":1,"subscriptionType":"ticket.creation","objectId":1,"occurredAt":1}]',
                        ["contacts"], now=EPOCH) == []
    for bad in (b"{}", b"not json", b'[{"eventId": 1}]', b"[1]"):
        with pytest.raises(WebhookRejected) as caught:
            parse_events(bad, ["contacts"])
        assert caught.value.status == 400


async def test_register_webhooks_needs_an_app_id(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        assert await hubspot.register_webhooks("http://127.0.0.1:1/hooks", READ) is False


def webhook_keys(sandbox: Sandbox) -> dict[str, Any]:
    """The app id and developer API key `syncd sandbox` describes, as connection settings."""
    described = sandbox.descriptor["hubspot"]
    return {"app_id": int(described["app_id"]), "developer_api_key": described["developer_api_key"]}


async def developer_call(session: aiohttp.ClientSession, sandbox: Sandbox, method: str, path: str,
                         body: dict[str, Any] | None = None) -> Any:
    """One Webhooks API call as the app's developer makes it (with the developer API key); its JSON answer."""
    keys = webhook_keys(sandbox)
    url = f"{sandbox.descriptor['hubspot']['base_url']}/webhooks/v3/{keys['app_id']}{path}"
    async with session.request(method, url, json=body, params={"hapikey": keys["developer_api_key"]}) as response:
        response.raise_for_status()
        return await response.json()


def hubspot_simulator(sandbox: Sandbox) -> HubSpotSimulator:
    """The sandbox's HubSpot simulator, typed as such."""
    sim = sandbox.hubspot
    assert isinstance(sim, HubSpotSimulator)
    return sim


# What a mapping reads: properties a user edits, a read-only one, one the portal lacks, and the deal's
# association and line-item fields (not properties).
READ: dict[str, list[str]] = {
    "contacts": ["email", "firstname", "lastmodifieddate", "no_such_property"],
    "deals": ["dealname", "associations.contacts", "line_items"],
}
EXPECTED = {
    *{(f"{singular}.{kind}", None) for singular in ("contact", "deal")
      for kind in ("creation", "deletion", "merge", "restore")},
    ("contact.propertyChange", "email"), ("contact.propertyChange", "firstname"), ("contact.privacyDeletion", None),
    ("deal.propertyChange", "dealname"), ("deal.associationChange", None),
}
CREATE_ROUTE = "POST /webhooks/v3/{appId}/subscriptions"


async def app_subscriptions(session: aiohttp.ClientSession, sandbox: Sandbox) -> list[dict[str, Any]]:
    """The app's subscriptions as the Webhooks API lists them."""
    return list((await developer_call(session, sandbox, "GET", "/subscriptions"))["results"])


def identities(subscriptions: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(eventType, propertyName) of each subscription, duplicates kept."""
    return sorted(((s["eventType"], s.get("propertyName")) for s in subscriptions), key=str)


async def test_register_webhooks_subscribes_only_what_the_mappings_read_and_only_once(
    reset_sandbox: Sandbox, control_session: aiohttp.ClientSession, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    sim = hubspot_simulator(reset_sandbox)
    async with hubspot_connector(reset_sandbox, **webhook_keys(reset_sandbox)) as hubspot:
        assert await hubspot.register_webhooks(url, READ) is True
        assert (await developer_call(control_session, reset_sandbox, "GET", "/settings"))["targetUrl"] == url
        subscriptions = await app_subscriptions(control_session, reset_sandbox)
        # No companies or line items, no read-only or unknown property, nothing for an unread property.
        assert identities(subscriptions) == sorted(EXPECTED, key=str)
        assert all(s["active"] for s in subscriptions)
        assert sim.stats.requests[CREATE_ROUTE] == len(EXPECTED)

        # Someone pauses one in the developer portal; registering again switches it back on, creates nothing.
        paused = next(s for s in subscriptions if s["eventType"] == "contact.creation")
        await developer_call(control_session, reset_sandbox, "PATCH", f"/subscriptions/{paused['id']}",
                             {"active": False})
        assert await hubspot.register_webhooks(url, READ) is True
        again = await app_subscriptions(control_session, reset_sandbox)
        assert sim.stats.requests[CREATE_ROUTE] == len(EXPECTED)
        assert [s["id"] for s in again] == [s["id"] for s in subscriptions] and all(s["active"] for s in again)

        # A mapping that reads one more property adds just that subscription.
        assert await hubspot.register_webhooks(url, {**READ, "contacts": [*READ["contacts"], "lastname"]})
        assert sim.stats.requests[CREATE_ROUTE] == len(EXPECTED) + 1
        assert ("contact.propertyChange", "lastname") in identities(
            await app_subscriptions(control_session, reset_sandbox))

        # The app's deliveries now come to `url`, with nothing set through the control plane.
        contact = (await hubspot.create_many("contacts", [Create("w2", {"email": "w2@x.com"})]))[0].id
        async with found.arrived:
            await asyncio.wait_for(found.arrived.wait_for(lambda: bool(found.requests)), 10)
        events = []
        for request in found.requests:
            hubspot.verify_webhook(request)
            events.extend(hubspot.parse_webhook(request))
        assert ("contacts", contact, "created") in {(e.object, e.record_id, e.kind) for e in events}


class LossyProxy:
    """A loopback proxy in front of the HubSpot simulator standing in for the network between us and HubSpot:
    it can lose the answer to a subscription create after the simulator made it (the connection drops on the
    way back), and let someone else create a subscription between our listing and our creates."""

    def __init__(self, upstream: str, session: aiohttp.ClientSession) -> None:
        self.upstream = upstream.rstrip("/")
        self.session = session
        self.url = ""  # set once it listens
        self.answers_to_lose = 0
        self.lost = 0
        self.after_first_list: Callable[[], Awaitable[None]] | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self.session.request(request.method, self.upstream + request.path_qs, data=body,
                                        headers=headers) as answer:
            payload = await answer.read()
            status, content_type = answer.status, answer.headers.get("Content-Type")
        subscriptions = request.path.startswith("/webhooks/v3/") and request.path.endswith("/subscriptions")
        if subscriptions and request.method == "GET" and self.after_first_list is not None:
            meddle, self.after_first_list = self.after_first_list, None
            await meddle()
        if subscriptions and request.method == "POST" and self.answers_to_lose > 0:
            self.answers_to_lose -= 1
            self.lost += 1
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("answer lost on its way back")
        return web.Response(status=status, body=payload,
                            headers={"Content-Type": content_type} if content_type else None)


@pytest.fixture
async def proxy(reset_sandbox: Sandbox, control_session: aiohttp.ClientSession) -> AsyncIterator[LossyProxy]:
    """A running LossyProxy to the sandbox's HubSpot; `proxy.url` is its base URL."""
    lossy = LossyProxy(reset_sandbox.descriptor["hubspot"]["base_url"], control_session)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", lossy.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    lossy.url = str(server.make_url("")).rstrip("/")
    try:
        yield lossy
    finally:
        await server.close()


async def test_a_lost_create_answer_is_looked_up_not_sent_again(
    reset_sandbox: Sandbox, control_session: aiohttp.ClientSession, proxy: LossyProxy
) -> None:
    sim = hubspot_simulator(reset_sandbox)
    proxy.answers_to_lose = 2
    async with hubspot_connector(reset_sandbox, base_url=proxy.url, **webhook_keys(reset_sandbox)
                                 ) as hubspot:
        assert await hubspot.register_webhooks("http://127.0.0.1:1/hooks", READ) is True
    assert proxy.lost == 2
    assert identities(await app_subscriptions(control_session, reset_sandbox)) == sorted(EXPECTED, key=str)
    # One create per subscription: the two whose answers were lost were found by listing, not sent again.
    assert sim.stats.requests[CREATE_ROUTE] == len(EXPECTED)
    assert sim.stats.responses[409] == 0


async def test_a_subscription_made_meanwhile_does_not_stop_the_rest(
    reset_sandbox: Sandbox, control_session: aiohttp.ClientSession, proxy: LossyProxy
) -> None:
    sim = hubspot_simulator(reset_sandbox)

    async def someone_subscribes() -> None:
        # Made by hand after our listing: our own create of it is answered 409.
        await developer_call(control_session, reset_sandbox, "POST", "/subscriptions",
                             {"eventType": "contact.propertyChange", "propertyName": "email", "active": True})

    proxy.after_first_list = someone_subscribes
    async with hubspot_connector(reset_sandbox, base_url=proxy.url, **webhook_keys(reset_sandbox)
                                 ) as hubspot:
        assert await hubspot.register_webhooks("http://127.0.0.1:1/hooks", READ) is True
    assert sim.stats.responses[409] == 1
    subscriptions = await app_subscriptions(control_session, reset_sandbox)
    assert identities(subscriptions) == sorted(EXPECTED, key=str) and all(s["active"] for s in subscriptions)


async def test_a_wrong_developer_key_or_app_id_is_a_clear_error(reset_sandbox: Sandbox) -> None:
    keys = webhook_keys(reset_sandbox)
    async with hubspot_connector(reset_sandbox, app_id=keys["app_id"], developer_api_key="not-the-key") as hubspot:
        with pytest.raises(FatalError, match="developer_api_key") as refused:
            await hubspot.register_webhooks("http://127.0.0.1:1/hooks", READ)
        assert refused.value.status == 401 and "not-the-key" not in str(refused.value)
    async with hubspot_connector(reset_sandbox, app_id=keys["app_id"] + 1,
                                 developer_api_key=keys["developer_api_key"]) as hubspot:
        with pytest.raises(FatalError, match="app_id"):
            await hubspot.register_webhooks("http://127.0.0.1:1/hooks", READ)
    assert hubspot_simulator(reset_sandbox).app_settings is None


def test_association_change_events_name_the_changed_record() -> None:
    body = json.dumps([{"eventId": 3, "subscriptionType": "deal.associationChange", "occurredAt": 1,
                        "fromObjectId": 41, "toObjectId": 7, "associationType": "DEAL_TO_LINE_ITEM",
                        "associationRemoved": False}]).encode()
    [event] = parse_events(body, ["deals"], now=EPOCH)
    assert (event.object, event.record_id, event.kind) == ("deals", "41", "updated")


def test_app_id_and_developer_key_come_together(tmp_path: Path) -> None:
    table = '[security]\ntoken_key = "${K}"\n[connections.hs]\nsystem = "hubspot"\nclient_id = "a"\n' \
            'client_secret = "${S}"\ntimeout_s = 0\n'
    env = {"K": "k" * 43 + "=", "S": "s", "D": "dev-key-value"}
    for extra, missing in (('app_id = 54321\n', "developer_api_key"),
                           ('developer_api_key = "${D}"\n', "app_id")):
        path = tmp_path / "syncd.toml"
        path.write_text(table + extra)
        with pytest.raises(ConfigError) as caught:
            load_settings(path, env=env)
        problems = [str(p) for p in caught.value.problems]
        # Reported with the table's other problem, naming the key that is missing.
        assert any(f"connections.hs.{missing}: expected {missing} as well" in p for p in problems), problems
        assert any("connections.hs.timeout_s" in p for p in problems), problems
        assert not any("dev-key-value" in p for p in problems)
    path.write_text(table.replace("timeout_s = 0\n", "") + 'app_id = 54321\ndeveloper_api_key = "${D}"\n')
    settings = load_settings(path, env=env)
    connection = settings.connections["hs"]
    assert isinstance(connection, HubSpotConnection) and connection.app_id == 54321
    assert "dev-key-value" in settings.secret_values() and "dev-key-value" not in repr(settings)
