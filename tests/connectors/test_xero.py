"""XeroConnector against the Xero simulator: tokens, tenant, deltas, batched idempotent writes, unique names,
status moves, webhooks; every API answer checked against Xero's OpenAPI file."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from syncd.connectors.base import Create, Update, WebhookRejected, WebhookRequest
from syncd.errors import AuthError, NameTakenError, SkippableError
from syncd.sandbox.xero import XeroSimulator
from syncd.sandbox.xero.books import INVOICES
from tests.connectors.conftest import StoredTokens
from tests.connectors.xero_fixtures import open_xero, read_all
from tests.contracts.xero.harness import ContractHarness


@pytest.fixture(scope="module")
async def harness() -> AsyncIterator[ContractHarness]:
    """One simulator per module, on a loopback port."""
    running = ContractHarness(XeroSimulator(rng_seed=3))
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


TWO = [
    Create("syncd-aaa", {"Name": "Ana Lima", "EmailAddress": "Ana.Lima@Example.com", "ContactNumber": "syncd-aaa",
                         "Phones.DEFAULT.PhoneNumber": "555 0100", "Addresses.POBOX.City": "Porto"}),
    Create("syncd-bbb", {"Name": "Bo Chen", "ContactNumber": "syncd-bbb"}),
]


def calls(harness: ContractHarness) -> dict[str, int]:
    """API calls served so far, by route (the token endpoint and connections included)."""
    served = harness.sim.stats.requests.items()
    return {k: v for k, v in served if not k.startswith(("GET /_sandbox", "POST /_sandbox"))}


async def test_tenant_from_connections_and_rotated_refresh_token_stored(
    xero: ContractHarness, stored_tokens: StoredTokens
) -> None:
    async with open_xero(xero, tenant_id=None, storage=stored_tokens.storage) as connector:
        assert await connector.tenant() == xero.sim.tenant["tenant_id"]
        pages = await read_all(connector.changes("Contacts", None, timedelta(seconds=5)))
        assert [r for p in pages for r in p.records] == []
        stored = await stored_tokens.grant("xero")
        assert stored.refresh_token and stored.refresh_token != xero.sim.tokens.refresh_token
        xero.sim.expire_tokens()
        await read_all(connector.changes("Contacts", None, timedelta(seconds=5)))
        rotated = await stored_tokens.grant("xero")
        assert rotated.refresh_token not in (None, stored.refresh_token)
    assert calls(xero) == {"POST /connect/token": 2, "GET /Connections": 1, "GET /api.xro/2.0/Contacts": 3}


async def test_batched_creates_are_idempotent_and_names_are_unique(xero: ContractHarness) -> None:
    async with open_xero(xero) as connector:
        first = await connector.create_many("Contacts", TWO)
        assert all(o.ok and o.id and o.modified_at for o in first)
        taken = await connector.create_many("Contacts", [
            Create("syncd-ccc", {"Name": "ana lima", "ContactNumber": "syncd-ccc"}),
            Create("syncd-ddd", {"Name": "Cy Diaz", "ContactNumber": "syncd-ddd"}),
        ])  # fmt: skip
        assert isinstance(taken[0].error, NameTakenError) and taken[0].error.holder_id == first[0].id
        assert taken[0].error.field == "Name" and taken[1].ok
        # The same request again (a retry after a lost answer) is answered from Xero's idempotency store.
        again = await connector.create_many("Contacts", TWO)
        assert [o.id for o in again] == [o.id for o in first]
        assert len(xero.sim.records("Contacts") or []) == 3
        found = await connector.find_by_field("Contacts", "EmailAddress", ["ana.lima@example.COM", "nobody@x.org"])
        assert [r.id for r in found["ana.lima@example.COM"]] == [first[0].id] and found["nobody@x.org"] == []
        by_ref = await connector.find_by_field("Contacts", "ContactNumber", ["syncd-bbb"])
        record = by_ref["syncd-bbb"][0]
        assert record.fields["Name"] == "Bo Chen" and record.missing == frozenset()
        ana = (await connector.get_many("Contacts", [first[0].id]))[first[0].id]
        assert ana.fields["Addresses.POBOX.City"] == "Porto" and ana.fields["Phones.DEFAULT.PhoneNumber"] == "555 0100"
    assert calls(xero)["PUT /api.xro/2.0/Contacts"] == 3  # one call per batch, the replay included


async def test_invoice_with_lines_payments_polled_and_void(xero: ContractHarness) -> None:
    async with open_xero(xero) as connector:
        contact = (await connector.create_many("Contacts", [Create("syncd-c1", {"Name": "Eve F"})]))[0]
        assert contact.id
        made = await connector.create_many("Invoices", [Create("syncd-i1", {
            "Contact.ContactID": contact.id, "Reference": "syncd-i1", "Date": date(2026, 3, 2),
            "DueDate": date(2026, 4, 1),
            "LineItems": [{"Description": "Setup", "Quantity": Decimal("2"), "UnitAmount": Decimal("150.25")}],
        })])  # fmt: skip
        invoice_id = made[0].id
        assert invoice_id
        invoice = (await connector.get_many("Invoices", [invoice_id]))[invoice_id]
        assert invoice.fields["Status"] == "DRAFT" and invoice.fields["Total"] == Decimal("300.50")
        lines = invoice.fields["LineItems"]
        assert isinstance(lines, list) and lines[0]["UnitAmount"] == Decimal("150.25")
        assert invoice.fields["Date"] == date(2026, 3, 2) and invoice.fields["Type"] == "ACCREC"
        await connector.act("Invoices", invoice_id, "sent")
        assert (xero.sim.books.get(INVOICES, invoice_id) or {}).get("Status") == "AUTHORISED"
        paid = await connector.create_many("Payments", [Create("syncd-p1", {
            "Invoice.InvoiceID": invoice_id, "Account.Code": "090", "Amount": Decimal("100.00"),
            "Date": date(2026, 3, 5), "Reference": "syncd-p1"})])  # fmt: skip
        assert paid[0].ok
        payments = await read_all(connector.changes("Payments", None, timedelta(seconds=5)))
        [payment] = [r for p in payments for r in p.records]
        assert payment.fields["Invoice.InvoiceID"] == invoice_id and payment.fields["Amount"] == Decimal("100.00")
        with pytest.raises(SkippableError):  # Xero voids no invoice with payments
            await connector.act("Invoices", invoice_id, "void")
        deleted = await connector.delete_many("Payments", [paid[0].id or ""])
        assert deleted[0].ok
        await connector.act("Invoices", invoice_id, "void")
        voided = (await connector.get_many("Invoices", [invoice_id]))[invoice_id]
        assert voided.fields["Status"] == "VOIDED"
        # A draft is deleted instead of voided.
        draft = (await connector.create_many("Invoices", [Create("syncd-i2", {
            "Contact.ContactID": contact.id, "Reference": "syncd-i2",
            "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5}]})]))[0]  # fmt: skip
        assert draft.id
        await connector.act("Invoices", draft.id, "void")
        gone = (await connector.get_many("Invoices", [draft.id]))[draft.id]
        assert gone.fields["Status"] == "DELETED" and gone.deleted


async def test_deltas_cursor_and_idle_pass(xero: ContractHarness) -> None:
    async with open_xero(xero, page_size=2) as connector:
        people = [Create(f"syncd-{n}", {"Name": f"Person {n}"}) for n in range(5)]
        made = await connector.create_many("Contacts", people)
        assert all(o.ok for o in made)
        pages = await read_all(connector.changes("Contacts", None, timedelta(seconds=5)))
        assert sorted(r.fields["Name"] for p in pages for r in p.records) == [f"Person {n}" for n in range(5)]
        assert len(pages) >= 3  # two a page: the stamp restarts and the last page
        real_clock = xero.sim.clock
        xero.sim.clock = lambda: real_clock() + 10
        try:
            # Ten seconds on, by Xero's clock: the cursor of a full read passes every record already read.
            again = await read_all(connector.changes("Contacts", pages[-1].cursor, timedelta(seconds=1)))
            assert {r.id for p in again for r in p.records} <= {o.id for o in made}
            xero.sim.stats.clear()
            idle = await read_all(connector.changes("Contacts", again[-1].cursor, timedelta(seconds=1)))
            assert [r for p in idle for r in p.records] == []
            assert calls(xero) == {"GET /api.xro/2.0/Contacts": 1}
            await connector.update_many("Contacts", [Update(made[1].id or "", {"FirstName": "Edited"})])
            delta = await read_all(connector.changes("Contacts", idle[-1].cursor, timedelta(seconds=1)))
        finally:
            xero.sim.clock = real_clock
        assert [r.id for p in delta for r in p.records] == [made[1].id]


async def test_updates_are_batched_and_refusals_per_record(xero: ContractHarness) -> None:
    async with open_xero(xero) as connector:
        made = await connector.create_many("Contacts", [Create(f"syncd-u{n}", {
            "Name": f"U {n}", "Addresses.POBOX.AddressLine1": f"{n} Rue Neuve", "Addresses.POBOX.City": "Paris"})
            for n in range(3)])  # fmt: skip
        xero.sim.stats.clear()
        outcomes = await connector.update_many("Contacts", [
            Update(made[0].id or "", {"EmailAddress": "u0@example.com"}),
            Update(made[1].id or "", {"Name": "U 2"}),  # taken by the third
            Update(made[2].id or "", {"Addresses.POBOX.City": "Lyon"}),
        ])  # fmt: skip
        assert outcomes[0].ok and outcomes[2].ok
        assert isinstance(outcomes[1].error, NameTakenError) and outcomes[1].error.holder_id == made[2].id
        moved = (await connector.get_many("Contacts", [made[2].id or ""]))[made[2].id or ""]
        # Only the city was mapped and changed: the street the accountant keeps is sent along, not blanked.
        assert (moved.fields["Addresses.POBOX.City"], moved.fields["Addresses.POBOX.AddressLine1"]) == (
            "Lyon", "2 Rue Neuve")
    # One POST for the three; one read for the address to complete; one lookup of the taken name's holder; the
    # check's read.
    assert calls(xero) == {"POST /api.xro/2.0/Contacts": 1, "GET /api.xro/2.0/Contacts": 3}


async def test_an_address_update_stands_on_the_read_the_check_just_made(xero: ContractHarness) -> None:
    # The engine reads its targets just before writing them (its check for an edit since planning): the address
    # entry is completed from that read, not from a second read of the same contact.
    async with open_xero(xero) as connector:
        [made] = await connector.create_many("Contacts", [Create("syncd-c", {
            "Name": "C", "Addresses.POBOX.AddressLine1": "1 Rue Neuve", "Addresses.POBOX.City": "Paris"})])  # fmt: skip
        contact = made.id or ""
        await connector.get_many("Contacts", [contact])
        xero.sim.stats.clear()
        [outcome] = await connector.update_many("Contacts", [Update(contact, {"Addresses.POBOX.City": "Lyon"})])
        assert outcome.ok, outcome.error
        assert calls(xero) == {"POST /api.xro/2.0/Contacts": 1}
        # The next write of that contact (another mapping's, a moment later) stands on the first one's answer,
        # which is what Xero holds after it: no read either, and the city just written is kept.
        [outcome] = await connector.update_many(
            "Contacts", [Update(contact, {"Addresses.POBOX.AddressLine1": "9 Quai"})])
        assert outcome.ok, outcome.error
        assert calls(xero) == {"POST /api.xro/2.0/Contacts": 2}
        found = (await connector.get_many("Contacts", [contact]))[contact]
        assert (found.fields["Addresses.POBOX.City"], found.fields["Addresses.POBOX.AddressLine1"]) == (
            "Lyon", "9 Quai")


def _signed(key: str, body: bytes) -> WebhookRequest:
    sig = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    return WebhookRequest("POST", "https://syncd.example/webhooks/xero", {"x-xero-signature": sig}, body)


async def test_webhook_signature_intent_to_receive_and_events(harness: ContractHarness) -> None:
    xero = harness  # no API call is made: nothing to check against the spec
    key = xero.sim.tenant["webhook_key"]
    async with open_xero(xero) as connector:
        intent = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "X"}).encode()
        connector.verify_webhook(_signed(key, intent))
        assert connector.parse_webhook(_signed(key, intent)) == []
        with pytest.raises(WebhookRejected) as bad:
            connector.verify_webhook(_signed(key + "x", intent))
        assert bad.value.status == 401
        tenant = await connector.tenant()
        body = json.dumps({"events": [
            {"resourceUrl": "https://api.xero.com/api.xro/2.0/Contacts/717f2bfc-c6d4-41fd-b238-3f2f0c0cf777",
             "resourceId": "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777", "eventDateUtc": "2026-06-21T01:15:39.902",
             "eventType": "UPDATE", "eventCategory": "CONTACT", "tenantId": tenant, "tenantType": "ORGANISATION"},
            {"resourceUrl": "https://api.xero.com/api.xro/2.0/Contacts/x", "resourceId": "x",
             "eventDateUtc": "2026-06-21T01:15:39.902", "eventType": "UPDATE", "eventCategory": "CONTACT",
             "tenantId": "another-tenant", "tenantType": "ORGANISATION"},
        ], "firstEventSequence": 1, "lastEventSequence": 2, "entropy": "Y"}).encode()  # fmt: skip
        connector.verify_webhook(_signed(key, body))
        [event] = connector.parse_webhook(_signed(key, body))
        assert (event.object, event.record_id, event.kind) == ("Contacts", "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777",
                                                              "updated")
        assert not await connector.register_webhooks("https://syncd.example/webhooks/xero", {})


async def test_a_create_whose_answer_is_lost_is_sent_again_and_replayed_not_duplicated(xero: ContractHarness) -> None:
    async with open_xero(xero) as connector:
        xero.lose_answers = 2  # applied, then the connection drops: twice
        made = await connector.create_many("Contacts", [Create("syncd-lost", {"Name": "Lost Answer Ltd",
                                                                              "ContactNumber": "syncd-lost"})])
        assert made[0].ok and made[0].id
        assert [c["ContactID"] for c in xero.sim.records("Contacts") or []] == [made[0].id]
        await read_all(connector.changes("Contacts", None, timedelta(seconds=5)))
    assert calls(xero)["PUT /api.xro/2.0/Contacts"] == 3  # the first, and the same request twice more


async def test_a_minute_limit_429_is_waited_out(xero: ContractHarness) -> None:
    async with open_xero(xero) as connector:
        xero.sim.apply_limits({"window_s": 1, "window_max": 3})
        made = await connector.create_many("Contacts", [Create(f"syncd-r{n}", {"Name": f"R {n}"}) for n in range(2)])
        pages = await read_all(connector.changes("Contacts", None, timedelta(seconds=5)))
        for _ in range(3):
            await connector.get_many("Contacts", [made[0].id or ""])
        assert len([r for p in pages for r in p.records]) == 2
        assert xero.sim.stats.rate_limited >= 1 and connector.limiter.throttled >= 1


async def test_syncd_auth_code_flow_stores_a_grant_the_connector_then_uses(
    xero: ContractHarness, stored_tokens: StoredTokens
) -> None:
    async with open_xero(xero, refresh_token=None, storage=stored_tokens.storage) as connector:
        redirect = "http://127.0.0.1:9/callback"
        url = connector.authorize_url(redirect, "st4te")
        assert "offline_access" in url and "response_type=code" in url
        async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False) as consent:
            assert consent.status == 302
            location = consent.headers["Location"]
        query = dict(parse_qsl(urlsplit(location).query))
        assert location.startswith(redirect) and query["state"] == "st4te"
        grant = await connector.exchange_code(query["code"], redirect)
        assert grant.refresh_token and grant.expires_at is not None
        await read_all(connector.changes("Contacts", None, timedelta(seconds=5)))  # with the new grant
        with pytest.raises(AuthError):  # a code is single-use
            await connector.exchange_code(query["code"], redirect)


async def test_injected_server_errors_are_retried_without_duplicates(xero: ContractHarness) -> None:
    xero.sim.faults.error_rate = 0.3  # (a 429's wait is its own test: the injected one asks for 60 s)
    try:
        async with open_xero(xero) as connector:
            made = await connector.create_many("Contacts", [Create(f"syncd-f{n}", {"Name": f"Faulty {n}"})
                                                            for n in range(60)])  # fmt: skip
            assert all(o.ok for o in made), [o.error for o in made if not o.ok]
            pages = await read_all(connector.changes("Contacts", None, timedelta(seconds=5)))
    finally:
        xero.sim.faults.error_rate = 0.0
    assert len({r.id for p in pages for r in p.records}) == 60
    assert len(xero.sim.records("Contacts") or []) == 60  # nothing made twice


async def test_two_writers_of_one_address_keep_each_others_parts(xero: ContractHarness) -> None:
    # Two mappings share the connection's connector: one writes a contact's city while the other writes its
    # street. Each sends the whole POBOX entry, completed from a read; with every call slowed down, both reads
    # would come before both writes and the second would put the old part back.
    async with open_xero(xero) as connector:
        [made] = await connector.create_many("Contacts", [Create("syncd-w", {
            "Name": "W", "Addresses.POBOX.AddressLine1": "1 Rue Neuve", "Addresses.POBOX.City": "Paris"})])  # fmt: skip
        xero.sim.faults.latency_ms = (20, 60)
        try:
            results = await asyncio.gather(
                connector.update_many("Contacts", [Update(made.id or "", {"Addresses.POBOX.City": "Lyon"})]),
                connector.update_many("Contacts", [Update(made.id or "", {"Addresses.POBOX.AddressLine1": "9 Quai"})]),
            )
        finally:
            xero.sim.faults.latency_ms = (0, 0)
        assert all(outcome.ok for [outcome] in results), results
        found = (await connector.get_many("Contacts", [made.id or ""]))[made.id or ""]
        assert (found.fields["Addresses.POBOX.City"], found.fields["Addresses.POBOX.AddressLine1"]) == (
            "Lyon", "9 Quai")
