"""Two people whose addresses differ by more than A-Z case stay two people, whatever Unicode folding says."""

from __future__ import annotations

import pytest

from syncd.connectors.base import FieldValue
from tests.engine.conftest import System, World
from tests.engine.test_customers import settle

# (mapping, CRM object, the CRM person's fields): 'ß' is not 'ss' to any of the systems, only to casefold().
CRM_PEOPLE = [
    pytest.param(
        "hubspot-zohobooks",
        "contacts",
        {"email": "Jörg.Straße@Example.de", "firstname": "Jörg", "lastname": "Straße", "company": "Hafen AG"},
        id="hubspot",
    ),
    pytest.param(
        "salesforce-zohobooks",
        "Contact",
        {"Email": "Jörg.Straße@Example.de", "FirstName": "Jörg", "LastName": "Straße"},
        id="salesforce",
    ),
]


def _crm(world: World, mapping: str) -> System:
    return world.hubspot if mapping.startswith("hubspot") else world.salesforce


@pytest.mark.parametrize(("mapping", "crm_object", "person"), CRM_PEOPLE)
async def test_strasse_and_straße_are_two_people_in_every_system(
    world: World, mapping: str, crm_object: str, person: dict[str, FieldValue]
) -> None:
    crm = _crm(world, mapping)
    crm_id = await crm.put(crm_object, person)
    zoho_id = await world.zoho.put(
        "contacts",
        {
            "contact_type": "customer",
            "contact_name": "Karl Strasse",
            "primary_contact.email": "jörg.strasse@example.de",
            "primary_contact.first_name": "Karl",
            "primary_contact.last_name": "Strasse",
        },
    )
    assert await settle(world, mapping) <= 3
    # Each was copied to the other system as a person of its own; neither was linked to the other.
    assert await world.zoho.count("contacts") == 2 and await crm.count(crm_object) == 2
    crm_link = await world.stores.links.lookup_crm(mapping, "customer", crm.name, crm_id)
    zoho_link = await world.stores.links.lookup_acc(mapping, "customer", "zohobooks", zoho_id)
    assert crm_link is not None and zoho_link is not None and crm_link.id != zoho_link.id
    assert crm_link.acc_id != zoho_id and zoho_link.crm_id != crm_id
    # Nobody was overwritten with the other's name or address.
    kept = await world.zoho.get("contacts", zoho_id)
    assert (kept["primary_contact.email"], kept["primary_contact.last_name"]) == ("jörg.strasse@example.de", "Strasse")
    original = await crm.get(crm_object, crm_id)
    email_field, last_field = ("email", "lastname") if crm.name == "hubspot" else ("Email", "LastName")
    assert str(original[email_field]).lower() == "jörg.straße@example.de" and original[last_field] == "Straße"
    copy = await world.zoho.get("contacts", str(crm_link.acc_id))
    assert copy["primary_contact.email"] == "jörg.straße@example.de" and copy["contact_name"] == "Jörg Straße"
