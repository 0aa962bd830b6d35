"""The official hubspot-api-client against the HubSpot simulator; every response checked against the specs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.deals import ApiException as DealsApiException

from syncd.sandbox.hubspot import HubSpotSimulator
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from tests.contracts.hubspot.harness import ContractHarness

TIMEOUT = 10


@pytest.fixture(scope="module")
async def harness() -> AsyncIterator[ContractHarness]:
    """One simulator per module, on a loopback port."""
    running = ContractHarness(HubSpotSimulator(rng_seed=11))
    await running.server.start_server()
    yield running
    await running.server.close()


@pytest.fixture
async def hub(harness: ContractHarness) -> AsyncIterator[ContractHarness]:
    """A clean portal; after the test every response it received must match HubSpot's OpenAPI files."""
    harness.sim.restore_defaults()
    harness.exchanges.clear()
    yield harness
    assert harness.check() > 0


@pytest.fixture
def client(hub: ContractHarness) -> Any:
    """The SDK pointed at the simulator (retries off: the SDK must see every answer)."""
    token = hub.sim.tokens.issue_access_token().access_token
    return HubSpot(access_token=token, host=hub.base_url)


def contact_input(email: str, **extra: str) -> SimplePublicObjectInputForCreate:
    return SimplePublicObjectInputForCreate(properties={"email": email, **extra}, associations=[])


async def test_list_pages_through_250_contacts(hub: ContractHarness, client: Any) -> None:
    hub.sim.seed(SeedWorld.build(3, 250), SeedCounts(contacts=250, companies=5))
    api = client.crm.contacts.basic_api
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await asyncio.to_thread(api.get_page, limit=100, after=after, properties=["email"],
                                       _request_timeout=TIMEOUT)
        pages += 1
        seen += [r.id for r in page.results]
        assert all("@" in r.properties["email"] for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link.startswith("/crm/v3/objects/contacts?")
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250


async def test_get_by_id_and_email_and_unique_email_conflict(hub: ContractHarness, client: Any) -> None:
    api = client.crm.contacts.basic_api
    created = await asyncio.to_thread(
        api.create, contact_input("Ada@Example.com", firstname="Ada", lastname="Lovelace"), _request_timeout=TIMEOUT
    )
    assert created.properties["email"] == "ada@example.com"  # HubSpot lower-cases e-mail addresses
    by_id = await asyncio.to_thread(api.get_by_id, created.id, _request_timeout=TIMEOUT)
    by_email = await asyncio.to_thread(
        api.get_by_id, "ADA@example.com", id_property="email", properties=["firstname"], _request_timeout=TIMEOUT
    )
    assert by_id.id == by_email.id == created.id
    assert by_email.properties["firstname"] == "Ada"
    # A requested property without a value comes back as null (as from real HubSpot), an unknown name not at all.
    sparse = await asyncio.to_thread(
        api.get_by_id, created.id, properties=["firstname", "phone", "no_such_property"], _request_timeout=TIMEOUT
    )
    assert sparse.properties["firstname"] == "Ada" and sparse.properties["phone"] is None
    assert "no_such_property" not in sparse.properties
    assert by_id.properties["lastname"] == "Lovelace" and "email" in by_id.properties
    with pytest.raises(ApiException) as conflict:
        await asyncio.to_thread(api.create, contact_input("ada@example.com"), _request_timeout=TIMEOUT)
    assert conflict.value.status == 409
    body = json.loads(conflict.value.body)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {created.id}"
    with pytest.raises(ApiException) as missing:
        await asyncio.to_thread(api.get_by_id, "999999", _request_timeout=TIMEOUT)
    assert missing.value.status == 404


async def test_unknown_property_and_bad_number_are_validation_errors(hub: ContractHarness, client: Any) -> None:
    deals = client.crm.deals.basic_api
    with pytest.raises(DealsApiException) as bad:
        await asyncio.to_thread(
            deals.create,
            SimplePublicObjectInputForCreate(properties={"dealname": "X", "amount": "12,5", "nope": "1"},
                                             associations=[]),
            _request_timeout=TIMEOUT,
        )
    body = json.loads(bad.value.body)
    assert bad.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert {e["code"] for e in body["errors"]} == {"INVALID_FLOAT", "PROPERTY_DOESNT_EXIST"}
    assert hub.sim.records("deals") == []


async def test_batch_create_update_upsert_archive(hub: ContractHarness, client: Any) -> None:
    batch = client.crm.contacts.batch_api
    created = await asyncio.to_thread(batch.create, BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[contact_input(f"p{i}@example.com", syncd_ref=f"ref-{i}") for i in range(3)]
    ), _request_timeout=TIMEOUT)
    ids = sorted(r.id for r in created.results)
    assert len(ids) == 3
    updated = await asyncio.to_thread(batch.update, BatchInputSimplePublicObjectBatchInput(inputs=[
        {"id": ids[0], "properties": {"firstname": "Zed"}},
        {"id": "ref-1", "idProperty": "syncd_ref", "properties": {"firstname": "Yan"}},
    ]), _request_timeout=TIMEOUT)
    assert sorted(r.properties["firstname"] for r in updated.results) == ["Yan", "Zed"]
    upserted = await asyncio.to_thread(batch.upsert, BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        {"id": "ref-2", "idProperty": "syncd_ref", "properties": {"lastname": "Old"}},
        {"id": "ref-9", "idProperty": "syncd_ref", "properties": {"email": "new@example.com"}},
    ]), _request_timeout=TIMEOUT)
    by_new = {r.new: r for r in upserted.results}
    assert by_new[False].id == ids[2] and by_new[False].properties["lastname"] == "Old"
    assert by_new[True].properties["syncd_ref"] == "ref-9"
    await asyncio.to_thread(batch.archive, BatchInputSimplePublicObjectId(inputs=[{"id": ids[0]}]),
                            _request_timeout=TIMEOUT)
    page = await asyncio.to_thread(client.crm.contacts.basic_api.get_page, archived=True, _request_timeout=TIMEOUT)
    assert [r.id for r in page.results] == [ids[0]] and page.results[0].archived_at is not None
    # A duplicate unique value fails the whole batch create, and nothing is created.
    with pytest.raises(ApiException) as dup:
        await asyncio.to_thread(batch.create, BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[contact_input("fresh@example.com"), contact_input("other@example.com", syncd_ref="ref-1")]
        ), _request_timeout=TIMEOUT)
    assert dup.value.status == 409
    assert hub.sim.store.find_unique("contacts", "email", "fresh@example.com") is None
    # Reading a mix of live and missing ids is a 207 multi-status.
    read = await asyncio.to_thread(batch.read, {"inputs": [{"id": ids[1]}, {"id": "424242"}],
                                                "properties": ["email"], "propertiesWithHistory": []},
                                   _request_timeout=TIMEOUT)
    assert [r.id for r in read.results] == [ids[1]] and read.num_errors == 1


async def test_search_filters_sorts_and_pages(hub: ContractHarness, client: Any) -> None:
    # This test is about filters and paging on the wall clock; search's 4-a-second limit has its own test.
    hub.sim.apply_limits({"search_per_s": 1000})
    hub.sim.seed(SeedWorld.build(5, 30), SeedCounts(contacts=30))
    search = client.crm.contacts.search_api
    people = SeedWorld.build(5, 30).people
    one = await asyncio.to_thread(search.do_search, PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "email", "operator": "EQ", "value": people[4].email.upper()}]}],
        properties=["email", "firstname"], limit=10,
    ), _request_timeout=TIMEOUT)
    assert one.total == 1 and one.results[0].properties["firstname"] == people[4].first_name
    found: list[str] = []
    after = None
    while True:
        page = await asyncio.to_thread(search.do_search, {
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}],
            "sorts": [{"propertyName": "email", "direction": "DESCENDING"}], "limit": 7, "after": after,
            "properties": ["email"],
        }, _request_timeout=TIMEOUT)
        found += [r.properties["email"] for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert found == sorted((p.email for p in people), reverse=True)
    in_list = await asyncio.to_thread(search.do_search, {
        "filterGroups": [
            {"filters": [{"propertyName": "lastname", "operator": "IN", "values": [people[0].last_name]}]},
            {"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": people[1].email}]},
        ],
        "sorts": ["-createdate"],
    }, _request_timeout=TIMEOUT)
    assert {r.properties["email"] for r in in_list.results} >= {people[0].email, people[1].email}


async def test_associations_v4_and_merge(hub: ContractHarness, client: Any) -> None:
    contacts = client.crm.contacts.basic_api
    company = await asyncio.to_thread(client.crm.companies.basic_api.create, SimplePublicObjectInputForCreate(
        properties={"name": "Acme", "domain": "acme.test"}, associations=[]), _request_timeout=TIMEOUT)
    a = await asyncio.to_thread(contacts.create, SimplePublicObjectInputForCreate(
        properties={"email": "a@acme.test"},
        associations=[{"to": {"id": company.id},
                       "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}],
    ), _request_timeout=TIMEOUT)
    b = await asyncio.to_thread(contacts.create, contact_input("b@acme.test", phone="+15550001"),
                                _request_timeout=TIMEOUT)
    deal = await asyncio.to_thread(client.crm.deals.basic_api.create, SimplePublicObjectInputForCreate(
        properties={"dealname": "Big", "amount": 1200.5, "dealstage": "closedwon"}, associations=[]),
        _request_timeout=TIMEOUT)
    assert deal.properties["amount"] == "1200.5"  # numbers are stored and returned as strings
    assoc = client.crm.associations.v4
    await asyncio.to_thread(assoc.basic_api.create_default, "deals", deal.id, "contacts", b.id,
                            _request_timeout=TIMEOUT)
    await asyncio.to_thread(assoc.basic_api.create, "deals", deal.id, "companies", company.id,
                            [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=5)],
                            _request_timeout=TIMEOUT)
    listed = await asyncio.to_thread(assoc.basic_api.get_page, "contacts", a.id, "companies",
                                     _request_timeout=TIMEOUT)
    assert [r.to_object_id for r in listed.results] == [company.id]
    read = await asyncio.to_thread(assoc.batch_api.get_page, "deals", "companies",
                                   {"inputs": [{"id": deal.id}]}, _request_timeout=TIMEOUT)
    labels = {t.label for t in read.results[0].to[0].association_types}
    assert labels == {"Primary", None}
    # SDK 12 has no merge API for contacts; the raw call is what a connector would make.
    async with (
        aiohttp.ClientSession(headers=hub.headers()) as session,
        session.post(f"{hub.base_url}/crm/v3/objects/contacts/merge",
                     json={"primaryObjectId": a.id, "objectIdToMerge": b.id}) as response,
    ):
        merged = await response.json()
    assert response.status == 200
    assert merged["id"] == a.id and merged["properties"]["hs_object_id"] == a.id
    via_old_id = await asyncio.to_thread(contacts.get_by_id, b.id, properties=["phone"], _request_timeout=TIMEOUT)
    assert via_old_id.id == a.id and via_old_id.properties["phone"] == "+15550001"
    deal_contacts = await asyncio.to_thread(assoc.basic_api.get_page, "deals", deal.id, "contacts",
                                            _request_timeout=TIMEOUT)
    assert [r.to_object_id for r in deal_contacts.results] == [a.id]  # the merged contact's deal moved over
