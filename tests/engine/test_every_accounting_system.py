"""The same bar for every accounting system: contacts converge once across both CRMs, a won deal makes one draft
invoice, partial and full payments come back once, a lost deal voids its invoice, an idle pass costs one list call
per object and writes nothing, and a crash between create and link leaves no duplicate.

Parameterised over the accounting systems in `tests/engine/books.py`; assertions read the CRM side and the
accounting side's canonical values through the shipped mappings, so they say the same thing for each system."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.connectors.base import Connector, Create, Record
from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.registry import build_connector
from syncd.engine.context import PipelineHooks
from syncd.engine.reconcile import ActiveMapping, Reconciler
from syncd.mapping.compiled import CompiledMapping
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, load_mapping
from syncd.sandbox.runner import Sandbox
from syncd.store import Database
from syncd.systems import load_object, registration
from tests.engine.books import BOOKS, Books
from tests.engine.conftest import GENEROUS, SANDBOX_LIMITS, System, _connection

TODAY = datetime.now(UTC).date()
OVERLAP_S = 120  # the reconciler's default overlap window


class ServerClock:
    """The systems' clock, behind ours by `lag` seconds (a stamp is trusted as "unchanged" only once older than
    the read by its precision); lowering the lag is time passing on their side."""

    def __init__(self, lag: float) -> None:
        self.lag = lag

    def __call__(self) -> float:
        return time.time() - self.lag


CLOCK = ServerClock(600)


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """Every simulator, with clocks running behind ours (this module's own sandbox)."""
    async with Sandbox.running(clock=CLOCK, workdir=tmp_path_factory.mktemp("every-accounting-system")) as running:
        yield running


@dataclass
class Shelf:
    """HubSpot, Salesforce and one accounting system behind the real connectors, over one store."""

    db: Database
    books: Books
    hubspot: System
    salesforce: System
    acc: System

    def mapping(self, crm: str) -> CompiledMapping:
        """The shipped mapping of `crm` with this accounting system."""
        return load_mapping(SHIPPED_MAPPINGS_DIR / f"{crm}-{self.books.system}.toml")

    def reconciler(self, *crms: str, hooks: PipelineHooks | None = None) -> Reconciler:
        """A reconciler over the shipped mappings of the given CRMs (HubSpot alone by default)."""
        mappings = [ActiveMapping(m.name, m) for m in (self.mapping(crm) for crm in crms or ("hubspot",))]
        connectors = {s.name: s.connector for s in (self.hubspot, self.salesforce, self.acc)}
        return Reconciler(self.db, mappings, connectors, hooks=hooks or PipelineHooks())

    async def settle(self, *crms: str) -> int:
        """Passes until one plans no write; how many it took."""
        reconciler = self.reconciler(*crms)
        for count in range(1, 6):
            report = await reconciler.run_pass()
            assert not report.errors, report.errors
            if report.settled:
                return count
        raise AssertionError("never settled")

    async def canonical(self, crm: str, obj: str) -> list[dict[str, Any]]:
        """Every live accounting record of a mapped object, as canonical values (with `id`)."""
        mapper = self.mapping(crm).objects[obj]
        rows = await self.acc.all(mapper.acc_object)
        return [{"id": row["id"], **mapper.acc_to_canonical(_record(self.acc.name, mapper.acc_object, row))}
                for row in rows]

    async def requests(self) -> dict[str, Counter[str]]:
        """Each system's API requests so far by route (control plane and tokens left out)."""
        out = {}
        for system in (self.hubspot, self.salesforce, self.acc):
            counted: Mapping[str, int] = (await system.stats())["requests"]
            out[system.name] = Counter({k: n for k, n in counted.items()
                                        if "/_sandbox/" not in k and "oauth" not in k.lower()
                                        and "token" not in k.lower()})
        return out


def _record(system: str, obj: str, row: Mapping[str, Any]) -> Record:
    fields = {k: v for k, v in row.items() if k != "id"}
    return Record(system, obj, str(row["id"]), fields, datetime.now(UTC))


def _spent(before: Mapping[str, Counter[str]], after: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
    return {s: {k: n for k, n in (after[s] - before[s]).items() if n} for s in after}


def _connection_of(sandbox: Sandbox, system: str) -> Any:
    """Connection settings for a system as its simulator describes it, through its registered settings model."""
    model = load_object(registration(system).settings)
    described = sandbox.descriptor[system]
    given = {k: v for k, v in described.items() if k in model.model_fields}
    return model.model_validate({**given, "system": system, "timeout_s": 5.0, "rate_limit": GENEROUS})


@contextlib.asynccontextmanager
async def open_shelf(
    books: Books, sandbox: Sandbox, db: Database, control_session: aiohttp.ClientSession
) -> AsyncIterator[Shelf]:
    """Empty systems behind freshly started connectors: the CRMs and the accounting system of `books`."""
    sandbox.restore_defaults()
    connectors: dict[str, Connector] = {}
    try:
        for system in ("hubspot", "salesforce", books.system):
            limits = SANDBOX_LIMITS.get(system, {"window_s": 1.0, "window_max": 100_000, "daily_cap": 10_000_000})
            async with control_session.post(f"{sandbox.control_url(system)}/_sandbox/limits", json=limits) as r:
                r.raise_for_status()
            settings = _connection(sandbox, system) if system in ("hubspot", "salesforce") else _connection_of(
                sandbox, system)
            connector = build_connector(system[:4], settings)
            if isinstance(connector, HubSpotConnector):
                connector.transport.search_limiter = RateLimiter("hubspot/search", Budget(1.0, 10_000))
            await connector.start()
            connectors[system] = connector
        systems = {name: System(name, c, control_session, sandbox.control_url(name)) for name, c in connectors.items()}
        yield Shelf(db, books, systems["hubspot"], systems["salesforce"], systems[books.system])
    finally:
        for connector in connectors.values():
            await connector.close()


@pytest.fixture(params=sorted(BOOKS))
async def shelf(
    request: pytest.FixtureRequest, sandbox: Sandbox, db: Database, control_session: aiohttp.ClientSession
) -> AsyncIterator[Shelf]:
    """Empty systems behind freshly started connectors: the CRMs and the accounting system of the parameter."""
    async with open_shelf(BOOKS[request.param], sandbox, db, control_session) as opened:
        yield opened


async def _hubspot_people(shelf: Shelf, people: list[tuple[str, str, str]]) -> list[str]:
    made = await shelf.hubspot.connector.create_many(
        "contacts", [Create(f"hs-{i}", {"firstname": f, "lastname": last, "email": e})
                     for i, (f, last, e) in enumerate(people)])
    assert all(o.ok for o in made), [o.error for o in made]
    return [str(o.id) for o in made]


async def _won_deal(shelf: Shelf, contact: str, amount: str = "1200", stage: str = "closedwon") -> str:
    return await shelf.hubspot.put("deals", {
        "dealname": "Annual plan", "amount": Decimal(amount), "dealstage": stage, "closedate": TODAY,
        "associations.contacts": contact,
    })


async def _invoice_of(shelf: Shelf, deal: str) -> str:
    link = await _links(shelf).lookup_crm(shelf.mapping("hubspot").name, "invoice", "hubspot", deal)
    assert link is not None and link.acc_id is not None, f"deal {deal} has no invoice"
    return link.acc_id


def _links(shelf: Shelf) -> Any:
    from syncd.store.links import LinkStore

    return LinkStore(shelf.db)


async def test_people_converge_once_across_both_crms(shelf: Shelf) -> None:
    # Two different people share a name; one person is in both CRMs with her e-mail cased differently.
    await _hubspot_people(shelf, [
        ("Jennifer", "Mitchell", "jennifer.mitchell@acme.test"),
        ("Jennifer", "Mitchell", "jen.mitchell@globex.test"),
        ("Omar", "Haddad", "Omar.Haddad@Initech.test"),
        ("Li", "Wei", "li.wei@umbrella.test"),
    ])
    await shelf.salesforce.put("Contact", {"FirstName": "Omar", "LastName": "Haddad",
                                           "Email": "omar.haddad@initech.test"})
    await shelf.salesforce.put("Contact", {"FirstName": "Sara", "LastName": "Berg", "Email": "sara.berg@hooli.test"})
    before = await shelf.requests()
    assert await shelf.settle("hubspot", "salesforce") <= 3
    customers = await shelf.canonical("hubspot", "customer")
    emails = Counter(str(c["email"]).lower() for c in customers)
    assert emails == Counter({"jennifer.mitchell@acme.test": 1, "jen.mitchell@globex.test": 1,
                              "omar.haddad@initech.test": 1, "li.wei@umbrella.test": 1, "sara.berg@hooli.test": 1})
    # Five people, five creates on the accounting side as its batches group them, and nobody made twice.
    routes = shelf.books.create_routes or (shelf.books.customers.lower(),)
    creates = sum(n for route, n in _spent(before, await shelf.requests())[shelf.acc.name].items()
                  if route.split()[0] in ("POST", "PUT") and route.rstrip("/").split("/")[-1].lower() in routes)
    # HubSpot's four people are created in one go, Salesforce's one in another (each mapping writes its own);
    # the second Jennifer Mitchell gets the mapping's alternative name up front (the first sync's whole read
    # knows the names held), so no create is refused.
    assert creates == shelf.books.create_calls(4) + shelf.books.create_calls(1)
    hub_emails = Counter(str(c["email"]).lower() for c in await shelf.hubspot.all("contacts"))
    assert max(hub_emails.values()) == 1 and "sara.berg@hooli.test" in hub_emails


async def test_a_won_deal_makes_one_draft_invoice_and_payments_come_back_once(shelf: Shelf) -> None:
    [contact] = await _hubspot_people(shelf, [("Ann", "Lee", "Ann.Lee@Example.test")])
    deal = await _won_deal(shelf, contact)
    lost = await _won_deal(shelf, contact, "99", stage="closedlost")
    await shelf.settle()
    invoices = await shelf.canonical("hubspot", "invoice")
    assert len(invoices) == 1  # the lost deal is never invoiced
    invoice = await _invoice_of(shelf, deal)
    [customer] = await shelf.acc.all(shelf.books.customers)
    if shelf.books.approve is not None:  # the accountant approves the draft before it can be paid
        await shelf.acc.update(shelf.books.invoices, invoice, shelf.books.approve(TODAY))
    await shelf.acc.put(shelf.books.payments,
                        shelf.books.payment(customer["id"], invoice, Decimal("500"), TODAY, "P-1"))
    await shelf.reconciler().run_pass()
    fields = await shelf.hubspot.get("deals", deal)
    assert (fields["syncd_amount_paid"], fields["syncd_invoice_balance"]) == (Decimal("500.00"), Decimal("700.00"))
    await shelf.acc.put(shelf.books.payments,
                        shelf.books.payment(customer["id"], invoice, Decimal("700"), TODAY, "P-2"))
    await shelf.reconciler().run_pass()
    fields = await shelf.hubspot.get("deals", deal)
    assert (fields["syncd_amount_paid"], fields["syncd_invoice_balance"]) == (Decimal("1200.00"), Decimal("0.00"))
    writes = await shelf.hubspot.writes() + await shelf.acc.writes()
    assert await shelf.settle() == 1
    assert await shelf.hubspot.writes() + await shelf.acc.writes() == writes  # reflected exactly once
    assert "syncd_amount_paid" not in {k for k, v in (await shelf.hubspot.get("deals", lost)).items() if v}


async def test_a_deal_lost_after_invoicing_voids_its_invoice(shelf: Shelf) -> None:
    [contact] = await _hubspot_people(shelf, [("Ann", "Lee", "ann.lee@example.test")])
    deal = await _won_deal(shelf, contact)
    await shelf.settle()
    invoice = await _invoice_of(shelf, deal)
    await shelf.hubspot.update("deals", deal, {"dealstage": "closedlost"})
    await shelf.reconciler().run_pass()
    mapper = shelf.mapping("hubspot").objects["invoice"]
    assert mapper.invoice is not None
    status = (await shelf.acc.get(shelf.books.invoices, invoice)).get(mapper.invoice.status_field)
    assert str(status).lower() in {mapper.invoice.void_status, *mapper.invoice.also_void}
    assert await shelf.settle() == 1
    assert len(await shelf.canonical("hubspot", "invoice")) <= 1


async def test_an_idle_pass_costs_one_list_call_per_object_and_writes_nothing(shelf: Shelf) -> None:
    ids = await _hubspot_people(shelf, [("Ann", "Lee", "ann.lee@example.test"), ("Ann", "Lee", "ann@lee.test")])
    await _won_deal(shelf, ids[0])
    await shelf.settle()
    # Time passes on the systems' side, past the overlap window: the first pass re-lists the window before its
    # cursor, and from then on nothing is read but one list per object.
    CLOCK.lag -= OVERLAP_S + 30
    reconciler = shelf.reconciler()
    await reconciler.run_pass()
    before = await shelf.requests()
    report = await reconciler.run_pass()
    assert not report.errors and report.settled
    spent = _spent(before, await shelf.requests())
    assert spent[shelf.acc.name] == shelf.books.idle_routes
    writes = ("/batch/update", "/batch/upsert", "/batch/create")
    assert not [route for route in spent["hubspot"] if route.endswith(writes)]


async def test_a_crash_between_create_and_link_leaves_no_duplicate(shelf: Shelf, tmp_path: Path) -> None:
    [hub_id] = await _hubspot_people(shelf, [("Ann", "Lee", "ann.lee@example.test")])

    class Crash(Exception):
        pass

    def crash(system: str, obj: str, outcomes: object) -> None:
        raise Crash(f"power cut after creating {system} {obj}")

    with pytest.raises(Crash):
        await shelf.reconciler(hooks=PipelineHooks(after_create=crash)).run_pass()
    assert await shelf.acc.count(shelf.books.customers) == 1
    await shelf.settle()
    assert await shelf.acc.count(shelf.books.customers) == 1
    link = await _links(shelf).lookup_crm(shelf.mapping("hubspot").name, "customer", "hubspot", hub_id)
    assert link is not None and link.state == "linked"


