"""Seeding the simulated org from the shared SeedWorld: Accounts, Contacts, Opportunities and line items."""

from __future__ import annotations

from syncd.sandbox.salesforce.records import RecordStore
from syncd.sandbox.salesforce.schema import ACCOUNT, CONTACT, OPPORTUNITY, OPPORTUNITY_LINE_ITEM
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
                    "Name": line.name,
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
    }
