"""Two CRMs into one Zoho Books organisation at the same time: the people both CRMs hold become one customer
each, however the two mappings' runs interleave."""

from __future__ import annotations

import asyncio
from collections import Counter
from itertools import product

from syncd.engine.context import create_reference
from tests.engine.conftest import World

FIRST = ("Ana", "Bilal", "Chen", "Dara", "Elif", "Femi", "Greta", "Hiro")
LAST = ("Okafor", "Novak", "Silva", "Larsen", "Mbeki")
HUBSPOT, SALESFORCE = "hubspot-zohobooks", "salesforce-zohobooks"


async def zoho_contact_creates(world: World) -> int:
    """Create calls Zoho Books served for contacts (syncd creates with an upsert on its reference: a PUT)."""
    requests = (await world.zoho.stats())["requests"]
    return sum(n for key, n in requests.items() if key.split()[0] in ("POST", "PUT") and key.endswith("/contacts"))


async def test_both_crms_creating_the_same_people_at_once_make_one_customer_each(world: World) -> None:
    people = [(first, last, f"{first}.{last}@example.com".lower()) for first, last in product(FIRST, LAST)]
    for index, (first, last, email) in enumerate(people):
        await world.hubspot.put("contacts", {"email": email, "firstname": first, "lastname": last})
        # Salesforce keeps the address as someone typed it, and a third of the names with a middle initial:
        # the same people, whose Zoho display names would differ (so a second customer would be accepted).
        sf_first = f"{first} J." if index % 3 == 0 else first
        await world.salesforce.put("Contact", {"FirstName": sf_first, "LastName": last, "Email": email.title()})
    creates = await zoho_contact_creates(world)
    reconciler = world.reconciler(HUBSPOT, SALESFORCE)

    # As under `syncd run`: each mapping's poll of its CRM's contacts runs at the same time as the other's.
    hub, sf = await asyncio.gather(
        reconciler.run_object(HUBSPOT, "customer", ("crm",)),
        reconciler.run_object(SALESFORCE, "customer", ("crm",)),
    )
    assert not hub.errors and not sf.errors
    customers = [c for c in await world.zoho.all("contacts") if c["contact_type"] == "customer"]
    emails = Counter(str(c["primary_contact.email"]).lower() for c in customers)
    assert emails == Counter(email for _, _, email in people)  # everyone, once
    assert await zoho_contact_creates(world) - creates == len(people)  # one create call per person
    assert len(hub.of_kind("create")) + len(sf.of_kind("create")) == len(people)
    assert len(hub.of_kind("link")) + len(sf.of_kind("link")) == len(people)  # the rest matched what was created
    assert await world.stores.dead_letters.list() == []
    for mapping in (HUBSPOT, SALESFORCE):
        links = await world.stores.links.list(mapping=mapping, object="customer", limit=None)
        assert sorted(link.acc_id for link in links) == sorted(c["id"] for c in customers)

    # Full passes after that find nothing new anywhere: no customer comes back to either CRM a second time.
    for _ in range(3):
        report = await reconciler.run_pass()
        assert not report.errors and not report.of_kind("create")
        if report.settled:
            break
    assert await world.hubspot.count("contacts") == len(people)
    assert await world.salesforce.count("Contact") == len(people)
    assert await world.zoho.count("contacts") == len(people)


async def test_an_intent_left_by_a_killed_process_is_matched_again_before_it_creates(world: World) -> None:
    # Found by the chaos harness: a process killed after writing the Salesforce mapping's intent for Ann and
    # before creating her; the HubSpot mapping then created her in Zoho Books. The intent, carried out as it
    # stood, made her a second customer (and then a second Salesforce contact from that one).
    ann = {"FirstName": "Ann", "LastName": "Lee", "Email": "Ann.Lee@example.com"}
    sf_id = await world.salesforce.put("Contact", ann)
    await world.hubspot.put("contacts", {"email": "ann.lee@example.com", "firstname": "Ann", "lastname": "Lee"})
    reference = create_reference(SALESFORCE, "customer", "crm", sf_id)
    await world.stores.links.intend(SALESFORCE, "customer", "salesforce", sf_id, "zohobooks", None, reference)
    reconciler = world.reconciler(HUBSPOT, SALESFORCE)
    assert not (await reconciler.run_object(HUBSPOT, "customer", ("crm",))).errors
    report = await reconciler.run_object(SALESFORCE, "customer", ("crm",))
    assert not report.errors and not report.of_kind("create")
    [customer] = await world.zoho.all("contacts")
    link = await world.stores.links.lookup_crm(SALESFORCE, "customer", "salesforce", sf_id)
    assert link is not None and link.state == "linked" and link.acc_id == customer["id"]
    assert await world.stores.links.pending() == []
    for _ in range(3):
        if (await reconciler.run_pass()).settled:
            break
    assert await world.zoho.count("contacts") == 1
    assert await world.salesforce.count("Contact") == 1 and await world.hubspot.count("contacts") == 1
