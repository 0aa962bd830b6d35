"""HubSpot (and Salesforce) ↔ Xero on the simulators through the shipped mappings, with exact Xero calls by route:
people converge once (shared names, mixed-case e-mails), a won deal makes one draft invoice in one call, partial
and full payments come back once (polled: Xero sends no payment webhooks), a lost deal's draft is deleted, and a
crash between create and link leaves no duplicate (the idle pass is the shared scenarios' own, with Xero's routes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from syncd.engine.context import PipelineHooks
from syncd.sandbox.runner import Sandbox
from syncd.store import Database
from tests.engine.books import BOOKS
from tests.engine.test_every_accounting_system import (
    TODAY,
    Shelf,
    _hubspot_people,
    _invoice_of,
    _links,
    _spent,
    _won_deal,
    open_shelf,
    sandbox,
)

__all__ = ["sandbox"]  # the module's sandbox (clocks behind ours), shared with the every-system scenarios
API = "/api.xro/2.0"


@pytest.fixture
async def shelf(sandbox: Sandbox, db: Database, control_session: aiohttp.ClientSession) -> AsyncIterator[Shelf]:
    """Empty HubSpot, Salesforce and Xero behind freshly started connectors."""
    async with open_shelf(BOOKS["xero"], sandbox, db, control_session) as opened:
        yield opened


async def test_people_converge_once_with_a_taken_name(shelf: Shelf) -> None:
    await _hubspot_people(shelf, [
        ("Jennifer", "Mitchell", "jennifer.mitchell@acme.test"),
        ("Jennifer", "Mitchell", "Jen.Mitchell@Globex.test"),
        ("Omar", "Haddad", "Omar.Haddad@Initech.test"),
    ])  # fmt: skip
    await shelf.salesforce.put("Contact", {"FirstName": "Omar", "LastName": "Haddad",
                                           "Email": "omar.haddad@initech.test"})
    before = await shelf.requests()
    assert await shelf.settle("hubspot", "salesforce") <= 3
    # Two passes of two mappings list each object four times; the HubSpot mapping's three people go in one PUT,
    # the second Jennifer Mitchell under the mapping's alternative name, chosen up front from the names the read
    # saw held (no refused create, no lookup of the holder); Omar, in both CRMs, is matched on e-mail by one
    # lookup and made once.
    assert _spent(before, await shelf.requests())["xero"] == {
        f"GET {API}/Contacts": 5, f"PUT {API}/Contacts": 1, f"GET {API}/Invoices": 4, f"GET {API}/Payments": 4}
    names = sorted(c["Name"] for c in await shelf.acc.all("Contacts"))
    assert names == ["Jennifer Mitchell", "Jennifer Mitchell (jen.mitchell@globex.test)", "Omar Haddad"]


async def test_won_deal_makes_one_draft_and_a_polled_payment_comes_back(shelf: Shelf) -> None:
    [contact] = await _hubspot_people(shelf, [("Ann", "Lee", "Ann.Lee@Example.test")])
    await shelf.settle()
    before = await shelf.requests()
    deal = await _won_deal(shelf, contact, "1200")
    await shelf.reconciler().run_pass()
    # One list per object, the invoice's match lookups (by Reference, then by contact/total/date), one PUT.
    assert _spent(before, await shelf.requests())["xero"] == {
        f"GET {API}/Contacts": 1, f"GET {API}/Invoices": 3, f"GET {API}/Payments": 1, f"PUT {API}/Invoices": 1}
    invoice = await _invoice_of(shelf, deal)
    fields = await shelf.acc.get("Invoices", invoice)
    assert (fields["Status"], fields["Total"], fields["Type"]) == ("DRAFT", Decimal("1200.00"), "ACCREC")
    await shelf.acc.update("Invoices", invoice, {"Status": "AUTHORISED", "DueDate": TODAY})
    await shelf.acc.put("Payments", shelf.books.payment("", invoice, Decimal("500"), TODAY, "P-1"))
    before = await shelf.requests()
    await shelf.reconciler().run_pass()
    # The payment is polled: one list per object, nothing written to Xero.
    assert _spent(before, await shelf.requests())["xero"] == {
        f"GET {API}/Contacts": 1, f"GET {API}/Invoices": 1, f"GET {API}/Payments": 1}
    deal_fields = await shelf.hubspot.get("deals", deal)
    assert (deal_fields["syncd_amount_paid"], deal_fields["syncd_invoice_balance"]) == (Decimal("500.00"),
                                                                                       Decimal("700.00"))
    assert deal_fields["syncd_invoice_status"] == "authorised"
    await shelf.acc.put("Payments", shelf.books.payment("", invoice, Decimal("700"), TODAY, "P-2"))
    await shelf.reconciler().run_pass()
    deal_fields = await shelf.hubspot.get("deals", deal)
    assert (deal_fields["syncd_amount_paid"], deal_fields["syncd_invoice_balance"]) == (Decimal("1200.00"),
                                                                                       Decimal("0.00"))
    assert deal_fields["syncd_invoice_status"] == "paid"
    writes = await shelf.hubspot.writes() + await shelf.acc.writes()
    assert await shelf.settle() == 1
    assert await shelf.hubspot.writes() + await shelf.acc.writes() == writes  # each payment reflected once


async def test_lost_deal_deletes_its_draft(shelf: Shelf) -> None:
    [contact] = await _hubspot_people(shelf, [("Ann", "Lee", "ann.lee@example.test")])
    deal = await _won_deal(shelf, contact)
    await shelf.settle()
    invoice = await _invoice_of(shelf, deal)
    await shelf.hubspot.update("deals", deal, {"dealstage": "closedlost"})
    before = await shelf.requests()
    await shelf.reconciler().run_pass()
    # The invoice is read once more (its current state), and the draft deleted in one POST (Xero voids only
    # approved invoices; the connector knows this one is a draft from its last read).
    assert _spent(before, await shelf.requests())["xero"] == {
        f"GET {API}/Contacts": 1, f"GET {API}/Invoices": 2, f"GET {API}/Payments": 1, f"POST {API}/Invoices": 1}
    assert (await shelf.acc.get("Invoices", invoice))["Status"] == "DELETED"
    assert await shelf.settle() == 1


async def test_a_crash_between_create_and_link_leaves_no_duplicate(shelf: Shelf, tmp_path: Path) -> None:
    [hub_id] = await _hubspot_people(shelf, [("Ann", "Lee", "ann.lee@example.test")])

    class Crash(Exception):
        pass

    def crash(system: str, obj: str, outcomes: object) -> None:
        raise Crash(f"power cut after creating {system} {obj}")

    with pytest.raises(Crash):
        await shelf.reconciler(hooks=PipelineHooks(after_create=crash)).run_pass()
    before = await shelf.requests()
    await shelf.settle()
    # Recovery finds the contact by its ContactNumber (syncd's reference) in one lookup and writes nothing.
    assert _spent(before, await shelf.requests())["xero"] == {
        f"GET {API}/Contacts": 2, f"GET {API}/Invoices": 1, f"GET {API}/Payments": 1}
    assert await shelf.acc.count("Contacts") == 1
    link = await _links(shelf).lookup_crm(shelf.mapping("hubspot").name, "customer", "hubspot", hub_id)
    assert link is not None and link.state == "linked"



async def test_a_first_sync_of_120_people_creates_them_in_three_calls(shelf: Shelf) -> None:
    people = [(f"Person{n:03d}", "Example", f"Person{n:03d}@Example.test") for n in range(120)]
    await _hubspot_people(shelf, people)
    before = await shelf.requests()
    assert await shelf.settle() <= 2
    spent = _spent(before, await shelf.requests())["xero"]
    # 120 creates in PUTs of 50, and two passes of one list per object: 9 calls (Xero allows 60 a minute).
    assert spent == {f"PUT {API}/Contacts": 3, f"GET {API}/Contacts": 2, f"GET {API}/Invoices": 2,
                     f"GET {API}/Payments": 2}
    assert await shelf.acc.count("Contacts") == 120
