"""Zoho Books simulator: OAuth, organisation and token checks, contacts, invoices, paging, upserts, quotas."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.sandbox.test_zohobooks_support import Books, books, new_contact, new_invoice

__all__ = ["books"]


async def test_refresh_token_grant_issues_a_one_hour_token_that_opens_the_api(books: Books) -> None:
    creds = books.sim.credentials(books.root)
    params = {
        "refresh_token": creds["refresh_token"],
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "grant_type": "refresh_token",
    }
    async with books.session.post(books.root + "/oauth/v2/token", params=params) as response:
        assert response.status == 200
        token = await response.json()
    assert set(token) == {"access_token", "expires_in", "api_domain", "token_type"}
    assert token["expires_in"] == 3600 and token["token_type"] == "Bearer" and token["api_domain"] == books.root
    status, answer = await books.call("GET", "/contacts", token=token["access_token"])
    assert status == 200 and answer["code"] == 0


async def test_form_encoded_refresh_works_and_a_bad_refresh_token_is_an_error_with_http_200(books: Books) -> None:
    creds = books.sim.credentials(books.root)
    form = {"client_id": creds["client_id"], "client_secret": creds["client_secret"], "grant_type": "refresh_token"}
    async with books.session.post(
        books.root + "/oauth/v2/token", data={**form, "refresh_token": creds["refresh_token"]}
    ) as ok:
        assert "access_token" in await ok.json()
    async with books.session.post(books.root + "/oauth/v2/token", data={**form, "refresh_token": "1000.nope"}) as bad:
        assert bad.status == 200
        assert await bad.json() == {"error": "invalid_code"}


async def test_consent_redirect_then_code_exchange_returns_a_refresh_token(books: Books) -> None:
    creds = books.sim.credentials(books.root)
    consent = {
        "client_id": creds["client_id"], "redirect_uri": "http://127.0.0.1:9/callback",
        "scope": "ZohoBooks.fullaccess.all",
        "state": "xyz", "access_type": "offline", "response_type": "code",
    }  # fmt: skip
    async with books.session.get(books.root + "/oauth/v2/auth", params=consent, allow_redirects=False) as response:
        assert response.status == 302
        location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert location.path == "/callback" and query["state"] == ["xyz"]
    exchange = {
        "grant_type": "authorization_code", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        "redirect_uri": "http://127.0.0.1:9/callback", "code": query["code"][0],
    }  # fmt: skip
    async with books.session.post(books.root + "/oauth/v2/token", data=exchange) as response:
        token = await response.json()
    assert token["refresh_token"].startswith("1000.") and token["expires_in"] == 3600
    # A code is single-use.
    async with books.session.post(books.root + "/oauth/v2/token", data=exchange) as response:
        assert response.status == 200 and await response.json() == {"error": "invalid_code"}


async def test_expired_or_unknown_token_gets_401_code_57(books: Books) -> None:
    books.clock.advance(3599)
    assert (await books.call("GET", "/contacts"))[0] == 200
    books.clock.advance(2)
    status, answer = await books.call("GET", "/contacts")
    assert (status, answer["code"]) == (401, 57)
    status, answer = await books.call("GET", "/contacts", token="1000.at-forged")
    assert (status, answer["code"]) == (401, 57)


async def test_organization_id_is_required_and_must_be_ours(books: Books) -> None:
    status, answer = await books.call("GET", "/invoices", organization=None)
    assert status == 400 and "CompanyID" in answer["message"]
    status, answer = await books.call("GET", "/invoices", organization="999")
    assert status == 401 and answer["code"] == 6041


async def test_contact_crud_with_primary_person_custom_field_and_status(books: Books) -> None:
    contact = await new_contact(
        books,
        "Ada Lovelace",
        billing_address={"address": "1 Analytical Way", "city": "London", "zip": "N1", "country": "UK"},
        custom_fields=[{"api_name": "cf_syncd_ref", "value": "ref-1"}],
    )
    assert contact["contact_persons"][0]["is_primary_contact"] is True
    assert contact["email"] == "ada@example.com" and contact["primary_contact_id"]
    assert contact["cf_syncd_ref"] == "ref-1" and contact["custom_fields"][0]["api_name"] == "cf_syncd_ref"
    assert contact["billing_address"]["city"] == "London" and contact["status"] == "active"
    contact_id = contact["contact_id"]
    person_id = contact["contact_persons"][0]["contact_person_id"]
    # Keep the first person (by ID), add a second one who becomes primary.
    persons = [
        {"contact_person_id": person_id, "first_name": "Ada", "email": "ada@example.com"},
        {"first_name": "Charles", "last_name": "Babbage", "email": "cb@example.com", "is_primary_contact": True},
    ]
    status, answer = await books.call("PUT", f"/contacts/{contact_id}", json_body={"contact_persons": persons})
    assert status == 200
    updated = answer["contact"]
    assert [p["is_primary_contact"] for p in updated["contact_persons"]] == [False, True]
    assert updated["contact_persons"][0]["contact_person_id"] == person_id and updated["email"] == "cb@example.com"
    status, answer = await books.call("POST", f"/contacts/{contact_id}/inactive")
    assert status == 200
    assert (await books.call("GET", f"/contacts/{contact_id}"))[1]["contact"]["status"] == "inactive"
    status, answer = await books.call("GET", "/contacts", params={"filter_by": "Status.Active"})
    assert answer["contacts"] == []
    assert (await books.call("POST", f"/contacts/{contact_id}/active"))[0] == 200
    status, answer = await books.call("DELETE", f"/contacts/{contact_id}")
    assert (status, answer["message"]) == (200, "The contact has been deleted.")
    status, answer = await books.call("GET", f"/contacts/{contact_id}")
    assert (status, answer["code"], answer["message"]) == (404, 1002, "Contact does not exist.")


async def test_contact_validation_errors(books: Books) -> None:
    status, answer = await books.call("POST", "/contacts", json_body={"company_name": "No name"})
    assert status == 400 and "contact_name" in answer["message"]
    await new_contact(books, "Grace Hopper", custom_fields=[{"api_name": "cf_syncd_ref", "value": "g-1"}])
    status, answer = await books.call("POST", "/contacts", json_body={"contact_name": "grace hopper"})
    assert status == 400 and "already exists" in answer["message"]
    dup_ref = {"contact_name": "Other", "custom_fields": [{"api_name": "cf_syncd_ref", "value": "g-1"}]}
    status, answer = await books.call("POST", "/contacts", json_body=dup_ref)
    assert status == 400 and "unique" in answer["message"]
    bad_email = {"contact_name": "X", "contact_persons": [{"first_name": "X", "email": "not-an-email"}]}
    assert (await books.call("POST", "/contacts", json_body=bad_email))[0] == 400
    async with books.session.post(
        books.root + "/books/v3/contacts",
        params={"organization_id": books.sim.organization_id},
        headers={"Authorization": f"Zoho-oauthtoken {books.token}", "Content-Type": "application/json"},
        data="{not json",
    ) as response:
        assert response.status == 400
        assert await response.json() == {"code": 4, "message": "Invalid value passed for JSONString"}


async def test_contact_list_filters_sorting_and_modified_after(books: Books) -> None:
    first = await new_contact(books, "Alan Turing")
    books.clock.advance(10)
    await new_contact(books, "Barbara Liskov")
    books.clock.advance(10)
    _, answer = await books.call("GET", "/contacts", params={"email": "ALAN@example.com"})
    assert [c["contact_name"] for c in answer["contacts"]] == ["Alan Turing"]
    _, answer = await books.call("GET", "/contacts", params={"contact_name_contains": "lisk"})
    assert [c["contact_name"] for c in answer["contacts"]] == ["Barbara Liskov"]
    await books.call("PUT", f"/contacts/{first['contact_id']}", json_body={"notes": "touched"})
    _, answer = await books.call("GET", "/contacts", params={"sort_column": "last_modified_time", "sort_order": "D"})
    assert [c["contact_name"] for c in answer["contacts"]] == ["Alan Turing", "Barbara Liskov"]
    _, answer = await books.call("GET", "/contacts", params={"last_modified_time": "2026-01-01T00:00:15+0000"})
    assert [c["contact_name"] for c in answer["contacts"]] == ["Alan Turing"]
    assert (await books.call("GET", "/contacts", params={"sort_column": "bogus"}))[0] == 400


async def test_paging_reports_has_more_page_and_caps_per_page_at_200(books: Books) -> None:
    customer = await new_contact(books, "Paging Customer")
    for n in range(5):
        await new_invoice(books, customer["contact_id"], (f"Line {n}", 10 + n))
    _, answer = await books.call("GET", "/invoices", params={"per_page": "2", "page": "1"})
    context = answer["page_context"]
    assert len(answer["invoices"]) == 2 and context["has_more_page"] is True and context["report_name"] == "Invoices"
    _, answer = await books.call("GET", "/invoices", params={"per_page": "2", "page": "3"})
    assert len(answer["invoices"]) == 1 and answer["page_context"]["has_more_page"] is False
    _, answer = await books.call("GET", "/invoices", params={"per_page": "500"})
    assert answer["page_context"]["per_page"] == 200 and len(answer["invoices"]) == 5
    assert all("line_items" not in row for row in answer["invoices"])


async def test_upsert_by_unique_custom_field(books: Books) -> None:
    headers = {"X-Unique-Identifier-Key": "cf_syncd_ref", "X-Unique-Identifier-Value": "link-42"}
    status, answer = await books.call("PUT", "/contacts", json_body={"contact_name": "Upsert Co"}, headers=headers)
    assert (status, answer["code"]) == (404, 1002)  # no match and no X-Upsert: nothing created
    status, answer = await books.call(
        "PUT", "/contacts", json_body={"contact_name": "Upsert Co"}, headers={**headers, "X-Upsert": "true"}
    )
    assert status == 201 and answer["contact"]["cf_syncd_ref"] == "link-42"
    contact_id = answer["contact"]["contact_id"]
    status, answer = await books.call(
        "PUT", "/contacts", json_body={"contact_name": "Upsert Co Renamed"}, headers={**headers, "X-Upsert": "true"}
    )
    assert status == 200 and answer["contact"]["contact_id"] == contact_id
    assert answer["contact"]["contact_name"] == "Upsert Co Renamed"
    status, answer = await books.call(
        "PUT", "/contacts", json_body={"contact_name": "x"}, headers={**headers, "X-Unique-Identifier-Key": "email"}
    )
    assert status == 400
    inv_headers = {"X-Unique-Identifier-Key": "cf_syncd_ref", "X-Unique-Identifier-Value": "inv-7", "X-Upsert": "true"}
    body = {"customer_id": contact_id, "line_items": [{"name": "Thing", "rate": 100}]}
    status, answer = await books.call("PUT", "/invoices", json_body=body, headers=inv_headers)
    assert status == 201 and answer["invoice"]["cf_syncd_ref"] == "inv-7"
    status, again = await books.call("PUT", "/invoices", json_body=body, headers=inv_headers)
    assert status == 200 and again["invoice"]["invoice_id"] == answer["invoice"]["invoice_id"]


async def test_rate_limit_is_100_a_minute_then_429_until_the_next_window(books: Books) -> None:
    for _ in range(100):
        assert (await books.call("GET", "/items"))[0] == 200
    status, answer = await books.call("GET", "/items")
    assert status == 429 and answer["code"] == 44
    books.clock.advance(60)
    assert (await books.call("GET", "/items"))[0] == 200
    books.sim.apply_limits({"daily_cap": 101})
    status, answer = await books.call("GET", "/items")
    assert (status, answer["code"]) == (429, 45)


async def test_injected_faults_answer_zoho_shaped_500_and_429(books: Books) -> None:
    books.sim.faults.error_rate = 1.0
    status, answer = await books.call("GET", "/contacts")
    assert (status, answer) == (500, {"code": 1000, "message": "Internal error"})
    books.sim.faults.error_rate = 0.0
    books.sim.faults.rate_limit_rate = 1.0
    assert (await books.call("GET", "/contacts"))[0] == 429


async def test_items_crud(books: Books) -> None:
    status, answer = await books.call("POST", "/items", json_body={"name": "Widget", "rate": 12.5})
    assert status == 201 and answer["item"]["rate"] == 12.5
    item_id = answer["item"]["item_id"]
    status, answer = await books.call("PUT", f"/items/{item_id}", json_body={"rate": 15})
    assert answer["item"]["rate"] == 15
    customer = await new_contact(books, "Item Buyer")
    status, answer = await books.call(
        "POST",
        "/invoices",
        json_body={"customer_id": customer["contact_id"], "line_items": [{"item_id": item_id, "quantity": 2}]},
    )
    assert status == 201 and answer["invoice"]["line_items"][0]["name"] == "Widget" and answer["invoice"]["total"] == 30
    assert (await books.call("DELETE", f"/items/{item_id}"))[0] == 400  # in use
    assert (await books.call("POST", "/items", json_body={"name": "No rate"}))[0] == 400
