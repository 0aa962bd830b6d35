"""Filling the organisation from a SeedWorld: contacts from people, ACCREC invoices from seed invoices (authorised,
so they can take payments), payments on them. A contact's `Name` is the person's full name; when two people share
one, the company goes in brackets (Xero refuses a second active contact of the same name)."""

from __future__ import annotations

from typing import Any

from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.xero.books import INVOICES, XeroBooks


def _contact_body(world: SeedWorld, index: int, name: str) -> dict[str, Any]:
    person = world.people[index]
    company = world.companies[person.company] if person.company < len(world.companies) else None
    body: dict[str, Any] = {"Name": name, "FirstName": person.first_name, "LastName": person.last_name,
                            "EmailAddress": person.email,
                            "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": person.phone}]}  # fmt: skip
    if company is not None:
        body["Website"] = company.domain
        body["Addresses"] = [{"AddressType": "POBOX", "AddressLine1": company.street, "City": company.city,
                              "PostalCode": company.zip, "Country": company.country}]  # fmt: skip
    return body


def seed_xero(books: XeroBooks, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
    """Create the first n people, invoices and payments of `world`; returns how many of each were created."""
    contact_ids: dict[int, str] = {}
    invoice_ids: dict[int, str] = {}
    created = {"contacts": 0, "invoices": 0, "payments": 0}

    def taken(name: str) -> bool:
        return name.strip().lower() in books.contact_names

    def contact_for(person: int) -> str:
        if person not in contact_ids:
            seed = world.people[person]
            name = f"{seed.first_name} {seed.last_name}"
            if taken(name) and seed.company < len(world.companies):
                name = f"{name} ({world.companies[seed.company].name})"
            base, suffix = name, 2
            while taken(name):
                name, suffix = f"{base} {suffix}", suffix + 1
            outcome = books.write_contact(_contact_body(world, person, name), create_only=True)
            assert outcome.record is not None, outcome.errors
            contact_ids[person] = outcome.record["ContactID"]
            created["contacts"] += 1
        return contact_ids[person]

    def invoice_for(index: int) -> str:
        if index not in invoice_ids:
            seed = world.invoices[index]
            body = {
                "Type": "ACCREC", "Contact": {"ContactID": contact_for(seed.person)}, "InvoiceNumber": seed.number,
                "Date": seed.date.isoformat(), "DueDate": seed.due_date.isoformat(), "Status": "AUTHORISED",
                "Reference": world.deals[seed.deal].name[:255] if seed.deal < len(world.deals) else "",
                "LineItems": [{"Description": line.name, "Quantity": line.quantity, "UnitAmount": str(line.unit_price),
                               "AccountCode": "200"} for line in seed.lines],
            }  # fmt: skip
            outcome = books.write_invoice(body, create_only=True)
            assert outcome.record is not None, outcome.errors
            invoice_ids[index] = outcome.record["InvoiceID"]
            created["invoices"] += 1
        return invoice_ids[index]

    for person in range(min(counts.contacts, len(world.people))):
        contact_for(person)
    for index in range(min(counts.invoices, len(world.invoices))):
        invoice_for(index)
    for index in range(min(counts.payments, len(world.payments))):
        seed = world.payments[index]
        invoice = books.get(INVOICES, invoice_for(seed.invoice))
        assert invoice is not None
        amount = min(seed.amount, invoice["AmountDue"])
        if amount <= 0:
            continue
        outcome = books.write_payment({"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"},
                                       "Amount": str(amount), "Date": seed.date.isoformat(),
                                       "Reference": seed.reference}, create_only=True)  # fmt: skip
        if outcome.record is not None:
            created["payments"] += 1
    books.changed.clear()  # imports send no webhooks
    return created

