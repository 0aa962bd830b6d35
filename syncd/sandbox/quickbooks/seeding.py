"""Filling the company from a SeedWorld: customers from people (so they overlap with HubSpot and Salesforce),
invoices from deals with one SalesItemLineDetail line per deal line, payments on those invoices.

Records go through the same rules as API calls. Two people of the same name get the company in brackets, as a
bookkeeper would name them (QBO refuses a second customer with a DisplayName in use).
"""

from __future__ import annotations

from typing import Any

from syncd.sandbox.quickbooks.books import Books
from syncd.sandbox.seeding import SeedCounts, SeedWorld


def _customer_body(world: SeedWorld, index: int, name: str) -> dict[str, Any]:
    person = world.people[index]
    company = world.companies[person.company] if person.company < len(world.companies) else None
    body: dict[str, Any] = {
        "DisplayName": name,
        "GivenName": person.first_name[:100],
        "FamilyName": person.last_name[:100],
        "PrimaryEmailAddr": {"Address": person.email},
        "PrimaryPhone": {"FreeFormNumber": person.phone},
    }
    if company is not None:
        body["CompanyName"] = company.name
        body["WebAddr"] = {"URI": f"https://{company.domain}"}
        body["BillAddr"] = {"Line1": company.street, "City": company.city, "PostalCode": company.zip,
                            "Country": company.country}  # fmt: skip
    return body


def seed_company(books: Books, world: SeedWorld, counts: SeedCounts) -> dict[str, int]:
    """Create the first n people, invoices and payments of `world`; how many of each were created."""
    customers: dict[int, str] = {}
    invoices: dict[int, str] = {}
    items: dict[str, str] = {}
    created = {"customers": 0, "invoices": 0, "payments": 0}

    def taken(name: str) -> bool:
        return " ".join(name.split()).lower() in books.names["Customer"]

    def customer_for(person: int) -> str:
        if person not in customers:
            seed = world.people[person]
            name = base = f"{seed.first_name} {seed.last_name}"
            if taken(name) and seed.company < len(world.companies):
                name = base = f"{name} ({world.companies[seed.company].name})"
            suffix = 2
            while taken(name):
                name, suffix = f"{base} {suffix}", suffix + 1
            customers[person] = books.create(_customer_body(world, person, name), "Customer")["Id"]
            created["customers"] += 1
        return customers[person]

    def item_for(name: str) -> str:
        key = " ".join(name.split()).lower()
        if key not in items:
            holder = books.names["Item"].get(key)
            items[key] = holder or books.create({"Name": name, "Type": "Service"}, "Item")["Id"]
        return items[key]

    def invoice_for(index: int) -> str:
        if index not in invoices:
            seed = world.invoices[index]
            body = {
                "CustomerRef": {"value": customer_for(seed.person)},
                "DocNumber": seed.number[:21],
                "TxnDate": seed.date.isoformat(),
                "DueDate": seed.due_date.isoformat(),
                "Line": [
                    {"DetailType": "SalesItemLineDetail", "Amount": float(line.amount), "Description": line.name,
                     "SalesItemLineDetail": {"ItemRef": {"value": item_for(line.name)},
                                             "UnitPrice": float(line.unit_price), "Qty": line.quantity}}
                    for line in seed.lines
                ],
            }  # fmt: skip
            invoices[index] = books.create(body, "Invoice")["Id"]
            created["invoices"] += 1
        return invoices[index]

    for person in range(min(counts.contacts, len(world.people))):
        customer_for(person)
    for index in range(min(counts.invoices, len(world.invoices))):
        invoice_for(index)
    for index in range(min(counts.payments, len(world.payments))):
        seed = world.payments[index]
        invoice = books.get("Invoice", invoice_for(seed.invoice))
        books.create({
            "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
            "TotalAmt": float(seed.amount),
            "TxnDate": seed.date.isoformat(),
            "PaymentRefNum": seed.reference[:21],
            "Line": [{"Amount": float(seed.amount), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        }, "Payment")  # fmt: skip
        created["payments"] += 1
    return created
