"""Bulk query jobs on the Salesforce simulator, which ETL readers use for large reads, driven by simple-salesforce's
own clients: Bulk API 2.0 (`sf.bulk2`: CSV results page by page behind `Sforce-Locator`, queryAll with deleted
records, parent fields, refusals) and Bulk API 1.0 in JSON (`sf.bulk`: query jobs and their refusals)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from syncd.sandbox.seeding import SeedCounts, SeedWorld
from tests.sandbox.test_salesforce import Org, call, served

__all__ = ["served"]


@pytest.fixture
def org(served: Org) -> Org:
    """The module's simulator with no records and default limits."""
    served.simulator.restore_defaults()
    return served


@pytest.fixture
def sf(org: Org) -> Iterator[Salesforce]:
    """A simple-salesforce client with a live session on the simulator."""
    token = org.simulator.tokens.issue_access_token().access_token
    with org.session() as session:
        yield Salesforce(instance_url=org.url, session_id=token, session=session, version="59.0")


def rows(pages: list[str]) -> list[dict[str, str]]:
    """Every CSV page's rows (each page repeats the header, as Salesforce's do)."""
    return [row for page in pages for row in csv.DictReader(io.StringIO(page))]


async def test_a_bulk_query_reads_every_contact_in_pages(org: Org, sf: Any) -> None:
    org.simulator.seed(SeedWorld.build(2, 45), SeedCounts(contacts=45, companies=9))
    org.simulator.stats.clear()
    query = "SELECT Id, Email, Account.Name, IsDeleted FROM Contact ORDER BY Email"
    pages = await call(lambda: list(sf.bulk2.Contact.query(query, max_records=20, wait=0)))
    assert len(pages) == 3
    assert pages[0].splitlines()[0] == '"Id","Email","Account.Name","IsDeleted"'
    read = rows(pages)
    contacts = [r for r in org.simulator.records("Contact") or [] if not r["IsDeleted"]]
    assert [r["Email"] for r in read] == sorted(c["Email"] for c in contacts)
    accounts = {a["Id"]: a["Name"] for a in org.simulator.records("Account") or []}
    by_id = {c["Id"]: c for c in contacts}
    assert all(r["Account.Name"] == accounts.get(by_id[r["Id"]]["AccountId"], "") for r in read)
    assert {r["IsDeleted"] for r in read} == {"false"}
    # One create, one poll, three result pages.
    assert sum(org.simulator.stats.requests.values()) == 5


async def test_query_all_jobs_include_deleted_records_and_jobs_can_be_listed_and_deleted(org: Org,
                                                                                        sf: Any) -> None:
    made = [await call(sf.Account.create, {"Name": f"Acme {i}"}) for i in range(3)]
    await call(sf.Account.delete, made[0]["id"])
    live = rows(await call(lambda: list(sf.bulk2.Account.query("SELECT Id, CreatedDate FROM Account", wait=0))))
    # Bulk API 2.0 writes date-times in UTC with a Z where the REST API writes +0000.
    assert {r["CreatedDate"] for r in live} == {"2025-06-02T09:00:00.000Z"}
    every = rows(await call(lambda: list(sf.bulk2.Account.query_all("SELECT Id, IsDeleted FROM Account", wait=0))))
    assert {r["Id"] for r in live} == {m["id"] for m in made[1:]}
    assert {(r["Id"], r["IsDeleted"]) for r in every} == {(made[0]["id"], "true")} | {
        (m["id"], "false") for m in made[1:]}
    jobs = await call(sf.restful, "jobs/query")
    assert [j["operation"] for j in jobs["records"]] == ["query", "queryAll"]
    assert {j["state"] for j in jobs["records"]} == {"JobComplete"}
    # (simple-salesforce's delete_job parses the empty 204 as JSON and fails, so the call is made directly.)
    deleted = await call(sf._call_salesforce, "DELETE", f"{sf.base_url}jobs/query/{jobs['records'][0]['id']}")
    assert deleted.status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        await call(sf.restful, f"jobs/query/{jobs['records'][0]['id']}")


async def test_bad_bulk_queries_are_refused(org: Org, sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        await call(sf.bulk2.Contact._client.create_job, "query", "SELECT Shoe_Size__c FROM Contact")
    assert bad_field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as counted:
        await call(sf.bulk2.Contact._client.create_job, "query", "SELECT COUNT() FROM Contact")
    assert counted.value.content[0]["errorCode"] == "API_ERROR"
    job = await call(sf.bulk2.Contact._client.create_job, "query", "SELECT Id FROM Contact")
    assert job["state"] == "UploadComplete"
    with pytest.raises(SalesforceMalformedRequest) as running:
        await call(sf._call_salesforce, "DELETE", f"{sf.base_url}jobs/query/{job['id']}")
    assert running.value.content[0]["errorCode"] == "API_ERROR"
    aborted = await call(sf.bulk2.Contact._client.abort_job, job["id"], True)
    assert aborted["state"] == "Aborted"
    with pytest.raises(SalesforceMalformedRequest):
        await call(sf.bulk2.Contact._client.get_query_results, job["id"])


async def test_a_bulk_v1_query_through_simple_salesforce_reads_every_contact(org: Org, sf: Any) -> None:
    org.simulator.seed(SeedWorld.build(3, 30), SeedCounts(contacts=30, companies=6))
    org.simulator.stats.clear()
    read = await call(sf.bulk.Contact.query, "SELECT Id, Email, CreatedDate, Account.Name FROM Contact", wait=0)
    contacts = {c["Id"]: c for c in org.simulator.records("Contact") or [] if not c["IsDeleted"]}
    assert {r["Id"] for r in read} == set(contacts)
    first = read[0]
    assert first["attributes"]["type"] == "Contact"
    # Bulk API 1.0 writes dates in JSON as epoch milliseconds.
    created = dt.datetime.strptime(contacts[first["Id"]]["CreatedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert first["CreatedDate"] == round(created.timestamp() * 1000)
    assert all(r["Account"] is None or set(r["Account"]) == {"attributes", "Name"} for r in read)
    # Job, batch, close, one batch poll, the result list and the result set.
    assert sum(org.simulator.stats.requests.values()) == 6


async def test_bulk_v1_refusals(org: Org, sf: Any) -> None:
    with pytest.raises(SalesforceGeneralError) as bad_query:
        await call(sf.bulk.Contact.query, "SELECT Shoe_Size__c FROM Contact", wait=0)
    assert "INVALID_FIELD" in str(bad_query.value)
    with pytest.raises(SalesforceMalformedRequest) as insert:
        await call(sf.bulk.Contact.insert, [{"LastName": "Lee"}])
    assert insert.value.content["exceptionCode"] == "InvalidJob"
    dead = Salesforce(instance_url=org.url, session_id="00D!nope", session=sf.session, version="59.0")
    with pytest.raises(SalesforceMalformedRequest) as session:
        await call(dead.bulk.Contact.query, "SELECT Id FROM Contact", wait=0)
    assert session.value.content["exceptionCode"] == "InvalidSessionId"
