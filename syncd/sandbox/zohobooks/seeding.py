"""Filling the books from a SeedWorld: contacts from people, invoices from deals, payments on those invoices.

Records go through the same validation as API calls. A contact's name is the person's full name; when two
people share one, the company name is added in brackets (Zoho refuses duplicate contact names). A payment or
invoice whose contact/invoice is beyond the requested counts brings that dependency along.
"""

from __future__ import annotations

from typing import Any

from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.zohobooks.contacts import ContactRoutes
from syncd.sandbox.zohobooks.invoices import InvoiceRoutes
from syncd.sandbox.zohobooks.payments import PaymentRoutes


def _contact_body(world: SeedWorld, index: int, name: str) -> dict[str, Any]:
    person = world.people[index]
    company = world.companies[person.company] if person.company < len(world.companies) else None
    body: dict[str, Any] = {
        "contact_name": name,
        "company_name": company.name if company else "",
        "contact_type": "customer",
        "contact_persons": [
            {
                "first_name": person.first_name,
                "last_name": person.last_name,
                "email": person.email,
                "phone": person.phone,
                "designation": person.title[:100],
                "is_primary_contact": True,
            }
        ],
    }
    if company is not None:
        body["website"] = company.domain
        body["billing_address"] = {
            "address": company.street, "city": company.city, "zip": company.zip, "country": company.country,
            "phone": company.phone,
        }  # fmt: skip
    return body


def seed_books(
    contacts: ContactRoutes,
    invoices: InvoiceRoutes,
    payments: PaymentRoutes,
    world: SeedWorld,
    counts: SeedCounts,
) -> dict[str, int]:
    """Create the first n people, invoices and payments of `world`; returns how many of each were created."""
    ledger = contacts.ctx.ledger
    contact_ids: dict[int, str] = {}
    invoice_ids: dict[int, str] = {}
    created = {"contacts": 0, "invoices": 0, "payments": 0}

    def taken(name: str) -> bool:
        return any(c.contact_name.lower() == name.lower() for c in ledger.contact_index.find("name", name.lower()))

    def contact_for(person: int) -> str:
        if person not in contact_ids:
            first = world.people[person]
            name = f"{first.first_name} {first.last_name}"
            if taken(name):
                company = world.companies[first.company].name if first.company < len(world.companies) else ""
                name = f"{name} ({company})" if company else name
            suffix = 2
            base = name
            while taken(name):
                name, suffix = f"{base} {suffix}", suffix + 1
            contact_ids[person] = contacts.create_contact(_contact_body(world, person, name)).contact_id
            created["contacts"] += 1
        return contact_ids[person]

    def invoice_for(index: int) -> str:
        if index not in invoice_ids:
            seed = world.invoices[index]
            body = {
                "customer_id": contact_for(seed.person),
                "invoice_number": seed.number,
                "date": seed.date.isoformat(),
                "due_date": seed.due_date.isoformat(),
                "reference_number": world.deals[seed.deal].name[:100] if seed.deal < len(world.deals) else "",
                "line_items": [
                    {"name": line.name, "rate": str(line.unit_price), "quantity": line.quantity} for line in seed.lines
                ],
            }
            invoice_ids[index] = invoices.create_invoice(body, send=seed.status == "sent").invoice_id
            created["invoices"] += 1
        return invoice_ids[index]

    for person in range(min(counts.contacts, len(world.people))):
        contact_for(person)
    for index in range(min(counts.invoices, len(world.invoices))):
        invoice_for(index)
    for index in range(min(counts.payments, len(world.payments))):
        seed = world.payments[index]
        invoice_id = invoice_for(seed.invoice)
        invoice = ledger.invoice(invoice_id)
        payments.create_payment(
            {
                "customer_id": invoice.customer_id,
                "payment_mode": seed.mode,
                "amount": str(seed.amount),
                "date": seed.date.isoformat(),
                "reference_number": seed.reference,
                "invoices": [{"invoice_id": invoice_id, "amount_applied": str(seed.amount)}],
            }
        )
        created["payments"] += 1
    return created
