"""The Xero simulator over raw HTTP: limits and their headers, lists without line items, archived contacts,
webhooks with intent to receive, seeding and state; every Accounting API answer checked against the spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used
from aiohttp import web
from aiohttp.test_utils import TestServer
from jsonschema import Draft202012Validator

from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.xero import XeroSimulator
from syncd.sandbox.xero.app import API_PREFIX
from tests.contracts.xero.harness import HERE, ContractHarness


@pytest.fixture(scope="module")
async def harness() -> AsyncIterator[ContractHarness]:
    """One simulator per module, on a loopback port."""
    running = ContractHarness(XeroSimulator(rng_seed=5))
    await running.server.start_server()
    yield running
    await running.server.close()


@pytest.fixture
async def xero(harness: ContractHarness) -> AsyncIterator[ContractHarness]:
    """A clean organisation; afterwards every API answer it gave must match the spec."""
    harness.sim.restore_defaults()
    harness.exchanges.clear()
    yield harness
    assert harness.check() > 0


@pytest.fixture
async def http(xero: ContractHarness) -> AsyncIterator[Api]:
    """Raw calls with a live token and the tenant header."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, xero)


class Api:
    """The Accounting API as a raw HTTP client sees it."""

    def __init__(self, session: aiohttp.ClientSession, harness: ContractHarness) -> None:
        self.session = session
        self.root = harness.base_url + API_PREFIX
        token = harness.sim.tokens.issue_access_token().access_token
        self.headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": harness.sim.tenant["tenant_id"],
                        "Accept": "application/json"}  # fmt: skip

    async def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any, Any]:
        """Status, parsed body (None when not JSON) and headers."""
        async with self.session.request(method, self.root + path, json=body,
                                        headers={**self.headers, **headers}) as response:  # fmt: skip
            text = await response.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            return response.status, parsed, response.headers


async def test_minute_day_and_concurrent_limits_answer_429_with_the_problem(xero: ContractHarness, http: Api) -> None:
    status, _, headers = await http.call("GET", "/Contacts?page=1")
    assert status == 200
    assert (headers["X-MinLimit-Remaining"], headers["X-DayLimit-Remaining"]) == ("59", "4999")
    assert headers["X-AppMinLimit-Remaining"] == "9999"
    xero.sim.guard.in_flight = 5  # five calls in progress: a sixth is refused
    try:
        status, _, headers = await http.call("GET", "/Contacts?page=1")
    finally:
        xero.sim.guard.in_flight = 0
    assert (status, headers["X-Rate-Limit-Problem"]) == (429, "concurrent")
    xero.sim.apply_limits({"daily_cap": 2})
    assert (await http.call("GET", "/Contacts?page=1"))[0] == 200
    status, _, headers = await http.call("GET", "/Contacts?page=1")
    assert (status, headers["X-Rate-Limit-Problem"]) == (429, "day") and int(headers["Retry-After"]) > 60


async def test_bad_token_and_foreign_tenant_are_refused(xero: ContractHarness, http: Api) -> None:
    status, body, _ = await http.call("GET", "/Contacts", Authorization="Bearer nope")
    assert (status, body["Detail"]) == (401, "AuthenticationUnsuccessful")
    status, _, _ = await http.call("GET", "/Contacts", **{"xero-tenant-id": "00000000-0000-0000-0000-000000000000"})
    assert status == 403
    status, body, _ = await http.call("GET", "/Contacts/00000000-0000-4000-8000-000000000000")
    assert status == 404 and body is None  # plain text, as Xero answers
    assert (await http.call("GET", "/Contacts?page=1"))[0] == 200


async def test_unpaged_lists_leave_out_line_items_and_archived_contacts(xero: ContractHarness, http: Api) -> None:
    status, made, _ = await http.call("PUT", "/Contacts", {"Contacts": [{"Name": "Gone Co"}, {"Name": "Here Co"}]})
    assert status == 200
    gone, here = (c["ContactID"] for c in made["Contacts"])
    assert (await http.call("POST", f"/Contacts/{gone}", {"Contacts": [{"ContactStatus": "ARCHIVED"}]}))[0] == 200
    _, listed, _ = await http.call("GET", "/Contacts")
    assert [c["ContactID"] for c in listed["Contacts"]] == [here]
    _, everyone, _ = await http.call("GET", "/Contacts?includeArchived=true")
    assert {c["ContactID"] for c in everyone["Contacts"]} == {gone, here}
    # An archived contact's name is free again.
    assert (await http.call("PUT", "/Contacts", {"Contacts": [{"Name": "gone co"}]}))[0] == 200
    invoice = {"Type": "ACCREC", "Contact": {"ContactID": here},
               "LineItems": [{"Description": "Hours", "Quantity": 3, "UnitAmount": 99.5}]}
    assert (await http.call("PUT", "/Invoices", {"Invoices": [invoice]}))[0] == 200
    _, unpaged, _ = await http.call("GET", "/Invoices")
    _, paged, _ = await http.call("GET", "/Invoices?page=1&pageSize=1000")
    assert "LineItems" not in unpaged["Invoices"][0] and paged["Invoices"][0]["LineItems"][0]["LineAmount"] == 298.5
    assert paged["pagination"] == {"page": 1, "pageSize": 1000, "pageCount": 1, "itemCount": 1}


async def test_batch_refused_whole_unless_summarize_errors_false(xero: ContractHarness, http: Api) -> None:
    batch = {"Contacts": [{"Name": "Dup"}, {"Name": "DUP"}]}
    status, body, _ = await http.call("PUT", "/Contacts", batch)
    assert status == 400 and body["Type"] == "ValidationException"
    assert xero.sim.records("Contacts") == []  # nothing saved
    status, body, _ = await http.call("PUT", "/Contacts?summarizeErrors=false", batch)
    assert status == 200
    assert [c.get("HasValidationErrors", False) for c in body["Contacts"]] == [False, True]


class Receiver:
    """A webhook endpoint that checks Xero's signature as a receiver must (401 for a bad one), or not at all."""

    def __init__(self, key: str, *, checks: bool) -> None:
        self.key = key
        self.checks = checks
        self.up = True
        self.bodies: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not self.up:
            return web.Response(status=503)
        expected = base64.b64encode(hmac.new(self.key.encode(), raw, hashlib.sha256).digest()).decode()
        if self.checks and request.headers.get("x-xero-signature") != expected:
            return web.Response(status=401)
        self.bodies.append(json.loads(raw))
        return web.Response(status=200)  # no body, as Xero requires


async def test_webhooks_go_only_to_targets_that_pass_intent_to_receive(xero: ContractHarness, http: Api) -> None:
    good = Receiver(xero.sim.tenant["webhook_key"], checks=True)
    lax = Receiver(xero.sim.tenant["webhook_key"], checks=False)
    await good.server.start_server()
    await lax.server.start_server()
    try:
        urls = [str(good.server.make_url("/hook")), str(lax.server.make_url("/hook"))]
        xero.sim.set_webhook_targets(urls)
        await xero.sim.drain_webhooks()
        assert xero.sim.intent == {urls[0]: True, urls[1]: False}
        status, made, _ = await http.call("PUT", "/Contacts", {"Contacts": [{"Name": "Hook Co"}]})
        assert status == 200
        await http.call("PUT", "/Payments?summarizeErrors=false", {"Payments": [{"Amount": 1}]})  # no payment events
        await xero.sim.drain_webhooks()
    finally:
        await good.server.close()
        await lax.server.close()
    schema = webhook_schema()
    # The intent-to-receive payloads carry sequence 0 as Xero documents them, below the schema's minimum of 1:
    # only event deliveries are held to the schema.
    for body in [b for b in good.bodies + lax.bodies if b["events"]]:
        # `format` is an annotation in JSON Schema 2020-12 (OpenAPI 3.1): Xero's own example `eventDateUtc`,
        # "2024-06-21T01:15:39.902", has no zone, and the simulator writes it the same way.
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
        assert errors == [], (body, errors)  # held to xero-webhooks.yaml's WebhookEvent
    events = [e for body in good.bodies for e in body["events"]]
    assert [(e["eventCategory"], e["eventType"], e["resourceId"]) for e in events] == [
        ("CONTACT", "CREATE", made["Contacts"][0]["ContactID"])]
    assert good.bodies[-1]["firstEventSequence"] == good.bodies[-1]["lastEventSequence"] == 1
    # The lax target got the intent-to-receive deliveries (and answered 200 to the bad one), then nothing.
    assert all(body["events"] == [] for body in lax.bodies)


async def test_a_target_that_failed_its_check_is_checked_again_on_the_next_change(
    xero: ContractHarness, http: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("syncd.sandbox.xero.app.INTENT_RETRY_S", 0.0)
    late = Receiver(xero.sim.tenant["webhook_key"], checks=True)
    late.up = False  # the receiver is not up yet when the subscription is made
    await late.server.start_server()
    try:
        url = str(late.server.make_url("/hook"))
        xero.sim.set_webhook_targets([url])
        await xero.sim.drain_webhooks()
        assert xero.sim.intent == {url: False}
        late.up = True
        await http.call("PUT", "/Contacts", {"Contacts": [{"Name": "Before Co"}]})  # not sent: unverified yet
        await xero.sim.drain_webhooks()
        assert xero.sim.intent == {url: True}
        _, made, _ = await http.call("PUT", "/Contacts", {"Contacts": [{"Name": "After Co"}]})
        await xero.sim.drain_webhooks()
    finally:
        await late.server.close()
    events = [e for body in late.bodies for e in body["events"]]
    assert [e["resourceId"] for e in events] == [made["Contacts"][0]["ContactID"]]


def webhook_schema() -> dict[str, Any]:
    """`WebhookEvent` of Xero's webhooks file (OpenAPI 3.1: JSON Schema 2020-12), its `$ref`s resolved."""
    doc = yaml.safe_load((HERE / "xero-webhooks.yaml").read_text())
    return {**doc["components"]["schemas"]["WebhookEvent"], "$defs": {}}


def test_seeded_books_dump_and_load_the_same() -> None:
    sim = XeroSimulator(rng_seed=2)
    created = sim.seed(SeedWorld.build(4, 30), SeedCounts(contacts=20, invoices=8, payments=5))
    assert created["contacts"] >= 20 and created["invoices"] == 8 and created["payments"] == 5
    names = [c["Name"].lower() for c in sim.records("Contacts") or []]
    assert len(names) == len(set(names))  # Xero's unique names, shared full names told apart
    again = XeroSimulator(rng_seed=9)
    again.load_state(json.loads(json.dumps(sim.dump_state())))
    assert again.records("Invoices") == sim.records("Invoices")
    assert again.books.contact_names == sim.books.contact_names
