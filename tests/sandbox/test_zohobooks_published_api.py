"""Zoho Books endpoints syncd does not call but other readers do: a contact's persons on their own, items marked
inactive, and the organisations list; every answer is checked against Zoho's OpenAPI files for them."""

from __future__ import annotations

from tests.sandbox.test_zohobooks_support import Books, books, new_contact

__all__ = ["books"]


async def _persons(books: Books, contact_id: str) -> list[dict[str, object]]:
    status, answer = await books.call("GET", f"/contacts/{contact_id}/contactpersons")
    assert status == 200, answer
    return list(answer["contact_persons"])


async def test_contact_persons_are_the_contact_s_own_persons(books: Books) -> None:
    ann = await new_contact(books, "Ann Lee")
    contact_id = ann["contact_id"]
    first = ann["contact_persons"][0]
    listed = await _persons(books, contact_id)
    assert [(p["contact_person_id"], p["is_primary_contact"], p["contact_id"]) for p in listed] == [
        (first["contact_person_id"], True, contact_id)]

    status, made = await books.call("POST", "/contacts/contactpersons", json_body={
        "contact_id": contact_id, "first_name": "Bo", "last_name": "Park", "email": "Bo.Park@example.com"})
    assert status == 201, made
    bo = made["contact_person"][0]
    assert (bo["is_primary_contact"], bo["email"]) == (False, "Bo.Park@example.com")
    # The contact's own body, its e-mail lookup and its modification time follow.
    status, found = await books.call("GET", "/contacts", params={"email": "bo.park@example.com"})
    assert [c["contact_id"] for c in found["contacts"]] == [contact_id]

    status, answer = await books.call("POST", f"/contacts/contactpersons/{bo['contact_person_id']}/primary")
    assert status == 200, answer
    status, contact = await books.call("GET", f"/contacts/{contact_id}")
    assert contact["contact"]["primary_contact_id"] == bo["contact_person_id"]
    assert contact["contact"]["email"] == "Bo.Park@example.com"

    status, updated = await books.call("PUT", f"/contacts/contactpersons/{bo['contact_person_id']}", json_body={
        "contact_id": contact_id, "first_name": "Bo", "phone": "+1 415 555 0100"})
    assert status == 200 and updated["contact_person"][0]["phone"] == "+1 415 555 0100"
    status, one = await books.call("GET", f"/contacts/{contact_id}/contactpersons/{bo['contact_person_id']}")
    assert status == 200 and one["contact_person"]["last_name"] == "Park"

    status, answer = await books.call("DELETE", f"/contacts/contactpersons/{bo['contact_person_id']}")
    assert status == 200, answer
    assert [(p["contact_person_id"], p["is_primary_contact"]) for p in await _persons(books, contact_id)] == [
        (first["contact_person_id"], True)]


async def test_contact_person_refusals(books: Books) -> None:
    ann = await new_contact(books, "Ann Lee")
    other = await new_contact(books, "Cy Moss")
    person_id = ann["contact_persons"][0]["contact_person_id"]
    status, answer = await books.call("POST", "/contacts/contactpersons", json_body={"first_name": "Bo"})
    assert status == 400, answer
    status, answer = await books.call("POST", "/contacts/contactpersons", json_body={
        "contact_id": ann["contact_id"], "first_name": "Bo", "email": "not-an-address"})
    assert status == 400, answer
    status, answer = await books.call("PUT", f"/contacts/contactpersons/{person_id}", json_body={
        "contact_id": other["contact_id"], "first_name": "Ann"})
    assert status == 400, answer  # a person cannot move to another contact
    status, answer = await books.call("GET", f"/contacts/{other['contact_id']}/contactpersons/{person_id}")
    assert status == 404, answer
    status, answer = await books.call("DELETE", "/contacts/contactpersons/123456789")
    assert status == 404, answer
    assert len(await _persons(books, ann["contact_id"])) == 1


async def test_organizations_list_the_sandbox_organisation_without_an_organization_id(books: Books) -> None:
    status, answer = await books.call("GET", "/organizations", organization=None)
    assert status == 200, answer
    assert [o["organization_id"] for o in answer["organizations"]] == [books.sim.organization_id]
    status, one = await books.call("GET", f"/organizations/{books.sim.organization_id}")
    assert status == 200 and one["organization"]["currency_code"] == "USD"
    status, answer = await books.call("GET", "/organizations/1234567")
    assert status == 404, answer
    # Everything else still needs the organisation.
    status, answer = await books.call("GET", "/contacts", organization=None)
    assert status == 400, answer


async def test_items_can_be_marked_inactive_and_filtered_by_status(books: Books) -> None:
    made = []
    for name in ("Annual licence", "Support plan"):
        status, answer = await books.call("POST", "/items", json_body={"name": name, "rate": 100})
        assert status == 201, answer
        made.append(answer["item"]["item_id"])
    status, answer = await books.call("POST", f"/items/{made[0]}/inactive")
    assert status == 200, answer
    status, listed = await books.call("GET", "/items", params={"filter_by": "Status.Active"})
    assert [i["item_id"] for i in listed["items"]] == [made[1]]
    status, listed = await books.call("GET", "/items", params={"filter_by": "Status.Inactive"})
    assert [(i["item_id"], i["status"]) for i in listed["items"]] == [(made[0], "inactive")]
    status, answer = await books.call("POST", f"/items/{made[0]}/active")
    assert status == 200, answer
    status, listed = await books.call("GET", "/items")
    assert {i["status"] for i in listed["items"]} == {"active"}
    status, answer = await books.call("GET", "/items", params={"filter_by": "Status.Sold"})
    assert status == 400, answer


async def test_item_details_reads_several_items_in_one_call(books: Books) -> None:
    made = []
    for name in ("Annual licence", "Support plan", "Implementation package"):
        status, answer = await books.call("POST", "/items", json_body={"name": name, "rate": 100})
        made.append(answer["item"]["item_id"])
    status, answer = await books.call("GET", "/itemdetails", params={"item_ids": f"{made[2]},{made[0]}"})
    assert status == 200, answer
    assert [i["item_id"] for i in answer["items"]] == [made[2], made[0]]
    status, answer = await books.call("GET", "/itemdetails", params={"item_ids": f"{made[0]},123456789"})
    assert status == 404, answer
    status, answer = await books.call("GET", "/itemdetails")
    assert status == 400, answer


async def test_a_contact_s_further_addresses(books: Books) -> None:
    ann = await new_contact(books, "Ann Lee")
    path = f"/contacts/{ann['contact_id']}/address"
    status, made = await books.call("POST", path, json_body={"attention": "Accounts", "address": "1 Main St",
                                                            "city": "Boston", "country": "USA"})
    assert status == 200, made
    address_id = made["address_info"]["address_id"]
    status, listed = await books.call("GET", path)
    assert [(a["address_id"], a["city"]) for a in listed["addresses"]] == [(address_id, "Boston")]
    status, updated = await books.call("PUT", f"{path}/{address_id}", json_body={"address_id": address_id,
                                                                                 "city": "Salem"})
    assert status == 200 and updated["address_info"]["address"] == "1 Main St"
    assert updated["address_info"]["city"] == "Salem"
    status, answer = await books.call("POST", path, json_body={"city": 42})
    assert status == 400, answer
    status, answer = await books.call("DELETE", f"{path}/{address_id}")
    assert status == 200, answer
    status, answer = await books.call("DELETE", f"{path}/{address_id}")
    assert status == 404, answer
    status, listed = await books.call("GET", path)
    assert listed["addresses"] == []
    # The contact's billing address is its own, untouched.
    status, contact = await books.call("GET", f"/contacts/{ann['contact_id']}")
    assert contact["contact"]["billing_address"]["city"] == ""
