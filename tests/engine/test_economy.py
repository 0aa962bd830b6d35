"""Calls near the minimum: a first sync reads each side once in its largest pages and writes nothing twice; an
idle pass costs a list call per object and side, however many records there are.

The systems' clocks here run minutes behind ours, as a real system's may: a stamp is trusted to say
"unchanged" only once it is older than the read by more than its precision, and in a test run in a few seconds
no stamp would be.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from syncd.connectors.base import Create
from syncd.engine.context import PipelineHooks
from syncd.sandbox.runner import Sandbox
from tests.engine.conftest import World
from tests.engine.test_deals import hubspot_api


class ServerClock:
    """The systems' clock: behind ours by `lag` seconds; lowering the lag is time passing on their side."""

    def __init__(self, lag: float) -> None:
        self.lag = lag

    def __call__(self) -> float:
        return time.time() - self.lag


CLOCK = ServerClock(300)
OVERLAP_S = 120  # the reconciler's default overlap window
PEOPLE = 200  # in HubSpot
SHARED = 60  # of them already customers in Zoho Books (history that predates syncd)
ZOHO_ONLY = 20
FIRST = ("Ann", "Bob", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal")


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """The three systems with clocks running behind ours (this module's own sandbox)."""
    async with Sandbox.running(
        workdir=tmp_path_factory.mktemp("economy"),
        clock=CLOCK,
    ) as running:
        yield running


def person(i: int) -> tuple[str, str, str]:
    """First name, last name and e-mail of person `i`: first names repeat, e-mails are unique."""
    first, last = FIRST[i % len(FIRST)], f"Lee{i}"
    return first, last, f"{first.lower()}.{last.lower()}@example.com"


async def populate(world: World, people: int = PEOPLE) -> None:
    """HubSpot people (every third e-mail in mixed case); Zoho customers, some the same people, some not."""
    contacts = []
    for i in range(people):
        first, last, email = person(i)
        contacts.append(Create(f"seed-h{i}", {"firstname": first, "lastname": last,
                                               "email": email.title() if i % 3 == 0 else email}))
    outcomes = await world.hubspot.connector.create_many("contacts", contacts)
    assert all(o.ok for o in outcomes)
    customers = []
    for i in [*range(SHARED), *range(people, people + ZOHO_ONLY)]:
        first, last, email = person(i)
        customers.append(Create(f"seed-z{i}", {
            "contact_name": f"{first} {last}", "contact_type": "customer", "primary_contact.first_name": first,
            "primary_contact.last_name": last, "primary_contact.email": email, "billing_address.city": "Austin",
        }))
    outcomes = await world.zoho.connector.create_many("contacts", customers)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]


async def routes(world: World) -> dict[str, Counter[str]]:
    """Each system's API requests so far by route (control plane and token calls left out)."""
    out: dict[str, Counter[str]] = {}
    for system in (world.hubspot, world.zoho):
        requests: Mapping[str, int] = (await system.stats())["requests"]
        out[system.name] = Counter({k: n for k, n in requests.items() if "/_sandbox/" not in k and "oauth" not in k})
    return out


def spent(before: Mapping[str, Counter[str]], after: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
    """The requests made between two snapshots, by system and route."""
    return {s: {k: n for k, n in (after[s] - before[s]).items() if n} for s in after}


async def pass_costs(world: World) -> tuple[Any, dict[str, dict[str, int]]]:
    """One pass of the shipped HubSpot ↔ Zoho Books mapping, and the requests it made."""
    before = await routes(world)
    report = await world.reconciler().run_pass()
    assert not report.errors, report.errors
    return report, spent(before, await routes(world))


async def test_first_sync_reads_each_side_once_and_an_idle_pass_costs_a_list_call_per_object(world: World) -> None:
    CLOCK.lag = 300
    await populate(world)
    CLOCK.lag -= 60  # the history predates syncd

    report, first = await pass_costs(world)
    created_in_zoho = PEOPLE - SHARED
    assert report.counts()["link"] == SHARED and report.counts()["create"] == created_in_zoho + ZOHO_ONLY
    # HubSpot: every contact in pages of 100 (and the one page of deals); the Zoho-only people created, and
    # the linked people given their billing city, each in one batch; no record read on its own.
    assert first["hubspot"] == {
        "GET /crm/v3/properties/{object_type}": 3,  # described once per connection: contacts, deals, lines
        "GET /crm/v3/objects/{object_type}": PEOPLE // 100 + 1,
        "POST /crm/v3/objects/{object_type}/batch/upsert": 1,
        # the linked contacts checked once more just before they are written, in one batch read (their page
        # was read long before: an edit since must be planned three-way, not overwritten)
        "POST /crm/v3/objects/{object_type}/batch/read": 1,
        "POST /crm/v3/objects/{object_type}/batch/update": 1,
    }
    # Zoho Books: one page of customers serves matching and the Zoho side's own read; a customer is read in
    # full only where the mapping needs what a list row lacks (its address): the matched ones and those copied
    # to HubSpot; one create per person, as Zoho has no batch create; one page each of invoices and payments.
    assert first["zohobooks"] == {
        "GET /books/v3/contacts": 1,
        "GET /books/v3/contacts/{contact_id}": SHARED + ZOHO_ONLY,
        "PUT /books/v3/contacts": created_in_zoho,
        "GET /books/v3/invoices": 1,
        "GET /books/v3/customerpayments": 1,
    }

    # The next pass reads its own creates back in the lists and nothing in detail: a create's answer carries
    # the record as written, and its stamp settles it even at Zoho's whole seconds (nobody could edit a
    # record before its id was known: README, "Calls near the minimum"). Nothing is written.
    CLOCK.lag -= 10  # the next poll, some seconds later
    report, echo = await pass_costs(world)
    assert report.settled
    assert echo["zohobooks"] == {
        "GET /books/v3/contacts": (PEOPLE + ZOHO_ONLY) // 200 + 1,
        "GET /books/v3/invoices": 1, "GET /books/v3/customerpayments": 1,
    }
    assert not [k for k in echo["hubspot"] if k.endswith(("/batch/read", "/batch/upsert", "/batch/update"))]
    assert not [k for k in echo["zohobooks"] if not k.startswith("GET ")]

    # Time passes on the systems' side, past the overlap window, and nothing changes anywhere: a list call
    # per mapped object on Zoho Books, searches and the deletion checks on HubSpot; no detail read, no write.
    CLOCK.lag -= OVERLAP_S + 30
    # The first pass after that re-lists the window before its cursor (clocks drift, indexes lag), and reads
    # nothing in detail: each record comes back at the stamp it was last seen at.
    report, window = await pass_costs(world)
    assert report.settled
    assert not [k for s in window.values() for k in s if "{" in k.removeprefix("GET /crm/v3/objects/{object_type}")
                .removeprefix("POST /crm/v3/objects/{object_type}/search")]
    for _ in range(2):
        report, idle = await pass_costs(world)
        assert report.settled
        assert idle["zohobooks"] == {
            "GET /books/v3/contacts": 1, "GET /books/v3/invoices": 1, "GET /books/v3/customerpayments": 1,
        }
        assert idle["hubspot"] == {
            # one change search per object read: contacts, deals, and the deals' line items (an object of its
            # own, with its own stamps: editing a line leaves the deal's alone). A merge survivor names what it
            # absorbed in that search; archived records are listed once a sweep interval (an hour), not here.
            "POST /crm/v3/objects/{object_type}/search": 3,
        }


async def test_the_pass_after_a_first_sync_lists_each_window_at_the_page_minimum(world: World) -> None:
    CLOCK.lag = 300
    people = 780  # with the Zoho-only people, 800 on each side: four pages of 200 exactly
    await populate(world, people)
    CLOCK.lag -= 60
    report, _ = await pass_costs(world)
    assert report.counts()["create"] == people - SHARED + ZOHO_ONLY
    # Between the passes, edits on both sides: an accountant retypes a city and an e-mail's case, a salesperson
    # a surname (the people share first names: "Ann Lee0" and "Ann Lee8" are different people). They come some
    # seconds after the pass, as people's edits do: one landing in the very second syncd created the record
    # is the residual risk README, "Calls near the minimum", weighs (a create's stamp is trusted at once).
    CLOCK.lag -= 5
    customers = {link.crm_id: link for link in await world.stores.links.list(
        "hubspot-zohobooks", "customer", "linked", limit=None)}  # fmt: skip
    hubspot_id = {email.lower(): str(c["id"]) for c in await world.hubspot.all("contacts")
                  if isinstance(email := c.get("email"), str)}  # fmt: skip
    zoho_edits = [customers[hubspot_id[person(i)[2]]].acc_id for i in (3, 400)]
    assert all(zoho_edits)
    await world.zoho.update("contacts", str(zoho_edits[0]), {"billing_address.city": "Lyon"})
    await world.zoho.update("contacts", str(zoho_edits[1]), {"primary_contact.email": person(400)[2].upper()})
    await world.hubspot.update("contacts", hubspot_id[person(8)[2]], {"lastname": "Lee-Okafor"})
    CLOCK.lag -= 10
    report, after = await pass_costs(world)
    # Every record of both sides is in the overlap window (created or read within it): 800 a side, read
    # downward from page 4 (the link table knows 800 of them), four pages each where pages read upwards,
    # each repeating a row of the one before, take five. Then the edits, and only those, are written.
    details = after["zohobooks"].pop("GET /books/v3/contacts/{contact_id}")
    assert after["zohobooks"] == {
        "GET /books/v3/contacts": 4, "GET /books/v3/invoices": 1, "GET /books/v3/customerpayments": 1,
        "PUT /books/v3/contacts/{contact_id}": 1,  # the surname
    }
    # The two edited customers in full (list rows lack the address), and the surname's customer read once
    # just before its write (an edit since must be planned three-way): the write, which sends the contact's
    # persons whole, builds them from that read instead of reading the customer again.
    assert details == 3, details
    assert after["hubspot"]["POST /crm/v3/objects/{object_type}/search"] == 4 + 2 + 2  # contacts, deals and
    # lines, and the first deletion sweep's merge searches (with its two archived lists)
    assert after["hubspot"]["POST /crm/v3/objects/{object_type}/batch/update"] == 1
    assert (await world.hubspot.get("contacts", hubspot_id[person(3)[2]]))["city"] == "Lyon"
    zoho_person = await world.zoho.get("contacts", str(customers[hubspot_id[person(8)[2]]].acc_id))
    assert zoho_person["primary_contact.last_name"] == "Lee-Okafor"


async def test_an_edit_after_settling_costs_its_reads_and_its_write_only(world: World) -> None:
    CLOCK.lag = 300
    await populate(world)
    CLOCK.lag -= 60
    for _ in range(2):
        await pass_costs(world)
        CLOCK.lag -= 10
    CLOCK.lag -= OVERLAP_S + 30
    await pass_costs(world)
    links = await world.stores.links.list("hubspot-zohobooks", "customer", "linked", limit=None)
    edited = links[:5]
    for link in edited:
        assert link.crm_id is not None
        await world.hubspot.update("contacts", link.crm_id, {"lastname": "Okafor"})
    report, costs = await pass_costs(world)
    assert report.counts().get("update", 0) == len(edited)
    # The five changed contacts come with the poll; their customers are read (one GET each: Zoho has no batch
    # read) and written; nothing else is read in detail.
    assert costs["zohobooks"].get("GET /books/v3/contacts/{contact_id}", 0) <= 2 * len(edited)
    assert costs["zohobooks"].get("PUT /books/v3/contacts/{contact_id}") == len(edited)
    assert "POST /crm/v3/objects/contacts/batch/read" not in costs["hubspot"]
    for link in edited:
        assert link.acc_id is not None
        assert (await world.zoho.get("contacts", link.acc_id))["primary_contact.last_name"] == "Okafor"


async def test_hubspot_deletions_wait_for_the_sweep_and_merges_come_with_the_changes(world: World) -> None:
    CLOCK.lag = 300
    await populate(world)
    CLOCK.lag -= 60
    for _ in range(2):
        await pass_costs(world)  # the first sync, then the pass that sweeps HubSpot's deletions a first time
        CLOCK.lag -= 10
    CLOCK.lag -= OVERLAP_S + 30
    await pass_costs(world)  # the overlap window re-read once more
    links = await world.stores.links.list("hubspot-zohobooks", "customer", "linked", limit=None)
    deleted, loser, survivor = links[:3]
    assert deleted.crm_id and deleted.acc_id and loser.crm_id and loser.acc_id and survivor.crm_id
    await world.hubspot.remove("contacts", deleted.crm_id)
    await hubspot_api(world, "POST", "/crm/v3/objects/contacts/merge",
                      {"primaryObjectId": survivor.crm_id, "objectIdToMerge": loser.crm_id})
    CLOCK.lag -= 10
    # Within the sweep interval: the merge comes with the change search that finds its survivor (its link
    # moves); the deleted contact waits for the sweep. No archived list, no merge search.
    report, costs = await pass_costs(world)
    assert [a.kind for a in report.actions if a.kind in ("move", "create")] == ["move"]
    moved = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", survivor.crm_id)
    assert moved is not None and moved.id == survivor.id
    assert costs["hubspot"].get("GET /crm/v3/objects/{object_type}", 0) == 0
    assert costs["hubspot"]["POST /crm/v3/objects/{object_type}/search"] == 3
    assert (await world.zoho.get("contacts", deleted.acc_id))["status"] == "active"
    # The sweep, once due, lists the archived contacts and deals (one page each) and the merges since the
    # last sweep, and the delete policy applies.
    CLOCK.lag -= 10
    before = await routes(world)
    report = await world.reconciler(deletion_sweep=timedelta(0)).run_pass()
    assert not report.errors, report.errors
    costs = spent(before, await routes(world))
    assert costs["hubspot"]["GET /crm/v3/objects/{object_type}"] == 2
    assert costs["hubspot"]["POST /crm/v3/objects/{object_type}/search"] == 3 + 2
    assert (await world.zoho.get("contacts", deleted.acc_id))["status"] == "inactive"


async def test_interrupted_creates_are_recovered_with_one_read_of_the_target(world: World) -> None:
    CLOCK.lag = 300
    await populate(world)
    CLOCK.lag -= 60

    class Crash(Exception):
        pass

    def power_cut(system: str, obj: str, outcomes: object) -> None:
        raise Crash(f"power cut after creating {system} {obj}")

    with pytest.raises(Crash):
        await world.reconciler(hooks=PipelineHooks(after_create=power_cut)).run_pass()
    pending = await world.stores.links.pending()
    assert len(pending) == 100 - SHARED  # the first batch's creates landed; none of them was linked
    CLOCK.lag -= 10
    report, costs = await pass_costs(world)
    recovered = [a for a in report.of_kind("link") if "recovered an interrupted create" in a.reason]
    assert len(recovered) == len(pending)
    # One read of every customer serves every reference (Zoho Books cannot filter contacts by a custom
    # field), one more is the Zoho side's first read; each recovered customer is read in full once for its
    # base, and none is created again.
    assert costs["zohobooks"]["GET /books/v3/contacts"] == 2
    assert costs["zohobooks"]["GET /books/v3/contacts/{contact_id}"] == len(pending) + SHARED + ZOHO_ONLY
    assert costs["zohobooks"]["PUT /books/v3/contacts"] == PEOPLE - SHARED - len(pending)
    assert await world.stores.links.pending() == []


async def salesforce_pass(world: World) -> tuple[Any, dict[str, dict[str, int]]]:
    """One pass of the shipped Salesforce ↔ Zoho Books mapping, and the requests it made."""
    systems = (world.salesforce, world.zoho)
    before = {s.name: Counter((await s.stats())["requests"]) for s in systems}
    report = await world.reconciler("salesforce-zohobooks").run_pass()
    assert not report.errors, report.errors
    after = {s.name: Counter((await s.stats())["requests"]) for s in systems}
    api = {name: after[name] - before[name] for name in after}
    return report, {name: {k: n for k, n in spent.items() if "/_sandbox/" not in k and "oauth" not in k}
                    for name, spent in api.items()}


async def test_the_same_economy_holds_for_salesforce(world: World) -> None:
    CLOCK.lag = 300
    [account] = await world.salesforce.connector.create_many("Account", [Create("acme", {"Name": "Acme"})])
    contacts = []
    for i in range(PEOPLE):
        first, last, email = person(i)
        contacts.append(Create(f"s{i}", {"FirstName": first, "LastName": last, "AccountId": account.id,
                                         "Email": email.upper() if i % 4 == 0 else email}))
    assert all(o.ok for o in await world.salesforce.connector.create_many("Contact", contacts))
    CLOCK.lag -= 60

    report, first = await salesforce_pass(world)
    assert report.counts()["create"] == PEOPLE
    # One query each of contacts and opportunities (2,000 rows a page), a describe of each once per
    # connection; an empty Zoho Books read; one create per person.
    assert first["salesforce"] == {
        "GET /services/data/{version}/sobjects/{sobject}/describe/": 2,
        "GET /services/data/{version}/query/": 2,
    }
    assert first["zohobooks"] == {
        "GET /books/v3/contacts": 1, "PUT /books/v3/contacts": PEOPLE,
        "GET /books/v3/invoices": 1, "GET /books/v3/customerpayments": 1,
    }
    CLOCK.lag -= 10
    report, echo = await salesforce_pass(world)
    assert report.settled
    assert "GET /books/v3/contacts/{contact_id}" not in echo["zohobooks"]  # our creates, settled by their answers
    CLOCK.lag -= OVERLAP_S + 30
    await salesforce_pass(world)
    report, idle = await salesforce_pass(world)
    assert report.settled
    assert idle["zohobooks"] == {
        "GET /books/v3/contacts": 1, "GET /books/v3/invoices": 1, "GET /books/v3/customerpayments": 1,
    }
    assert idle["salesforce"] == {
        # changed contacts and opportunities, with the recycle bin: deleted and merged ones come in the same
        # call; getDeleted (records emptied from the bin) waits for the hourly sweep
        "GET /services/data/{version}/queryAll/": 2,
    }
    # A contact deleted in Salesforce comes with the next change read, at no extra call.
    [link] = (await world.stores.links.list("salesforce-zohobooks", "customer", "linked", limit=None))[:1]
    assert link.crm_id is not None and link.acc_id is not None
    await world.salesforce.remove("Contact", link.crm_id)
    CLOCK.lag -= 10
    report, costs = await salesforce_pass(world)
    assert costs["salesforce"] == {"GET /services/data/{version}/queryAll/": 2}
    assert (await world.zoho.get("contacts", link.acc_id))["status"] == "inactive"


async def test_a_salesforce_idle_pass_reads_neither_the_newest_records_again_nor_their_lines(world: World) -> None:
    CLOCK.lag = 300
    [account] = await world.salesforce.connector.create_many("Account", [Create("acme", {"Name": "Acme"})])
    created = await world.salesforce.connector.create_many("Contact", [
        Create("s0", {"FirstName": "Ann", "LastName": "Lee", "AccountId": account.id, "Email": "ann@example.com"})])
    created = [*created, *await world.salesforce.connector.create_many("Opportunity", [
        Create("o0", {"Name": "Acme renewal", "AccountId": account.id, "StageName": "Prospecting",
                      "CloseDate": date(2030, 1, 1), "Amount": Decimal("1200")})])]  # fmt: skip
    assert all(o.ok for o in created)
    CLOCK.lag -= 60
    for _ in range(2):
        await salesforce_pass(world)
        CLOCK.lag -= 10
    CLOCK.lag -= OVERLAP_S + 30
    await salesforce_pass(world)
    # The cursors moved up to each read's start by Salesforce's clock: the overlap window no longer holds the
    # newest contact and opportunity, so no opportunity's lines are queried either.
    report, idle = await salesforce_pass(world)
    assert report.settled
    assert idle["salesforce"] == {"GET /services/data/{version}/queryAll/": 2}
