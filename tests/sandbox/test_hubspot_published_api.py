"""The HubSpot simulator's published endpoints that syncd itself does not call but other readers do: pipelines,
OAuth v3, schemas, owners, the legacy v1/v2 properties and record reads, and 403 MISSING_SCOPES for standard
objects the portal does not hold. Responses the vendor's OpenAPI files cover are checked against them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from syncd.sandbox.hubspot import HubSpotSimulator
from syncd.sandbox.hubspot.values import to_epoch_ms
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from tests.contracts.hubspot.harness import ContractHarness


@pytest.fixture(scope="module")
async def harness() -> AsyncIterator[ContractHarness]:
    """One simulator per module, on a loopback port."""
    running = ContractHarness(HubSpotSimulator(rng_seed=17))
    await running.server.start_server()
    yield running
    await running.server.close()


@pytest.fixture
async def hub(harness: ContractHarness) -> AsyncIterator[ContractHarness]:
    """A portal seeded with 3 companies, 12 contacts and 6 deals; responses are checked after the test."""
    harness.sim.restore_defaults()
    harness.sim.seed(SeedWorld.build(4, 12), SeedCounts(contacts=12, companies=3, deals=6))
    harness.exchanges.clear()
    yield harness
    harness.check()


@pytest.fixture
async def http(hub: ContractHarness) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session with a live bearer token, rooted at the simulator."""
    async with aiohttp.ClientSession(base_url=hub.base_url, headers=hub.headers()) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, status: int = 200, **params: Any) -> Any:
    """GET a path and return its JSON body, failing unless the status is the expected one."""
    async with http.get(path, params=params) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def test_the_deal_pipeline_is_served_by_v3_and_legacy_paths(hub: ContractHarness,
                                                                  http: aiohttp.ClientSession) -> None:
    listed = await get(http, "/crm/v3/pipelines/deals")
    stage_ids = [s["id"] for s in listed["results"][0]["stages"]]
    assert stage_ids[-2:] == ["closedwon", "closedlost"]
    stages = {s["id"]: s for s in listed["results"][0]["stages"]}
    assert stages["closedwon"]["metadata"] == {"isClosed": "true", "probability": "1.0"}
    assert (await get(http, "/crm/v3/pipelines/0-3/default"))["label"] == "Sales Pipeline"
    assert len((await get(http, "/crm/v3/pipelines/deals/default/stages"))["results"]) == len(stage_ids)
    assert (await get(http, "/crm/v3/pipelines/deals/default/stages/contractsent"))["label"] == "Contract Sent"
    await get(http, "/crm/v3/pipelines/deals/other", status=404)
    await get(http, "/crm/v3/pipelines/contacts", status=400)
    # Tickets have pipelines in HubSpot, but the sandbox app has no tickets scope.
    assert (await get(http, "/crm-pipelines/v1/pipelines/tickets", status=403))["category"] == "MISSING_SCOPES"
    legacy = await get(http, "/deals/v1/pipelines")
    assert [s["stageId"] for s in legacy[0]["stages"]] == stage_ids
    assert [s["closedWon"] for s in legacy[0]["stages"]].count(True) == 1
    crm_v1 = await get(http, "/crm-pipelines/v1/pipelines/deals")
    assert crm_v1["results"][0]["pipelineId"] == "default"
    # Every stage a seeded deal is in is one of the pipeline's.
    assert {r["properties"]["dealstage"] for r in hub.sim.records("deals") or []} <= set(stage_ids)
    assert hub.check() == 6


async def test_the_v3_and_2026_03_token_paths_grant_like_v1(hub: ContractHarness) -> None:
    form = {"grant_type": "refresh_token", "client_id": hub.sim.client_id, "client_secret": hub.sim.client_secret,
            "redirect_uri": "http://localhost/cb"}
    async with aiohttp.ClientSession(base_url=hub.base_url) as session:
        for path in ("/oauth/v3/token", "/oauth/2026-03/token"):
            async with session.post(path, data=form | {"refresh_token": hub.sim.tokens.refresh_token}) as got:
                assert got.status == 200
                token = (await got.json())["access_token"]
            async with session.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
        async with session.post("/oauth/v3/token", data=form | {"refresh_token": "nope"}) as refused:
            body = await refused.json()
    assert refused.status == 400
    assert (body["status"], body["error"]) == ("BAD_REFRESH_TOKEN", "invalid_grant")
    assert hub.check() >= 3


async def test_standard_objects_the_portal_lacks_answer_missing_scopes(http: aiohttp.ClientSession) -> None:
    refused = await get(http, "/crm/v3/properties/tickets", status=403)
    assert refused["category"] == "MISSING_SCOPES"
    assert refused["errors"][0]["context"]["requiredGranularScopes"] == ["tickets"]
    await get(http, "/crm/v3/objects/0-5", status=403)
    assert (await get(http, "/crm/v3/objects/widgets", status=400))["category"] == "VALIDATION_ERROR"
    # Asking for associations with such an object is not an error: there simply are none.
    page = await get(http, "/crm/v3/objects/contacts", limit="5", associations="tickets,companies")
    assert len(page["results"]) == 5
    assert all(set(r.get("associations", {})) <= {"companies"} for r in page["results"])


async def test_schemas_list_no_custom_objects_and_describe_the_standard_ones(
        http: aiohttp.ClientSession) -> None:
    for prefix in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):
        assert await get(http, prefix) == {"results": []}
    contacts = await get(http, "/crm/v3/schemas/contacts")
    assert (contacts["objectTypeId"], contacts["primaryDisplayProperty"]) == ("0-1", "email")
    assert "email" in {p["name"] for p in contacts["properties"]}
    assert {a["toObjectTypeId"] for a in contacts["associations"]} == {"0-2", "0-3"}
    assert (await get(http, "/crm-object-schemas/v3/schemas/0-3"))["name"] == "deal"


async def test_owners_and_users_list_the_installing_user(http: aiohttp.ClientSession) -> None:
    owners = (await get(http, "/crm/v3/owners/", limit="500"))["results"]
    assert len(owners) == 1
    owner = owners[0]
    assert (await get(http, f"/crm/v3/owners/{owner['id']}"))["email"] == owner["email"]
    assert (await get(http, f"/crm/v3/owners/{owner['userId']}", idProperty="userId"))["id"] == owner["id"]
    await get(http, "/crm/v3/owners/1", status=404)
    assert (await get(http, "/crm/v3/owners", email="nobody@example.com"))["results"] == []
    await get(http, "/crm/v3/owners", limit="501", status=400)
    assert [o["ownerId"] for o in await get(http, "/owners/v2/owners")] == [int(owner["id"])]
    users = (await get(http, "/settings/v3/users/"))["results"]
    assert [(u["id"], u["email"]) for u in users] == [(str(owner["userId"]), owner["email"])]
    assert (await get(http, f"/settings/v3/users/{owner['email']}", idProperty="EMAIL"))["id"] == users[0]["id"]


async def test_legacy_properties_list_the_v3_definitions(http: aiohttp.ClientSession) -> None:
    for obj in ("contacts", "companies", "deals"):
        v3 = {p["name"]: p for p in (await get(http, f"/crm/v3/properties/{obj}"))["results"]}
        for path in (f"/properties/v1/{obj}/properties", f"/properties/v2/{obj}/properties"):
            legacy = {p["name"]: p for p in await get(http, path)}
            assert set(legacy) == set(v3)
            assert all(legacy[n]["groupName"] == v3[n]["groupName"] for n in v3)
    assert {p["name"] for p in await get(http, "/companies/v2/properties")} >= {"name", "domain"}
    # Airbyte's HubSpot source names the object in the singular (`/properties/v2/contact/properties`).
    assert {p["name"] for p in await get(http, "/properties/v2/contact/properties")} >= {"email", "firstname"}
    phone = await get(http, "/properties/v1/contacts/properties/named/phone")
    assert phone["type"] == "string"  # the legacy API had no phone_number type
    groups = await get(http, "/properties/v2/deals/groups", includeProperties="true")
    assert "dealname" in {p["name"] for g in groups for p in g.get("properties", [])}
    await get(http, "/properties/v1/deals/properties/named/nope", status=404)


async def test_legacy_contact_lists_page_through_every_live_contact(hub: ContractHarness,
                                                                    http: aiohttp.ClientSession) -> None:
    live = {r["id"]: r for r in hub.sim.records("contacts") or [] if not r["archived"]}
    seen: list[int] = []
    params: dict[str, str] = {"count": "5", "property": "email"}
    while True:
        page = await get(http, "/contacts/v1/lists/all/contacts/all", **params)
        seen += [c["vid"] for c in page["contacts"]]
        for contact in page["contacts"]:
            assert contact["properties"]["email"]["value"] == live[str(contact["vid"])]["properties"]["email"]
            assert contact["identity-profiles"][0]["identities"][0]["type"] == "EMAIL"
        if not page["has-more"]:
            break
        params["vidOffset"] = str(page["vid-offset"])
    assert sorted(seen) == seen and {str(v) for v in seen} == set(live)

    recent = await get(http, "/contacts/v1/lists/recently_updated/contacts/recent", count="100")
    assert {str(c["vid"]) for c in recent["contacts"]} == set(live)
    stamps = [c["addedAt"] for c in recent["contacts"]]
    assert stamps == sorted(stamps, reverse=True)
    first = recent["contacts"][0]
    profile = await get(http, f"/contacts/v1/contact/vid/{first['vid']}/profile")
    modified = profile["properties"]["lastmodifieddate"]
    # Legacy date-times are epoch-millisecond text, and a profile read carries versions.
    assert modified["value"] == str(to_epoch_ms(live[str(first["vid"])]["properties"]["lastmodifieddate"]))
    assert modified["versions"][0]["value"] == modified["value"]
    email = live[str(first["vid"])]["properties"]["email"]
    assert (await get(http, f"/contacts/v1/contact/email/{email.upper()}/profile"))["vid"] == first["vid"]
    await get(http, "/contacts/v1/contact/vid/999999/profile", status=404)


async def test_legacy_company_and_deal_reads_match_the_v3_records(hub: ContractHarness,
                                                                 http: aiohttp.ClientSession) -> None:
    companies = {r["id"]: r for r in hub.sim.records("companies") or []}
    page = await get(http, "/companies/v2/companies/paged", limit="250", properties="name")
    assert page["has-more"] is False
    assert {str(c["companyId"]): c["properties"]["name"]["value"] for c in page["companies"]} == {
        i: r["properties"]["name"] for i, r in companies.items()}
    assert all(set(c["properties"]) == {"name"} for c in page["companies"])
    one = await get(http, f"/companies/v2/companies/{page['companies'][0]['companyId']}")
    assert one["properties"]["name"]["versions"][0]["source"] == "API"
    await get(http, "/companies/v2/companies/999999", status=404)

    deals = {r["id"]: r for r in hub.sim.records("deals") or []}
    first = await get(http, "/deals/v1/deal/paged", limit="4", includeAssociations="true",
                      properties="amount", propertiesWithHistory="dealstage")
    rest = await get(http, "/deals/v1/deal/paged", limit="4", offset=str(first["offset"]),
                     includeAllProperties="true")
    assert (first["hasMore"], rest["hasMore"]) == (True, False)
    rows = first["deals"] + rest["deals"]
    assert {str(d["dealId"]) for d in rows} == set(deals)
    for deal in first["deals"]:
        record = deals[str(deal["dealId"])]
        assert deal["properties"]["amount"]["value"] == record["properties"]["amount"]
        assert deal["associations"]["associatedVids"] == [int(i) for i in record["associations"]["contacts"]]
        assert deal["properties"]["dealstage"]["versions"][0]["name"] == "dealstage"
    assert "dealname" in rest["deals"][0]["properties"] and "associations" not in rest["deals"][0]

    recent = await get(http, "/deals/v1/deal/recent/modified", count="4")
    assert (recent["total"], len(recent["results"]), recent["hasMore"], recent["offset"]) == (6, 4, True, 4)
    later = await get(http, "/deals/v1/deal/recent/modified", count="4", offset="4")
    assert {str(d["dealId"]) for d in recent["results"] + later["results"]} == set(deals)
    assert (await get(http, f"/deals/v1/deal/{rows[0]['dealId']}"))["associations"]["associatedCompanyIds"]


async def test_v3_association_batch_read_lists_a_company_s_contacts(hub: ContractHarness,
                                                                   http: aiohttp.ClientSession) -> None:
    companies = hub.sim.records("companies") or []
    inputs = [{"id": c["id"]} for c in companies] + [{"id": "999999"}]
    async with http.post("/crm/v3/associations/company/contact/batch/read", json={"inputs": inputs}) as got:
        body = await got.json()
    assert got.status == 207 and body["numErrors"] == 1
    by_company = {row["from"]["id"]: {t["id"] for t in row["to"]} for row in body["results"]}
    assert by_company == {c["id"]: set(c["associations"]["contacts"]) for c in companies}
    # The v3 type names the unlabelled edge, as v3 object reads with associations do.
    assert {t["type"] for row in body["results"] for t in row["to"]} == {"company_to_contact_unlabeled"}


async def test_token_metadata_and_introspection_describe_the_grant(hub: ContractHarness) -> None:
    token = hub.sim.tokens.issue_access_token().access_token
    refresh = hub.sim.tokens.refresh_token
    async with aiohttp.ClientSession(base_url=hub.base_url) as session:
        async with session.get(f"/oauth/v1/access-tokens/{token}") as got:
            info = await got.json()
        assert got.status == 200 and 0 < info["expires_in"] <= 1800
        assert "crm.objects.contacts.read" in info["scopes"] and info["hub_id"] == 62515
        async with session.get(f"/oauth/v1/refresh-tokens/{refresh}") as got:
            assert got.status == 200 and (await got.json())["client_id"] == hub.sim.client_id
        form = {"client_id": hub.sim.client_id, "client_secret": hub.sim.client_secret}
        for path in ("/oauth/v3/token/introspect", "/oauth/2026-03/token/introspect"):
            async with session.post(path, data=form | {"token": token}) as got:
                described = await got.json()
            assert (described["active"], described["token_use"]) == (True, "access_token")
        async with session.post("/oauth/v3/token/introspect", data=form | {"token": refresh}) as got:
            assert (await got.json())["token_use"] == "refresh_token"
        assert hub.check() == 4  # the v1 reads and the v3 introspections (no file describes the 2026-03 path)
        hub.sim.tokens.expire_all()
        async with session.get(f"/oauth/v1/access-tokens/{token}") as got:
            assert got.status == 404
        async with session.post("/oauth/v3/token/introspect", data=form | {"token": token}) as got:
            assert await got.json() == {"active": False}
        async with session.post("/oauth/v3/token/introspect", data={"token": token}) as got:
            assert got.status == 400 and (await got.json())["error"] == "invalid_client"
    hub.exchanges.clear()  # {"active": false} is RFC 7662's answer, which the file's schema does not describe


async def test_property_definitions_in_batches_updates_and_archives(hub: ContractHarness,
                                                                   http: aiohttp.ClientSession) -> None:
    async def send(method: str, path: str, body: Any, status: int) -> Any:
        async with http.request(method, path, json=body) as got:
            text = await got.text()
            assert got.status == status, text
            return None if status == 204 else json.loads(text)

    read = await send("POST", "/crm/v3/properties/contacts/batch/read",
                      {"inputs": [{"name": "email"}, {"name": "nope"}], "archived": False,
                       "dataSensitivity": "non_sensitive"}, 207)
    assert [p["name"] for p in read["results"]] == ["email"] and read["numErrors"] == 1
    wanted = [{"name": f"shoe_{i}", "label": f"Shoe {i}", "type": "string", "fieldType": "text",
               "groupName": "contactinformation"} for i in (1, 2)]
    made = await send("POST", "/crm/v3/properties/contacts/batch/create", {"inputs": wanted}, 201)
    assert sorted(p["name"] for p in made["results"]) == ["shoe_1", "shoe_2"]
    # One name already taken fails the whole batch.
    await send("POST", "/crm/v3/properties/contacts/batch/create",
               {"inputs": [wanted[0] | {"name": "shoe_3"}, wanted[1]]}, 409)
    await get(http, "/crm/v3/properties/contacts/shoe_3", status=404)
    renamed = await send("PATCH", "/crm/v3/properties/contacts/shoe_1", {"label": "Shoe size"}, 200)
    assert renamed["label"] == "Shoe size"
    await send("PATCH", "/crm/v3/properties/contacts/email", {"type": "number"}, 400)
    await send("DELETE", "/crm/v3/properties/contacts/email", None, 400)
    await send("DELETE", "/crm/v3/properties/contacts/shoe_1", None, 204)
    await send("POST", "/crm/v3/properties/contacts/batch/archive", {"inputs": [{"name": "shoe_2"}]}, 204)
    names = {p["name"] for p in (await get(http, "/crm/v3/properties/contacts"))["results"]}
    assert not names & {"shoe_1", "shoe_2"}
    # A write naming an archived property is refused, as for any unknown property.
    await send("POST", "/crm/v3/objects/contacts", {"properties": {"email": "a@b.example", "shoe_1": "9"}}, 400)

    group = await get(http, "/crm/v3/properties/deals/groups/dealinformation")
    assert group["label"] == "Deal information"
    relabelled = await send("PATCH", "/crm/v3/properties/deals/groups/dealinformation", {"label": "Deal facts"}, 200)
    assert relabelled["label"] == "Deal facts"
    await send("DELETE", "/crm/v3/properties/deals/groups/dealinformation", None, 400)  # still holds properties
    await send("POST", "/crm/v3/properties/deals/groups", {"name": "spare", "label": "Spare"}, 201)
    await send("DELETE", "/crm/v3/properties/deals/groups/spare", None, 204)
    await get(http, "/crm/v3/properties/deals/groups/spare", status=404)
    assert hub.check() >= 15


async def test_gdpr_delete_removes_a_contact_for_good(hub: ContractHarness, http: aiohttp.ClientSession) -> None:
    contacts = [r for r in hub.sim.records("contacts") or [] if r["associations"].get("companies")]
    gone, by_email = contacts[0], contacts[1]
    company = gone["associations"]["companies"][0]
    async with http.post("/crm/v3/objects/contacts/gdpr-delete", json={"objectId": gone["id"]}) as got:
        assert got.status == 204
    await get(http, f"/crm/v3/objects/contacts/{gone['id']}", status=404)
    await get(http, f"/crm/v3/objects/contacts/{gone['id']}", status=404, archived="true")
    listed = await get(http, f"/crm/v4/objects/companies/{company}/associations/contacts")
    assert gone["id"] not in {str(r["toObjectId"]) for r in listed["results"]}
    # By e-mail, and the address is free again.
    email = by_email["properties"]["email"]
    async with http.post("/crm/v3/objects/contacts/gdpr-delete",
                         json={"objectId": email, "idProperty": "email"}) as got:
        assert got.status == 204
    async with http.post("/crm/v3/objects/contacts", json={"properties": {"email": email}}) as got:
        assert got.status == 201
    async with http.post("/crm/v3/objects/contacts/gdpr-delete", json={"objectId": "999999"}) as got:
        assert got.status == 404
    assert not any(r["id"] in (gone["id"], by_email["id"]) for r in hub.sim.records("contacts") or [])


async def test_v3_association_batch_create_and_archive_name_the_v3_types(hub: ContractHarness,
                                                                         http: aiohttp.ClientSession) -> None:
    deal = (hub.sim.records("deals") or [])[0]
    company = next(c for c in hub.sim.records("companies") or [] if c["id"] not in deal["associations"]["companies"])
    pair = {"from": {"id": deal["id"]}, "to": {"id": company["id"]}}
    async with http.post("/crm/v3/associations/deals/companies/batch/create",
                         json={"inputs": [pair | {"type": "deal_to_company"}]}) as got:
        made = await got.json()
    assert got.status == 201 and made["results"][0]["type"] == "deal_to_company"
    linked = await get(http, f"/crm/v4/objects/deals/{deal['id']}/associations/companies")
    assert company["id"] in {str(r["toObjectId"]) for r in linked["results"]}
    async with http.post("/crm/v3/associations/deals/companies/batch/create",
                         json={"inputs": [pair | {"type": "deal_to_contact"}]}) as refused:
        assert refused.status == 400
    for kind in ("deal_to_company", "deal_to_company_unlabeled"):
        async with http.post("/crm/v3/associations/deals/companies/batch/archive",
                             json={"inputs": [pair | {"type": kind}]}) as got:
            assert got.status == 204
    linked = await get(http, f"/crm/v4/objects/deals/{deal['id']}/associations/companies")
    assert company["id"] not in {str(r["toObjectId"]) for r in linked["results"]}
