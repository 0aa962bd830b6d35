"""Scenarios only QuickBooks Online has, beyond the shared bar it passes in test_every_accounting_system.py:
convergence across both CRMs counted by QuickBooks' own routes (creates go through `/batch`, 30 a call), an edit
landing between plan and write refused by its SyncToken (5010) then merged three-way, and what a first sync
costs. HubSpot and Salesforce with the QuickBooks simulator behind the real connectors."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence

import aiohttp
import pytest

from syncd.connectors.quickbooks import QuickBooksConnector
from syncd.engine.context import PipelineHooks
from syncd.sandbox.quickbooks import QuickBooksSimulator
from syncd.sandbox.runner import Sandbox
from syncd.store import Database
from tests.engine.books import BOOKS
from tests.engine.test_every_accounting_system import CLOCK, Shelf, _hubspot_people, _spent, open_shelf

API = "/v3/company/{realm}"


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """HubSpot, Salesforce and QuickBooks, with clocks running behind ours as in the shared module."""
    async with Sandbox.running(clock=CLOCK, systems=("hubspot", "salesforce", "quickbooks"),
                               workdir=tmp_path_factory.mktemp("quickbooks-scenarios")) as running:
        yield running


@pytest.fixture
async def shelf(sandbox: Sandbox, db: Database, control_session: aiohttp.ClientSession) -> AsyncIterator[Shelf]:
    """Empty systems behind freshly started connectors: the CRMs and QuickBooks."""
    async with open_shelf(BOOKS["quickbooks"], sandbox, db, control_session) as opened:
        assert isinstance(opened.acc.connector, QuickBooksConnector)  # built through its registration
        yield opened


async def test_people_converge_once_across_both_crms_in_batches(shelf: Shelf) -> None:
    # Two different people share a name; one person is in both CRMs with her e-mail cased differently.
    await _hubspot_people(shelf, [
        ("Jennifer", "Mitchell", "jennifer.mitchell@acme.test"),
        ("Jennifer", "Mitchell", "jen.mitchell@globex.test"),
        ("Omar", "Haddad", "Omar.Haddad@Initech.test"),
        ("Li", "Wei", "li.wei@umbrella.test"),
    ])  # fmt: skip
    await shelf.salesforce.put("Contact", {"FirstName": "Omar", "LastName": "Haddad",
                                           "Email": "omar.haddad@initech.test"})
    await shelf.salesforce.put("Contact", {"FirstName": "Sara", "LastName": "Berg", "Email": "sara.berg@hooli.test"})
    before = await shelf.requests()
    assert await shelf.settle("hubspot", "salesforce") <= 3
    customers = await shelf.canonical("hubspot", "customer")
    emails = Counter(str(c["email"]).lower() for c in customers)
    assert emails == Counter({"jennifer.mitchell@acme.test": 1, "jen.mitchell@globex.test": 1,
                              "omar.haddad@initech.test": 1, "li.wei@umbrella.test": 1, "sara.berg@hooli.test": 1})
    names = sorted(str(c["DisplayName"]) for c in await shelf.acc.all("Customer"))
    assert names == ["Jennifer Mitchell", "Jennifer Mitchell (jen.mitchell@globex.test)", "Li Wei", "Omar Haddad",
                     "Sara Berg"]  # fmt: skip
    spent = _spent(before, await shelf.requests())["quickbooks"]
    writes = {route: n for route, n in spent.items() if route.startswith("POST") and not route.endswith("/query")}
    # HubSpot's four in one batch (the second Jennifer Mitchell under the mapping's alternative name, chosen up
    # front from the first sync's whole read); Sara from Salesforce alone.
    assert writes == {f"POST {API}/batch": 1, f"POST {API}/customer": 1}, spent
    hub_emails = Counter(str(c["email"]).lower() for c in await shelf.hubspot.all("contacts"))
    assert max(hub_emails.values()) == 1 and "sara.berg@hooli.test" in hub_emails


async def test_an_edit_landing_between_plan_and_write_is_refused_stale_then_merged_not_overwritten(
    shelf: Shelf, sandbox: Sandbox
) -> None:
    [contact] = await _hubspot_people(shelf, [("Ann", "Lee", "ann.lee@example.test")])
    await shelf.settle()
    [customer] = await shelf.acc.all("Customer")
    await shelf.hubspot.update("contacts", contact, {"company": "Acme Rockets"})
    simulator = sandbox.simulators["quickbooks"]
    assert isinstance(simulator, QuickBooksSimulator)
    books = simulator.books

    async def bookkeeper_edits(targets: Mapping[str, Sequence[str]]) -> None:
        # A bookkeeper fixes the billing city in QuickBooks after syncd read the customer, before it writes.
        if customer["id"] in targets.get("quickbooks", ()):
            now = books.get("Customer", customer["id"])
            books.update({"Id": now["Id"], "SyncToken": now["SyncToken"], "sparse": True,
                          "BillAddr": {"City": "Oslo"}}, "Customer")  # fmt: skip

    before = await shelf.requests()
    report = await shelf.reconciler(hooks=PipelineHooks(before_write=bookkeeper_edits)).run_pass()
    [refused] = report.failures
    assert "5010" in str(refused) and "Stale Object Error" in str(refused)
    assert books.get("Customer", customer["id"])["BillAddr"] == {"City": "Oslo"}  # nothing overwritten
    spent = _spent(before, await shelf.requests())["quickbooks"]
    assert {k: n for k, n in spent.items() if not k.endswith(("/query", "/cdc"))} == {f"POST {API}/customer": 1}
    # The next passes read the customer again and merge three-way: each side's edit reaches the other.
    await shelf.settle()
    now = books.get("Customer", customer["id"])
    assert (now["CompanyName"], now["BillAddr"]["City"]) == ("Acme Rockets", "Oslo")
    assert (await shelf.hubspot.get("contacts", contact))["city"] == "Oslo"


async def test_a_first_sync_of_sixty_people_costs_two_batches_and_a_read_per_object(shelf: Shelf) -> None:
    people = [(f"Person{n:02d}", "Example", f"Person{n:02d}@Example.test") for n in range(60)]
    await _hubspot_people(shelf, people)
    before = await shelf.requests()
    passes = await shelf.settle()
    spent = _spent(before, await shelf.requests())["quickbooks"]
    spent.pop("GET /.well-known/openid_configuration/", None)  # intuit-oauth's discovery, once per connector
    assert await shelf.acc.count("Customer") == 60 and passes == 2
    # The first pass reads each object once, whole (customers, invoices, payments), matches in memory and
    # creates in two batches of 30; the second finds nothing new: one CDC call per object, as the connector
    # learns which entities a pass reads (from then on one call in all, see the idle scenario).
    assert spent == {f"POST {API}/query": 3, f"POST {API}/batch": 2, f"GET {API}/cdc": 3}

