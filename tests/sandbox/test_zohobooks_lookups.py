"""Zoho Books simulator lookups (e-mail, name, unique custom value, customer, invoice) follow every edit, delete
and state reload, and the documented `custom_field` invoice filter finds an invoice by its reference."""

from __future__ import annotations

from tests.sandbox.test_zohobooks_support import Books, books, new_contact, new_invoice

__all__ = ["books"]

REF = {"X-Unique-Identifier-Key": "cf_syncd_ref"}


async def _emails(books: Books, email: str) -> list[str]:
    status, answer = await books.call("GET", "/contacts", params={"email": email})
    assert status == 200, answer
    return [c["contact_name"] for c in answer["contacts"]]


async def test_email_and_name_lookups_follow_edits_and_deletes(books: Books) -> None:
    ann = await new_contact(books, "Ann Lee")
    await new_contact(books, "Ann Other", contact_persons=[{"first_name": "Ann", "email": "ANN@example.com"}])
    assert await _emails(books, "ann@EXAMPLE.com") == ["Ann Lee", "Ann Other"]  # creation order, any case

    person = ann["contact_persons"][0]
    status, _ = await books.call("PUT", f"/contacts/{ann['contact_id']}", json_body={
        "contact_name": "Ann Lee-Park",
        "contact_persons": [{"contact_person_id": person["contact_person_id"], "email": "ann.park@example.com"}],
    })  # fmt: skip
    assert status == 200
    assert await _emails(books, "ann@example.com") == ["Ann Other"]
    assert await _emails(books, "Ann.Park@example.com") == ["Ann Lee-Park"]
    # The old name is free again; the new one is taken whatever its case.
    assert (await new_contact(books, "ann lee"))["contact_name"] == "ann lee"
    status, answer = await books.call("POST", "/contacts", json_body={"contact_name": "ANN LEE-PARK"})
    assert status == 400 and "already exists" in answer["message"]

    status, _ = await books.call("DELETE", f"/contacts/{ann['contact_id']}")
    assert status == 200
    assert await _emails(books, "ann.park@example.com") == []


async def test_unique_reference_is_found_after_a_reload_and_freed_by_a_delete(books: Books) -> None:
    headers = {**REF, "X-Unique-Identifier-Value": "hubspot:contacts:1", "X-Upsert": "true"}
    status, made = await books.call("PUT", "/contacts", json_body={"contact_name": "Bo Diaz"}, headers=headers)
    assert status == 201
    books.sim.load_state(books.sim.dump_state())  # lookups are rebuilt from the records

    status, again = await books.call("PUT", "/contacts", json_body={"notes": "seen"}, headers=headers)
    assert status == 200 and again["contact"]["contact_id"] == made["contact"]["contact_id"]
    status, clash = await books.call("POST", "/contacts", json_body={
        "contact_name": "Bo Two", "custom_fields": [{"api_name": "cf_syncd_ref", "value": "hubspot:contacts:1"}],
    })  # fmt: skip
    assert status == 400 and "already used" in clash["message"]

    status, _ = await books.call("DELETE", f"/contacts/{made['contact']['contact_id']}")
    assert status == 200
    status, fresh = await books.call("PUT", "/contacts", json_body={"contact_name": "Bo Three"}, headers=headers)
    assert status == 201 and fresh["contact"]["contact_id"] != made["contact"]["contact_id"]


async def test_custom_field_filter_finds_an_invoice_by_its_reference(books: Books) -> None:
    customer = await new_contact(books, "Cy Moss")
    for ref in ("hubspot:deals:11", "hubspot:deals:12"):
        await new_invoice(books, customer["contact_id"], ("Work", 100),
                          custom_fields=[{"api_name": "cf_syncd_ref", "value": ref}])  # fmt: skip
    await new_invoice(books, customer["contact_id"], ("Other", 5))

    async def numbers(**params: str) -> list[str]:
        status, answer = await books.call("GET", "/invoices", params={**params, "sort_column": "invoice_number",
                                                                      "sort_order": "A"})  # fmt: skip
        assert status == 200, answer
        return [i["invoice_number"] for i in answer["invoices"]]

    assert await numbers(custom_field="hubspot:deals:12") == ["INV-000002"]
    assert await numbers(custom_field_startswith="hubspot:deals:") == ["INV-000001", "INV-000002"]
    assert await numbers(custom_field_contains="deals:11") == ["INV-000001"]
    assert await numbers(custom_field="nothing") == []


async def test_a_customer_with_an_invoice_cannot_be_deleted_and_owes_its_balance(books: Books) -> None:
    customer = await new_contact(books, "Di Roe")
    await new_invoice(books, customer["contact_id"], ("Work", 250))
    status, answer = await books.call("GET", f"/contacts/{customer['contact_id']}")
    assert answer["contact"]["has_transaction"] is True
    assert answer["contact"]["outstanding_receivable_amount"] == 250
    status, _ = await books.call("DELETE", f"/contacts/{customer['contact_id']}")
    assert status == 400
