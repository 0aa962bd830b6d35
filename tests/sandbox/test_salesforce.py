"""The Salesforce simulator driven by simple-salesforce over TLS, as the connector will drive it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import pytest
import requests
from aiohttp import web
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from syncd.connectors.salesforce.transport import close_session
from syncd.sandbox.faults import Faults
from syncd.sandbox.salesforce import SalesforceSimulator
from syncd.sandbox.salesforce.schema import CONTACT, STANDARD_PRICEBOOK_ID
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.sandbox.tls import TlsMaterial, make_self_signed

T = TypeVar("T")
START = dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC).timestamp()


class ManualClock:
    """A clock the tests move by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass(frozen=True)
class Org:
    """A running simulator and what a client needs to reach it."""

    simulator: SalesforceSimulator
    clock: ManualClock
    url: str
    tls: TlsMaterial

    @contextlib.contextmanager
    def session(self) -> Iterator[requests.Session]:
        """A requests session that trusts the sandbox certificate and ignores REQUESTS_CA_BUNDLE; its pooled
        connections are closed on exit (requests' own close leaves them to the garbage collector)."""
        session = requests.Session()
        session.verify = str(self.tls.cert_path)
        session.trust_env = False
        try:
            yield session
        finally:
            close_session(session)


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Org]:
    """One simulator over TLS on a free loopback port for this module."""
    tls = make_self_signed(Path(tmp_path_factory.mktemp("sf-tls")))
    clock = ManualClock(START)
    simulator = SalesforceSimulator(clock=clock, rng_seed=7)
    runner = web.AppRunner(simulator.build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context())
    await site.start()
    port = runner.addresses[0][1]
    yield Org(simulator, clock, f"https://127.0.0.1:{port}", tls)
    await runner.cleanup()


@pytest.fixture
def org(served: Org) -> Org:
    """The module's simulator with no records, default limits and no faults."""
    served.simulator.restore_defaults()
    served.simulator.set_webhook_targets([])
    return served


@pytest.fixture
def sf(org: Org) -> Iterator[Salesforce]:
    """A simple-salesforce client with a live session on the simulator."""
    token = org.simulator.tokens.issue_access_token().access_token
    with org.session() as session:
        yield Salesforce(instance_url=org.url, session_id=token, session=session, version="59.0")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking SDK call off the event loop that serves the simulator."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def content(exc: pytest.ExceptionInfo[Any]) -> Any:
    """The decoded body carried by an SDK exception."""
    body: Any = exc.value.content
    return body


def error_codes(exc: pytest.ExceptionInfo[Any]) -> list[str]:
    """The errorCodes of a Salesforce error array carried by an SDK exception."""
    return [e["errorCode"] for e in content(exc)]


# ------------------------------------------------------------------------------------------- records


async def test_create_get_update_and_derived_fields(org: Org, sf: Any) -> None:
    created = await call(sf.Contact.create, {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@x.com"})
    assert created["success"] and created["errors"] == [] and created["id"].startswith("003")
    assert len(created["id"]) == 18
    record = await call(sf.Contact.get, created["id"])
    assert record["attributes"] == {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{created['id']}"}
    assert record["Name"] == "Ada Lovelace"
    assert record["CreatedDate"] == "2025-06-02T09:00:00.000+0000"
    org.clock.advance(90)
    assert await call(sf.Contact.update, created["id"], {"LastName": "King"}) == 204
    record = await call(sf.Contact.get, created["id"], params={"fields": "Name,LastModifiedDate"})
    assert set(record) == {"attributes", "Name", "LastModifiedDate"}
    assert record["Name"] == "Ada King" and record["LastModifiedDate"] == "2025-06-02T09:01:30.000+0000"
    # A 15-character id reaches the same record.
    assert (await call(sf.Contact.get, created["id"][:15]))["Id"] == created["id"]


async def test_create_refuses_what_salesforce_refuses(org: Org, sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as missing:
        await call(sf.Contact.create, {"FirstName": "No last name"})
    assert error_codes(missing) == ["REQUIRED_FIELD_MISSING"]
    assert content(missing)[0]["fields"] == ["LastName"]
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        await call(sf.Contact.create, {"LastName": "X", "Shoe_Size__c": 42})
    assert error_codes(unknown) == ["INVALID_FIELD"]
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        await call(
            sf.Opportunity.create, {"Name": "O", "StageName": "Prospecting", "CloseDate": "2025-07-01", "IsWon": True}
        )
    assert error_codes(read_only) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    with pytest.raises(SalesforceMalformedRequest) as stage:
        await call(sf.Opportunity.create, {"Name": "O", "StageName": "Won!", "CloseDate": "2025-07-01"})
    assert error_codes(stage) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    with pytest.raises(SalesforceMalformedRequest) as email:
        await call(sf.Contact.create, {"LastName": "X", "Email": "not an address"})
    assert error_codes(email) == ["INVALID_EMAIL_ADDRESS"]
    with pytest.raises(SalesforceMalformedRequest) as reference:
        await call(sf.Contact.create, {"LastName": "X", "AccountId": "006000000000000AAA"})
    assert error_codes(reference) in (["FIELD_INTEGRITY_EXCEPTION"], ["MALFORMED_ID"])
    assert org.simulator.records("Contact") == []


async def test_opportunity_stage_flags_and_amount_from_line_items(org: Org, sf: Any) -> None:
    opp = await call(
        sf.Opportunity.create, {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2025-07-01", "Amount": 5}
    )
    product, _ = await priced_product(sf, "Widget", 100)
    for quantity, price in ((2, "100.00"), (3, 33.33)):
        await call(
            sf.OpportunityLineItem.create,
            {"OpportunityId": opp["id"], "Product2Id": product, "Quantity": quantity, "UnitPrice": price},
        )
    await call(sf.Opportunity.update, opp["id"], {"StageName": "Closed Won"})
    record = await call(sf.Opportunity.get, opp["id"])
    assert (record["IsWon"], record["IsClosed"], record["Probability"]) == (True, True, 100.0)
    assert record["Amount"] == 299.99 and record["HasOpportunityLineItem"] is True
    lines = await call(sf.query, f"SELECT TotalPrice FROM OpportunityLineItem WHERE OpportunityId = '{opp['id']}'")
    assert sorted(r["TotalPrice"] for r in lines["records"]) == [99.99, 200.0]
    # With products, an Amount in an update is ignored without an error; the other fields still change.
    assert await call(sf.Opportunity.update, opp["id"], {"Amount": 1, "Name": "Deal 2"}) == 204
    record = await call(sf.Opportunity.get, opp["id"])
    assert (record["Amount"], record["Name"]) == (299.99, "Deal 2")


async def priced_product(sf: Any, name: str, price: float, code: str | None = None) -> tuple[str, str]:
    """An active product with its standard price: (Product2 id, standard PricebookEntry id)."""
    product = await call(sf.Product2.create, {"Name": name, "ProductCode": code, "IsActive": True})
    entry = await call(
        sf.PricebookEntry.create,
        {"Pricebook2Id": STANDARD_PRICEBOOK_ID, "Product2Id": product["id"], "UnitPrice": price, "IsActive": True},
    )
    return product["id"], entry["id"]


async def opportunity(sf: Any, name: str = "Acme - 200 kW") -> str:
    """A new opportunity's id."""
    made = await call(sf.Opportunity.create, {"Name": name, "StageName": "Prospecting", "CloseDate": "2025-07-01"})
    return str(made["id"])


async def test_a_fresh_org_has_an_active_standard_price_book(org: Org, sf: Any) -> None:
    books = await call(sf.query, "SELECT Id, Name, IsActive, IsStandard FROM Pricebook2")
    assert [(r["Id"], r["Name"], r["IsActive"], r["IsStandard"]) for r in books["records"]] == [
        (STANDARD_PRICEBOOK_ID, "Standard Price Book", True, True)
    ]
    with pytest.raises(SalesforceMalformedRequest) as standard:
        await call(sf.Pricebook2.delete, STANDARD_PRICEBOOK_ID)
    assert error_codes(standard) == ["DELETE_FAILED"]


async def test_price_book_entries_copy_the_product_and_need_a_standard_price_first(org: Org, sf: Any) -> None:
    product = await call(sf.Product2.create, {"Name": "GenWatt Diesel 200kW", "ProductCode": "GC1020"})
    assert (await call(sf.Product2.get, product["id"]))["IsActive"] is False  # products start inactive
    assert product["id"].startswith("01t")
    custom = await call(sf.Pricebook2.create, {"Name": "Partners", "IsActive": True})
    assert custom["id"].startswith("01s")
    with pytest.raises(SalesforceMalformedRequest) as no_standard:
        await call(
            sf.PricebookEntry.create, {"Pricebook2Id": custom["id"], "Product2Id": product["id"], "UnitPrice": 9}
        )
    assert error_codes(no_standard) == ["STANDARD_PRICE_NOT_DEFINED"]
    standard = await call(
        sf.PricebookEntry.create,
        {"Pricebook2Id": STANDARD_PRICEBOOK_ID, "Product2Id": product["id"], "UnitPrice": 25000},
    )
    assert standard["id"].startswith("01u")
    entry = await call(sf.PricebookEntry.get, standard["id"])
    assert (entry["Name"], entry["ProductCode"], entry["UnitPrice"]) == ("GenWatt Diesel 200kW", "GC1020", 25000.0)
    assert (entry["IsActive"], entry["UseStandardPrice"]) == (False, False)
    with pytest.raises(SalesforceMalformedRequest) as twice:
        await call(
            sf.PricebookEntry.create,
            {"Pricebook2Id": STANDARD_PRICEBOOK_ID, "Product2Id": product["id"], "UnitPrice": 1},
        )
    assert error_codes(twice) == ["DUPLICATE_VALUE"]
    with pytest.raises(SalesforceMalformedRequest) as name:
        await call(sf.PricebookEntry.update, standard["id"], {"Name": "Renamed"})
    assert error_codes(name) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    await call(sf.Product2.update, product["id"], {"Name": "GenWatt Diesel 250kW"})
    assert (await call(sf.PricebookEntry.get, standard["id"]))["Name"] == "GenWatt Diesel 250kW"


async def test_a_line_names_its_product_and_gets_a_derived_name(org: Org, sf: Any) -> None:
    product, entry = await priced_product(sf, "GenWatt Diesel 200kW", 25000, "GC1020")
    deal = await opportunity(sf)
    by_entry = await call(
        sf.OpportunityLineItem.create,
        {"OpportunityId": deal, "PricebookEntryId": entry, "Quantity": 1, "UnitPrice": 24000},
    )
    line = await call(sf.OpportunityLineItem.get, by_entry["id"])
    assert line["Name"] == "Acme - 200 kW GenWatt Diesel 200kW"
    assert (line["Product2Id"], line["PricebookEntryId"]) == (product, entry)
    assert (line["ProductCode"], line["ListPrice"], line["TotalPrice"]) == ("GC1020", 25000.0, 24000.0)
    assert (await call(sf.Opportunity.get, deal))["Pricebook2Id"] == STANDARD_PRICEBOOK_ID
    by_product = await call(
        sf.OpportunityLineItem.create, {"OpportunityId": deal, "Product2Id": product, "Quantity": 2, "UnitPrice": 1}
    )
    assert (await call(sf.OpportunityLineItem.get, by_product["id"]))["PricebookEntryId"] == entry
    # The name follows the opportunity's.
    await call(sf.Opportunity.update, deal, {"Name": "Acme - backup"})
    assert (await call(sf.OpportunityLineItem.get, by_entry["id"]))["Name"] == "Acme - backup GenWatt Diesel 200kW"


async def test_line_creation_refuses_what_salesforce_refuses(org: Org, sf: Any) -> None:
    product, entry = await priced_product(sf, "GenWatt Diesel 200kW", 25000)
    other, _ = await priced_product(sf, "Installation", 1500)
    deal = await opportunity(sf)
    base = {"OpportunityId": deal, "Quantity": 1, "UnitPrice": 10}
    with pytest.raises(SalesforceMalformedRequest) as neither:
        await call(sf.OpportunityLineItem.create, base)
    assert content(neither) == [
        {
            "message": "field integrity exception: PricebookEntryId, unknown (versions 3.0 and higher must specify "
            "pricebook entry id; others must specify product id)",
            "errorCode": "FIELD_INTEGRITY_EXCEPTION",
            "fields": ["PricebookEntryId", "unknown"],
        }
    ]
    with pytest.raises(SalesforceMalformedRequest) as disagree:
        await call(sf.OpportunityLineItem.create, {**base, "PricebookEntryId": entry, "Product2Id": other})
    assert error_codes(disagree) == ["FIELD_INTEGRITY_EXCEPTION"] and content(disagree)[0]["fields"] == ["Product2Id"]
    with pytest.raises(SalesforceMalformedRequest) as named:
        await call(sf.OpportunityLineItem.create, {**base, "Product2Id": product, "Name": "My line"})
    assert error_codes(named) == ["INVALID_FIELD_FOR_INSERT_UPDATE"] and content(named)[0]["fields"] == ["Name"]
    unpriced = await call(sf.Product2.create, {"Name": "Not in any book", "IsActive": True})
    with pytest.raises(SalesforceMalformedRequest) as no_entry:
        await call(sf.OpportunityLineItem.create, {**base, "Product2Id": unpriced["id"]})
    assert error_codes(no_entry) == ["FIELD_INTEGRITY_EXCEPTION"]
    await call(sf.PricebookEntry.update, entry, {"IsActive": False})
    with pytest.raises(SalesforceMalformedRequest) as inactive:
        await call(sf.OpportunityLineItem.create, {**base, "PricebookEntryId": entry})
    assert error_codes(inactive) == ["FIELD_INTEGRITY_EXCEPTION"]
    assert org.simulator.records("OpportunityLineItem") == []
    # Once the opportunity has a price book, entries of another book do not fit it.
    line = await call(sf.OpportunityLineItem.create, {**base, "Product2Id": other})
    custom = await call(sf.Pricebook2.create, {"Name": "Partners", "IsActive": True})
    partner = await call(
        sf.PricebookEntry.create,
        {"Pricebook2Id": custom["id"], "Product2Id": other, "UnitPrice": 1200, "IsActive": True},
    )
    with pytest.raises(SalesforceMalformedRequest) as other_book:
        await call(sf.OpportunityLineItem.create, {**base, "PricebookEntryId": partner["id"]})
    assert error_codes(other_book) == ["FIELD_INTEGRITY_EXCEPTION"]
    with pytest.raises(SalesforceMalformedRequest) as moved:
        await call(sf.OpportunityLineItem.update, line["id"], {"Product2Id": product})
    assert error_codes(moved) == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
    with pytest.raises(SalesforceMalformedRequest) as in_use:
        await call(sf.Product2.delete, other)
    assert error_codes(in_use) == ["DELETE_FAILED"]


async def test_query_and_query_all_nest_parent_fields(org: Org, sf: Any) -> None:
    product, entry = await priced_product(sf, "GenWatt Diesel 200kW", 25000, "GC1020")
    deal = await opportunity(sf, "O'Brien – backup")
    line = await call(
        sf.OpportunityLineItem.create, {"OpportunityId": deal, "Product2Id": product, "Quantity": 1, "UnitPrice": 5}
    )
    query = (
        "SELECT Id, Product2.Name, PricebookEntry.Name, PricebookEntry.UnitPrice, Opportunity.Name "
        r"FROM OpportunityLineItem WHERE Name LIKE 'O\'Brien%'"
    )
    [row] = (await call(sf.query, query))["records"]

    def attributes(sobject: str, record_id: str) -> dict[str, str]:
        return {"type": sobject, "url": f"/services/data/v59.0/sobjects/{sobject}/{record_id}"}

    assert row == {
        "attributes": attributes("OpportunityLineItem", line["id"]),
        "Id": line["id"],
        "Product2": {"attributes": attributes("Product2", product), "Name": "GenWatt Diesel 200kW"},
        "PricebookEntry": {"attributes": attributes("PricebookEntry", entry), "Name": "GenWatt Diesel 200kW",
                           "UnitPrice": 25000.0},
        "Opportunity": {"attributes": attributes("Opportunity", deal), "Name": "O'Brien – backup"},
    }  # fmt: skip
    await call(sf.Opportunity.delete, deal)  # its lines go to the recycle bin with it
    assert (await call(sf.query, "SELECT Product2.Name FROM OpportunityLineItem"))["records"] == []
    deleted = await call(sf.query_all, "SELECT IsDeleted, Product2.Name FROM OpportunityLineItem", include_deleted=True)
    assert [(r["IsDeleted"], r["Product2"]["Name"]) for r in deleted["records"]] == [(True, "GenWatt Diesel 200kW")]
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        await call(sf.query, "SELECT Owner.Name FROM OpportunityLineItem")
    assert error_codes(unknown) == ["INVALID_FIELD"]


async def test_describe_shows_which_product_fields_are_written(org: Org, sf: Any) -> None:
    described = await call(sf.OpportunityLineItem.describe)
    fields = {f["name"]: f for f in described["fields"]}
    assert {n: (fields[n]["createable"], fields[n]["updateable"]) for n in
            ("Name", "ProductCode", "ListPrice", "PricebookEntryId", "Product2Id", "Quantity")} == {
        "Name": (False, False), "ProductCode": (False, False), "ListPrice": (False, False),
        "PricebookEntryId": (True, False), "Product2Id": (True, False), "Quantity": (True, True),
    }  # fmt: skip
    assert fields["Product2Id"]["relationshipName"] == "Product2"
    assert fields["Product2Id"]["referenceTo"] == ["Product2"]
    entry = {f["name"]: f for f in (await call(sf.PricebookEntry.describe))["fields"]}
    assert not entry["Name"]["createable"] and entry["Pricebook2Id"]["createable"]
    assert (await call(sf.Product2.describe))["keyPrefix"] == "01t"
    opportunity_fields = {f["name"] for f in (await call(sf.Opportunity.describe))["fields"]}
    assert "Pricebook2Id" in opportunity_fields


async def test_upsert_by_external_id_inserts_updates_and_reports_ambiguity(org: Org, sf: Any) -> None:
    assert await call(sf.Contact.upsert, "Syncd_Ref__c/ref-1", {"LastName": "First"}) == 201
    assert await call(sf.Contact.upsert, "Syncd_Ref__c/REF-1", {"LastName": "Second"}) == 200
    rows = await call(sf.query, "SELECT LastName, Syncd_Ref__c FROM Contact")
    assert [(r["LastName"], r["Syncd_Ref__c"]) for r in rows["records"]] == [("Second", "ref-1")]
    raw = await call(sf.Contact.upsert, "Syncd_Ref__c/ref-2", {"LastName": "Third"}, raw_response=True)
    assert raw.status_code == 201 and raw.json()["created"] is True
    for name in ("A", "B"):
        await call(sf.Contact.create, {"LastName": name, "Legacy_Id__c": "L-1"})
    with pytest.raises(SalesforceMoreThanOneRecord) as several:
        await call(sf.Contact.upsert, "Legacy_Id__c/L-1", {"LastName": "C"})
    assert len(content(several)) == 2
    with pytest.raises(SalesforceResourceNotFound):
        await call(sf.Contact.upsert, "Nope__c/x", {"LastName": "C"})
    with pytest.raises(SalesforceMalformedRequest):
        await call(sf.Contact.upsert, "Email/x@y.com", {"LastName": "C"})
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        await call(sf.Contact.create, {"LastName": "Dup", "Syncd_Ref__c": "Ref-2"})
    assert error_codes(duplicate) == ["DUPLICATE_VALUE"]


async def test_delete_goes_to_recycle_bin(org: Org, sf: Any) -> None:
    keep = await call(sf.Contact.create, {"LastName": "Keep"})
    gone = await call(sf.Contact.create, {"LastName": "Gone"})
    org.clock.advance(120)
    assert await call(sf.Contact.delete, gone["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as missing:
        await call(sf.Contact.get, gone["id"])
    assert error_codes(missing) == ["ENTITY_IS_DELETED"]
    live = await call(sf.query, "SELECT Id FROM Contact")
    assert [r["Id"] for r in live["records"]] == [keep["id"]]
    everything = await call(sf.query_all, "SELECT Id, IsDeleted FROM Contact ORDER BY LastName", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [(gone["id"], True), (keep["id"], False)]


async def test_updated_and_deleted_resources_ignore_seconds(org: Org, sf: Any) -> None:
    start = dt.datetime.fromtimestamp(org.clock.now, dt.UTC)
    first = await call(sf.Contact.create, {"LastName": "One"})
    org.clock.advance(65)
    second = await call(sf.Contact.create, {"LastName": "Two"})
    await call(sf.Contact.delete, first["id"])
    org.clock.advance(120)
    end = dt.datetime.fromtimestamp(org.clock.now, dt.UTC)
    updated = await call(sf.Contact.updated, start, end)
    assert updated["ids"] == [second["id"]]
    assert updated["latestDateCovered"] == end.replace(second=0).strftime("%Y-%m-%dT%H:%M:00.000+0000")
    deleted = await call(sf.Contact.deleted, start, end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [first["id"]]
    assert deleted["deletedRecords"][0]["deletedDate"] == "2025-06-02T" + _hms(start + dt.timedelta(seconds=65))
    assert "earliestDateAvailable" in deleted
    with pytest.raises(SalesforceMalformedRequest):
        await call(sf.Contact.updated, start - dt.timedelta(days=31), end)
    with pytest.raises(SalesforceMalformedRequest):
        await call(sf.Contact.deleted, start - dt.timedelta(days=16), end)


def _hms(moment: dt.datetime) -> str:
    return moment.strftime("%H:%M:%S.000+0000")


async def test_describe_lists_custom_fields_and_picklists(org: Org, sf: Any) -> None:
    described = await call(sf.Opportunity.describe)
    fields = {f["name"]: f for f in described["fields"]}
    assert described["keyPrefix"] == "006"
    assert fields["Syncd_Ref__c"]["externalId"] and fields["Syncd_Ref__c"]["unique"]
    assert {"Invoice_Number__c", "Invoice_Status__c", "Invoice_Balance__c", "Amount_Paid__c"} <= set(fields)
    assert not fields["IsWon"]["updateable"] and not fields["CloseDate"]["nillable"]
    assert "Closed Won" in [p["value"] for p in fields["StageName"]["picklistValues"]]
    payment = await call(sf.Payment__c.describe)
    assert {"Opportunity__c", "Amount__c", "Payment_Date__c", "Payment_Mode__c", "Reference__c"} <= {
        f["name"] for f in payment["fields"]
    }
    with pytest.raises(SalesforceResourceNotFound):
        await call(sf.Lead.describe)


# ------------------------------------------------------------------------------------------- queries


async def test_query_pages_with_batch_size_and_query_all_follows(org: Org, sf: Any) -> None:
    store = org.simulator.store
    for i in range(450):
        store.create(CONTACT, {"LastName": f"P{i:03d}", "Email": f"p{i}@x.com"})
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = await call(sf.query, "SELECT Id, LastName FROM Contact ORDER BY LastName", headers=headers)
    assert (first["totalSize"], first["done"], len(first["records"])) == (450, False, 200)
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w{15}-200", first["nextRecordsUrl"])
    everything = await call(sf.query_all, "SELECT Id, LastName FROM Contact ORDER BY LastName", headers=headers)
    names = [r["LastName"] for r in everything["records"]]
    assert names == [f"P{i:03d}" for i in range(450)]
    default = await call(sf.query, "SELECT Id FROM Contact")
    assert default["done"] and len(default["records"]) == 450  # default batch is 2000
    with pytest.raises(SalesforceMalformedRequest) as bad_locator:
        await call(sf.query_more, "/services/data/v59.0/query/01gSb0000000zzzIAA-200", identifier_is_url=True)
    assert error_codes(bad_locator) == ["INVALID_QUERY_LOCATOR"]


async def test_query_errors_are_salesforce_errors(org: Org, sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        await call(sf.query, "SELECT Id FROM Contact WHERE LastName = 'x' AND")
    assert error_codes(malformed) == ["MALFORMED_QUERY"]
    with pytest.raises(SalesforceMalformedRequest) as invalid:
        await call(sf.query, "SELECT Id, Nope FROM Contact")
    assert error_codes(invalid) == ["INVALID_FIELD"]
    await call(sf.Contact.create, {"LastName": "O'Brien", "Email": "o'brien@x.com"})
    found = await call(sf.query, r"SELECT Email FROM Contact WHERE Email = 'o\'brien@x.com'")
    assert [r["Email"] for r in found["records"]] == ["o'brien@x.com"]
    nothing = await call(sf.query, r"SELECT Id FROM Contact WHERE Email = 'x\' OR Name != \''")
    assert nothing["records"] == []


# --------------------------------------------------------------------------------------- collections


async def test_collections_create_partial_and_all_or_none(org: Org, sf: Any) -> None:
    records = [
        {"attributes": {"type": "Account"}, "Name": "Acme"},
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
    ]
    partial = await call(sf.restful, "composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert partial[0]["success"] and partial[0]["id"].startswith("001")
    assert not partial[1]["success"] and partial[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    atomic = await call(
        sf.restful,
        "composite/sobjects",
        method="POST",
        json={"allOrNone": True, "records": [{**records[0], "Name": "Other"}, records[1]]},
    )
    assert [r["success"] for r in atomic] == [False, False]
    assert atomic[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert [r["Name"] for r in org.simulator.records("Account") or []] == ["Acme"]
    too_many = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest):
        await call(sf.restful, "composite/sobjects", method="POST", json={"records": too_many})


async def test_collections_update_retrieve_and_delete(org: Org, sf: Any) -> None:
    created = await call(
        sf.restful,
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Contact"}, "LastName": f"C{i}"} for i in range(3)]},
    )
    ids = [r["id"] for r in created]
    updated = await call(
        sf.restful,
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Contact"}, "id": ids[0], "Title": "CEO"},
                {"attributes": {"type": "Contact"}, "id": ids[1], "LastName": None},
            ],
        },
    )
    assert updated[0] == {"id": ids[0], "success": True, "errors": []}
    assert updated[1]["id"] == ids[1] and updated[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    fetched = await call(
        sf.restful,
        "composite/sobjects/Contact",
        params={"ids": ",".join([*ids, "003Sb0000000zzzIAA"]), "fields": "Id,Title"},
    )
    assert [r and r["Title"] for r in fetched] == ["CEO", None, None, None]
    deleted = await call(
        sf.restful, "composite/sobjects", method="DELETE", params={"ids": ",".join(ids[:2]), "allOrNone": "false"}
    )
    assert [r["success"] for r in deleted] == [True, True]
    again = await call(sf.restful, "composite/sobjects", method="DELETE", params={"ids": ids[0]})
    assert again[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    upserted = await call(
        sf.restful,
        "composite/sobjects/Contact/Syncd_Ref__c",
        method="PATCH",
        json={"records": [{"attributes": {"type": "Contact"}, "Syncd_Ref__c": "r1", "LastName": "Up"}]},
    )
    assert upserted[0]["created"] is True


# ------------------------------------------------------------------------------ sessions and limits


async def test_expired_session_then_refresh_through_token_endpoint(org: Org, sf: Any) -> None:
    await call(sf.query, "SELECT Id FROM Contact")
    org.clock.advance(2 * 3600 + 1)  # the default session lifetime is two hours
    with pytest.raises(SalesforceExpiredSession) as expired:
        await call(sf.query, "SELECT Id FROM Contact")
    assert content(expired) == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
    ]
    creds = org.simulator.credentials(org.url)
    with org.session() as session:
        response = await call(
            session.post,
            f"{org.url}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": creds["refresh_token"],
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
            },
        )
        body = response.json()
        assert response.status_code == 200
        assert "expires_in" not in body and "refresh_token" not in body
        assert body["instance_url"] == org.url and body["token_type"] == "Bearer"
        assert body["issued_at"] == str(int(org.clock.now * 1000)) and body["signature"] and body["id"]
        fresh = Salesforce(
            instance_url=body["instance_url"], session_id=body["access_token"], session=session, version="59.0"
        )
        assert (await call(fresh.query, "SELECT Id FROM Contact"))["done"] is True
        bad = await call(
            session.post,
            f"{org.url}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "nope",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
            },
        )
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


async def test_authorization_code_flow(org: Org) -> None:
    creds = org.simulator.credentials(org.url)
    redirect = "http://127.0.0.1:9/callback"
    with org.session() as session:
        page = await call(
            session.get,
            f"{org.url}/services/oauth2/authorize",
            allow_redirects=False,
            params={
                "response_type": "code",
                "client_id": creds["client_id"],
                "redirect_uri": redirect,
                "state": "s-1",
            },
        )
        assert page.status_code == 302
        location = page.headers["Location"]
        assert location.startswith(redirect + "?") and "state=s-1" in location
        code = re.search(r"code=([^&]+)", location)
        assert code is not None
        token = await call(
            session.post,
            f"{org.url}/services/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": unquote(code.group(1)),
                "redirect_uri": redirect,
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
            },
        )
        assert token.status_code == 200 and token.json()["refresh_token"]
        reused = await call(
            session.post,
            f"{org.url}/services/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": unquote(code.group(1)),
                "redirect_uri": redirect,
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
            },
        )
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


async def test_limit_header_and_daily_allocation(org: Org, sf: Any) -> None:
    org.simulator.apply_limits({"daily_cap": 3})
    await call(sf.query, "SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"].used == 1 and sf.api_usage["api-usage"].total == 3
    limits = await call(sf.limits)
    assert limits["DailyApiRequests"] == {"Max": 3, "Remaining": 1}
    await call(sf.query, "SELECT Id FROM Contact")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        await call(sf.query, "SELECT Id FROM Contact")
    assert content(refused) == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED", "fields": []}
    ]
    with pytest.raises(ValueError):
        org.simulator.apply_limits({"daily_limit": 3})


async def test_short_window_limit_refuses_until_the_window_passes(org: Org, sf: Any) -> None:
    org.simulator.apply_limits({"window_s": 60, "window_max": 1})
    org.clock.advance(60 - org.clock.now % 60)  # start of a fresh window
    await call(sf.query, "SELECT Id FROM Contact")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        await call(sf.query, "SELECT Id FROM Contact")
    assert content(refused)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    org.clock.advance(60)
    assert (await call(sf.query, "SELECT Id FROM Contact"))["done"] is True


async def test_fault_responses_are_salesforce_shaped(org: Org, sf: Any) -> None:
    org.simulator.faults.assign(Faults(error_rate=1.0))
    with pytest.raises(SalesforceGeneralError) as failed:
        await call(sf.query, "SELECT Id FROM Contact")
    assert failed.value.status in (500, 503)
    assert content(failed)[0]["errorCode"] in ("UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE")
    org.simulator.faults.assign(Faults(rate_limit_rate=1.0))
    with pytest.raises(SalesforceRefusedRequest) as limited:
        await call(sf.query, "SELECT Id FROM Contact")
    assert content(limited)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


async def test_seed_builds_accounts_contacts_and_opportunities(org: Org, sf: Any) -> None:
    world = SeedWorld.build(3, 10)
    created = org.simulator.seed(world, SeedCounts(contacts=10, companies=2, deals=4))
    assert created["Account"] == 2 and created["Contact"] == 10 and created["Opportunity"] == 4
    contacts = await call(sf.query, "SELECT Email, AccountId FROM Contact WHERE AccountId != null")
    assert {r["Email"] for r in contacts["records"]} <= {p.email for p in world.people}
    opps = await call(sf.query, "SELECT Amount FROM Opportunity WHERE HasOpportunityLineItem = true")
    assert sorted(r["Amount"] for r in opps["records"]) == sorted(float(d.amount) for d in world.deals[:4])
    # Seeded lines are the catalogue's products, each with a standard price.
    lines = await call(sf.query, "SELECT Name, Product2.Name, PricebookEntry.UnitPrice FROM OpportunityLineItem")
    assert {r["Product2"]["Name"] for r in lines["records"]} <= {line.name for d in world.deals for line in d.lines}
    assert all(r["Name"].endswith(" " + r["Product2"]["Name"]) for r in lines["records"])
    products = await call(sf.query, "SELECT Name, IsActive FROM Product2")
    assert created["Product2"] == len(products["records"]) and all(p["IsActive"] for p in products["records"])
    again = org.simulator.seed(world, SeedCounts(deals=1))
    assert again["Product2"] == 0  # a second seeding reuses the catalogue
    assert json.dumps(org.simulator.dump_state())  # the state file is plain JSON
