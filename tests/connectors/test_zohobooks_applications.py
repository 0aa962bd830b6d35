"""`invoicepayments`: a customer payment applied across several invoices read as one record per application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date, timedelta
from decimal import Decimal

import pytest

from syncd.connectors.base import Create, FieldValue, Update
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.sandbox.runner import Sandbox
from tests.connectors.zohobooks_fixtures import open_zoho, read_all


@pytest.fixture
async def zoho(reset_sandbox: Sandbox) -> AsyncIterator[ZohoBooksConnector]:
    """A started connector against a sandbox with no records."""
    async with open_zoho(reset_sandbox) as connector:
        yield connector


async def made(zoho: ZohoBooksConnector, obj: str, ref: str, fields: Mapping[str, FieldValue]) -> str:
    """Create one record and return its id."""
    [outcome] = await zoho.create_many(obj, [Create(ref, fields)])
    assert outcome.ok and outcome.id is not None, outcome.error
    return outcome.id


async def test_a_payment_across_two_invoices_reads_as_two_applications(zoho: ZohoBooksConnector) -> None:
    customer = await made(zoho, "contacts", "c", {"contact_name": "Acme", "contact_type": "customer"})
    invoices = []
    for n, rate in enumerate(("100", "50"), 1):
        line: Mapping[str, FieldValue] = {"name": "Work", "rate": Decimal(rate)}
        invoice = await made(zoho, "invoices", f"i{n}", {"customer_id": customer, "line_items": [line]})
        await zoho.act("invoices", invoice, "sent")
        invoices.append(invoice)
    applied: list[Mapping[str, FieldValue]] = [
        {"invoice_id": invoices[0], "amount_applied": Decimal(100)},
        {"invoice_id": invoices[1], "amount_applied": Decimal(50)},
    ]
    payment = await made(zoho, "customerpayments", "p", {
        "customer_id": customer, "payment_mode": "cash", "amount": Decimal("150"), "date": date(2025, 1, 7),
        "reference_number": "P-9", "invoices": applied,
    })  # fmt: skip
    pages = await read_all(zoho.changes("invoicepayments", None, timedelta(0)))
    read = {r.id: r for p in pages for r in p.records}
    ids = [f"{payment}:{invoices[0]}", f"{payment}:{invoices[1]}"]
    assert sorted(read) == sorted(ids)
    first = read[ids[0]].fields
    assert (first["invoice_id"], first["amount_applied"], first["amount"]) == (invoices[0], Decimal(100), Decimal(150))
    assert first["payment_id"] == payment and first["reference_number"] == "P-9"
    assert "invoices" not in first
    got = await zoho.get_many("invoicepayments", [ids[1], f"{payment}:nope", "garbage"])
    assert list(got) == [ids[1]] and got[ids[1]].fields["amount_applied"] == Decimal(50)
    found = await zoho.find_by_field("invoicepayments", "reference_number", ["P-9"])
    assert sorted(r.id for r in found["P-9"]) == sorted(ids)
    described = await zoho.describe("invoicepayments")
    assert {"invoice_id", "amount_applied", "payment_id", "amount"} <= set(described)
    assert not described["amount_applied"].updateable
    [refused] = await zoho.update_many("invoicepayments", [Update(ids[0], {"amount_applied": Decimal(1)})])
    assert not refused.ok and "read-only" in str(refused.error)
    await zoho.delete_many("customerpayments", [payment])
    assert await zoho.get_many("invoicepayments", ids) == {}
