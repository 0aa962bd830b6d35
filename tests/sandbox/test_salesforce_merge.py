"""Merging duplicates in the simulated org (the control plane's stand-in for the UI/SOAP merge): losers go to the
recycle bin carrying MasterRecordId, and what pointed at them points at the survivor."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from syncd.sandbox.salesforce import SalesforceSimulator

API = "/services/data/v59.0"
START = dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC).timestamp()
Http = TestClient[web.Request, web.Application]


class SteppingClock:
    """A clock the tests move by hand, so that a merge's timestamps are told apart from the creates'."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Org:
    """The simulator over plain http and a signed-in client of its REST API and control plane."""

    def __init__(self, simulator: SalesforceSimulator, http: Http, clock: SteppingClock) -> None:
        self.simulator = simulator
        self.http = http
        self.clock = clock
        self.headers = {"Authorization": "Bearer " + simulator.tokens.issue_access_token().access_token}

    async def create(self, obj: str, body: dict[str, Any]) -> str:
        """Create a record through the REST API; its id."""
        response = await self.http.post(f"{API}/sobjects/{obj}/", json=body, headers=self.headers)
        assert response.status == 201, await response.text()
        return str((await response.json())["id"])

    async def get(self, obj: str, record_id: str) -> dict[str, Any]:
        """A live record through the REST API."""
        response = await self.http.get(f"{API}/sobjects/{obj}/{record_id}", headers=self.headers)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def soql(self, endpoint: str, q: str) -> list[dict[str, Any]]:
        """The records of a query or queryAll."""
        response = await self.http.get(f"{API}/{endpoint}", params={"q": q}, headers=self.headers)
        assert response.status == 200, await response.text()
        return list((await response.json())["records"])

    async def merge(self, obj: str, body: Any) -> tuple[int, Any]:
        """POST /_sandbox/merge/{obj}; the status and the decoded answer."""
        response = await self.http.post(f"/_sandbox/merge/{obj}", json=body)
        return response.status, await response.json()


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    """A fresh simulator on a free loopback port."""
    clock = SteppingClock()
    simulator = SalesforceSimulator(clock=clock, rng_seed=5)
    async with TestClient(TestServer(simulator.build_app(), host="127.0.0.1", port=0)) as http:
        yield Org(simulator, http, clock)


async def test_merging_contacts_deletes_the_losers_with_master_record_id_and_reparents_opportunities(
    org: Org,
) -> None:
    master = await org.create("Contact", {"LastName": "Lee", "Email": "ann.lee@example.com"})
    loser = await org.create("Contact", {"LastName": "Lee", "Email": "ann@example.com"})
    other_loser = await org.create("Contact", {"LastName": "Lee", "Email": "a.lee@example.com"})
    bystander = await org.create("Contact", {"LastName": "Bystander"})
    deal = await org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2025-07-01", "ContactId": loser}
    )
    untouched = await org.create(
        "Opportunity", {"Name": "Other", "StageName": "Prospecting", "CloseDate": "2025-07-01", "ContactId": bystander}
    )
    org.clock.now += 60
    status, answer = await org.merge("Contact", {"master_id": master, "merged_ids": [loser, other_loser[:15]]})
    assert status == 200, answer
    assert answer["master"]["Id"] == master and sorted(answer["merged_ids"]) == sorted([loser, other_loser])

    live = await org.soql("query", "SELECT Id FROM Contact")
    assert sorted(r["Id"] for r in live) == sorted([master, bystander])
    binned = await org.soql("queryAll", "SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE IsDeleted = true")
    assert sorted((r["Id"], r["IsDeleted"], r["MasterRecordId"]) for r in binned) == sorted(
        [(loser, True, master), (other_loser, True, master)]
    )
    # The opportunity that named the loser as its contact now names the survivor, and was stamped then.
    moved = await org.get("Opportunity", deal)
    assert moved["ContactId"] == master and moved["SystemModstamp"] == "2025-06-02T09:01:00.000+0000"
    assert (await org.get("Opportunity", untouched))["ContactId"] == bystander
    # The survivor is updated by the merge, as Salesforce's update of the winning record does.
    assert (await org.get("Contact", master))["LastModifiedDate"] == "2025-06-02T09:01:00.000+0000"
    assert (await org.get("Contact", bystander))["MasterRecordId"] is None


async def test_merging_accounts_moves_their_contacts_instead_of_cascading_the_delete(org: Org) -> None:
    master = await org.create("Account", {"Name": "Acme Inc"})
    loser = await org.create("Account", {"Name": "ACME"})
    person = await org.create("Contact", {"LastName": "Lee", "AccountId": loser})
    status, answer = await org.merge("Account", {"master_id": master, "merged_ids": [loser]})
    assert status == 200, answer
    assert (await org.get("Contact", person))["AccountId"] == master
    [binned] = await org.soql("queryAll", "SELECT Id, MasterRecordId FROM Account WHERE IsDeleted = true")
    assert (binned["Id"], binned["MasterRecordId"]) == (loser, master)


@pytest.mark.parametrize(
    ("obj", "body", "message"),
    [
        ("Contact", None, "expected"),
        ("Contact", {"master_id": "M"}, "expected"),
        ("Contact", {"master_id": "M", "merged_ids": "L"}, "expected"),
        ("Contact", {"master_id": "M", "merged_ids": []}, "one or two"),
        ("Contact", {"master_id": "M", "merged_ids": ["L", "L2", "L3"]}, "one or two"),
        ("Contact", {"master_id": "M", "merged_ids": ["M"]}, "with self"),
        ("Contact", {"master_id": "M", "merged_ids": ["L", "L"]}, "Duplicate"),
        ("Contact", {"master_id": "M", "merged_ids": ["003000000000099AAA"]}, "NOT_FOUND"),
        ("Contact", {"master_id": "M", "merged_ids": ["gone"]}, "ENTITY_IS_DELETED"),
        ("Widget", {"master_id": "M", "merged_ids": ["L"]}, "unknown object"),
        ("Opportunity", {"master_id": "O", "merged_ids": ["O2"]}, "cannot be merged"),
    ],
)
async def test_a_bad_merge_is_refused_with_400_and_changes_nothing(
    org: Org, obj: str, body: Any, message: str
) -> None:
    ids = {
        "M": await org.create("Contact", {"LastName": "Master"}),
        "L": await org.create("Contact", {"LastName": "Loser"}),
        "L2": await org.create("Contact", {"LastName": "Loser 2"}),
        "L3": await org.create("Contact", {"LastName": "Loser 3"}),
        "gone": await org.create("Contact", {"LastName": "Gone"}),
        "O": await org.create("Opportunity", {"Name": "O", "StageName": "Prospecting", "CloseDate": "2025-07-01"}),
        "O2": await org.create("Opportunity", {"Name": "O2", "StageName": "Prospecting", "CloseDate": "2025-07-01"}),
    }
    deleted = await org.http.delete(f"{API}/sobjects/Contact/{ids['gone']}", headers=org.headers)
    assert deleted.status == 204
    if isinstance(body, dict):
        # The parameters name records by role; the org minted their ids.
        body = {
            key: [ids.get(i, i) for i in value] if isinstance(value, list) else ids.get(value, value)
            for key, value in body.items()
        }
    before = {name: org.simulator.records(name) for name in ("Contact", "Opportunity")}
    status, answer = await org.merge(obj, body)
    assert status == 400 and message in answer["error"], answer
    assert {name: org.simulator.records(name) for name in ("Contact", "Opportunity")} == before


async def test_a_body_that_is_not_json_is_refused(org: Org) -> None:
    response = await org.http.post(
        "/_sandbox/merge/Contact", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400 and "error" in await response.json()


async def test_master_record_id_is_read_only_and_described_so(org: Org) -> None:
    master = await org.create("Contact", {"LastName": "Master"})
    created = await org.http.post(
        f"{API}/sobjects/Contact/", json={"LastName": "X", "MasterRecordId": master}, headers=org.headers
    )
    assert created.status == 400
    assert [e["errorCode"] for e in await created.json()] == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    updated = await org.http.patch(
        f"{API}/sobjects/Contact/{master}", json={"MasterRecordId": master}, headers=org.headers
    )
    assert updated.status == 400
    assert [e["errorCode"] for e in await updated.json()] == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    described = await org.http.get(f"{API}/sobjects/Account/describe", headers=org.headers)
    [field] = [f for f in (await described.json())["fields"] if f["name"] == "MasterRecordId"]
    assert (field["createable"], field["updateable"], field["nillable"]) == (False, False, True)
    described_as = (field["type"], field["referenceTo"], field["relationshipName"])
    assert described_as == ("reference", ["Account"], "MasterRecord")
