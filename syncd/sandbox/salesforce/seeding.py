"""Seeding the simulated org from the shared SeedWorld: Accounts, Contacts, a product catalogue with standard
prices, and Opportunities whose line items are those products."""

from __future__ import annotations

from decimal import Decimal

from syncd.sandbox.salesforce.records import RecordStore
from syncd.sandbox.salesforce.schema import (
    ACCOUNT,
    CONTACT,
    OPPORTUNITY,
    OPPORTUNITY_LINE_ITEM,
    PRICEBOOK_ENTRY,
    PRODUCT,
    STANDARD_PRICEBOOK_ID,
)
from syncd.sandbox.seeding import SeedCounts, SeedWorld

# HubSpot's default pipeline stages, as the seed world names them, on Salesforce's default stages.
STAGE_FOR_DEAL_STAGE = {
    "appointmentscheduled": "Prospecting",
    "qualifiedtobuy": "Qualification",
    "presentationscheduled": "Value Proposition",
    "decisionmakerboughtin": "Id. Decision Makers",
    "contractsent": "Negotiation/Review",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}


def seed_org(store: RecordStore, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
    """Create the first n companies, people and deals as Salesforce records; return counts per sObject.

    Seeding happens outside any transaction, so it publishes no change events: the records were simply
    there before anyone subscribed.
    """
    accounts: list[str] = []
    for company in world.companies[: counts.companies]:
        record = store.create(
            ACCOUNT,
            {
                "Name": company.name,
                "Phone": company.phone,
                "Website": f"https://{company.domain}",
                "BillingStreet": company.street,
                "BillingCity": company.city,
                "BillingPostalCode": company.zip,
                "BillingCountry": company.country,
            },
        )
        accounts.append(record["Id"])
    contacts = 0
    contact_ids: list[str] = []
    for person in world.people[: counts.contacts]:
        contact = store.create(
            CONTACT,
            {
                "FirstName": person.first_name,
                "LastName": person.last_name,
                "Email": person.email,
                "Phone": person.phone,
                "Title": person.title[:128],
                "AccountId": accounts[person.company] if person.company < len(accounts) else None,
            },
        )
        contact_ids.append(contact["Id"])
        contacts += 1
    entries, made = _catalogue(store, world)
    opportunities = lines = 0
    for deal in world.deals[: counts.deals]:
        opportunity = store.create(
            OPPORTUNITY,
            {
                "Name": deal.name[:120],
                "StageName": STAGE_FOR_DEAL_STAGE.get(deal.stage, "Prospecting"),
                "CloseDate": deal.close_date.isoformat(),
                "Amount": str(deal.amount),
                "AccountId": accounts[deal.company] if deal.company < len(accounts) else None,
                "ContactId": contact_ids[deal.person] if deal.person < len(contact_ids) else None,
            },
        )
        opportunities += 1
        for order, line in enumerate(deal.lines, start=1):
            store.create(
                OPPORTUNITY_LINE_ITEM,
                {
                    "OpportunityId": opportunity["Id"],
                    "PricebookEntryId": entries[line.name],
                    "Quantity": line.quantity,
                    "UnitPrice": str(line.unit_price),
                    "SortOrder": order,
                },
            )
            lines += 1
    return {
        "Account": len(accounts),
        "Contact": contacts,
        "Opportunity": opportunities,
        "OpportunityLineItem": lines,
        "Product2": made,
        "PricebookEntry": made,
    }


def _catalogue(store: RecordStore, world: SeedWorld) -> tuple[dict[str, str], int]:
    """One active product per distinct line name of the world's deals, each with its standard price.

    Returns the standard price book entry id by product name, and how many products this call created
    (seeding twice reuses the products the first call made).
    """
    prices: dict[str, Decimal] = {}
    for deal in world.deals:
        for line in deal.lines:
            prices.setdefault(line.name, line.unit_price)
    name_field = PRODUCT.field("Name")
    assert name_field is not None
    entries: dict[str, str] = {}
    made = 0
    for number, (name, price) in enumerate(prices.items(), start=1):
        existing = store.find_by(PRODUCT, name_field, name)
        if existing:
            product_id = existing[0]["Id"]
        else:
            product = store.create(
                PRODUCT, {"Name": name, "ProductCode": f"SB-{number:03d}", "IsActive": True, "Family": "Services"}
            )
            product_id = product["Id"]
            made += 1
        standard = store.entries_of(product_id, STANDARD_PRICEBOOK_ID)
        if standard:
            entries[name] = standard[0]["Id"]
            continue
        entry = store.create(
            PRICEBOOK_ENTRY,
            {
                "Pricebook2Id": STANDARD_PRICEBOOK_ID,
                "Product2Id": product_id,
                "UnitPrice": str(price),
                "IsActive": True,
            },
        )
        entries[name] = entry["Id"]
    return entries, made
