"""Seeding a HubSpot portal from the shared SeedWorld: companies, contacts, deals and their line items."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.sandbox.seeding import SeedCounts, SeedWorld

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator


def seed_portal(sim: HubSpotSimulator, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
    """Create the first n of each list; links to items beyond what was created are skipped."""
    store = sim.store
    company_ids: list[int] = []
    for company in world.companies[: counts.companies]:
        values = store.validate("companies", {
            "name": company.name, "domain": company.domain, "phone": company.phone, "address": company.street,
            "city": company.city, "zip": company.zip, "country": company.country,
        })
        company_ids.append(store.create("companies", values, source="IMPORT").id)
    contact_ids: list[int] = []
    for person in world.people[: counts.contacts]:
        values = {
            "email": person.email, "firstname": person.first_name, "lastname": person.last_name,
            "phone": person.phone, "jobtitle": person.title,
        }
        if person.company < len(company_ids):
            values["company"] = world.companies[person.company].name
            values["associatedcompanyid"] = str(company_ids[person.company])
        if store.find_unique("contacts", "email", person.email) is not None:
            continue  # a re-seed on top of existing data must not break the unique e-mail rule
        record = store.create("contacts", store.validate("contacts", values), source="IMPORT")
        contact_ids.append(record.id)
        if person.company < len(company_ids):
            sim.associations.add_default("contacts", record.id, "companies", company_ids[person.company])
    line_count = 0
    deal_count = 0
    for deal in world.deals[: counts.deals]:
        values = store.validate("deals", {
            "dealname": deal.name, "amount": str(deal.amount), "dealstage": deal.stage, "pipeline": "default",
            "closedate": deal.close_date.isoformat(), "deal_currency_code": deal.currency,
        })
        record = store.create("deals", values, source="IMPORT")
        deal_count += 1
        if deal.person < len(contact_ids):
            sim.associations.add_default("deals", record.id, "contacts", contact_ids[deal.person])
        if deal.company < len(company_ids):
            sim.associations.add_default("deals", record.id, "companies", company_ids[deal.company])
        for line in deal.lines:
            item = store.create("line_items", store.validate("line_items", {
                "name": line.name, "quantity": str(line.quantity), "price": str(line.unit_price),
                "hs_line_item_currency_code": deal.currency,
            }), source="IMPORT")
            sim.associations.add_default("deals", record.id, "line_items", item.id)
            line_count += 1
    return {"companies": len(company_ids), "contacts": len(contact_ids), "deals": deal_count, "line_items": line_count}
