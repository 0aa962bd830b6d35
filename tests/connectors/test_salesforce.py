"""SalesforceConnector against the sandbox's Salesforce simulator: reads, writes, lookups, webhooks, OAuth."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.connectors.base import Create, Record, Update, WebhookRejected, WebhookRequest
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.salesforce import SalesforceConnector
from syncd.connectors.salesforce.cdc import parse_feed, verify_feed
from syncd.connectors.salesforce.settings import SalesforceConnection
from syncd.connectors.tokens import TokenStorage
from syncd.errors import NotFoundError, SkippableError
from syncd.sandbox.runner import Sandbox
from tests.connectors.conftest import ControlPlane

# Fast but bounded retries: faults are injected, the waiting need not be realistic.
FAST_RETRIES = RetryPolicy(attempts=10, initial_s=0.01, max_s=0.2, jitter_s=0.01)


def salesforce_settings(sandbox: Sandbox, **overrides: Any) -> SalesforceConnection:
    """Settings pointing at the sandbox's Salesforce simulator (a generous budget unless overridden)."""
    described = sandbox.descriptor["salesforce"]
    values: dict[str, Any] = {
        "system": "salesforce",
        "base_url": described["base_url"],
        "instance_url": described["instance_url"],
        "ca_cert": described["ca_cert"],
        "client_id": described["client_id"],
        "client_secret": described["client_secret"],
        "refresh_token": described["refresh_token"],
        "timeout_s": 2.0,
        "rate_limit": {"window_s": 0.05, "window_max": 100},
    }
    values.update(overrides)
    return SalesforceConnection(**values)


@asynccontextmanager
async def salesforce_connector(sandbox: Sandbox, name: str = "sf-test", *, storage: TokenStorage | None = None,
                               batch_size: int = 200, **overrides: Any) -> AsyncIterator[SalesforceConnector]:
    """A started connector with small query pages and fast retries, closed afterwards."""
    connector = SalesforceConnector(name, salesforce_settings(sandbox, **overrides), storage=storage,
                                    retry_policy=FAST_RETRIES, query_batch_size=batch_size)
    await connector.start()
    try:
        yield connector
    finally:
        await connector.close()


@pytest.fixture
async def sf(reset_sandbox: Sandbox) -> AsyncIterator[SalesforceConnector]:
    """A connector on a freshly reset sandbox."""
    async with salesforce_connector(reset_sandbox) as connector:
        yield connector


async def read_all(connector: SalesforceConnector, obj: str, since: datetime | None = None,
                   overlap: timedelta = timedelta(0)) -> tuple[list[Record], list[datetime]]:
    """Every record `changes` yields, and the cursor of each page."""
    records: list[Record] = []
    cursors: list[datetime] = []
    async for page in connector.changes(obj, since, overlap):
        records.extend(page.records)
        cursors.append(page.cursor)
    return records, cursors


def contact(reference: str, last_name: str, email: str | None = None, **fields: Any) -> Create:
    """A Contact to create."""
    return Create(reference, {"LastName": last_name, "Email": email, **fields})


async def test_paged_read_returns_every_record_once_with_cursor_capped_at_read_start(
        sf: SalesforceConnector, control: dict[str, ControlPlane]) -> None:
    await control["salesforce"].post("seed", {"contacts": 450, "seed": 3})
    started = datetime.now(UTC)
    records, cursors = await read_all(sf, "Contact")
    assert len(records) == 450
    assert len({r.id for r in records}) == 450
    assert len(cursors) == 3  # 200 + 200 + 50: nextRecordsUrl was followed
    assert cursors == sorted(cursors)
    assert cursors[-1] <= datetime.now(UTC)
    stamps = [r.modified_at for r in records]
    assert stamps == sorted(stamps)
    first = records[0]
    assert isinstance(first.modified_at, datetime) and first.modified_at.tzinfo is not None
    assert isinstance(first.fields["LastName"], str)
    assert first.fields["IsDeleted"] is False
    assert first.fields["Syncd_Ref__c"] is None
    assert cursors[0] >= started - timedelta(minutes=1)


async def test_incremental_read_sees_changes_after_the_cursor(sf: SalesforceConnector,
                                                              control: dict[str, ControlPlane]) -> None:
    await control["salesforce"].post("seed", {"contacts": 30})
    records, cursors = await read_all(sf, "Contact")
    cursor = cursors[-1]
    target = records[5].id
    await asyncio.sleep(0.01)  # SystemModstamp has millisecond precision: make the update strictly later
    outcomes = await sf.update_many("Contact", [Update(target, {"Title": "Chief Tester"})])
    assert outcomes[0].ok
    changed, _ = await read_all(sf, "Contact", since=cursor + timedelta(milliseconds=1))
    assert [r.id for r in changed] == [target]
    assert changed[0].fields["Title"] == "Chief Tester"
    # With an overlap window, records at the cursor itself are read again.
    again, _ = await read_all(sf, "Contact", since=cursor, overlap=timedelta(seconds=1))
    assert target in {r.id for r in again}


async def test_empty_read_yields_one_page_moving_the_cursor_to_the_reads_start(sf: SalesforceConnector) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    started = datetime.now(UTC)
    records, cursors = await read_all(sf, "Contact", since=since)
    # Up to the read's start by Salesforce's clock (the sandbox's is ours), less a second of stamp precision.
    assert records == [] and len(cursors) == 1
    assert started - timedelta(seconds=3) <= cursors[0] <= datetime.now(UTC)


async def test_opportunities_carry_typed_line_items(sf: SalesforceConnector,
                                                   control: dict[str, ControlPlane]) -> None:
    await control["salesforce"].post("seed", {"companies": 3, "contacts": 5, "deals": 8})
    records, _ = await read_all(sf, "Opportunity")
    assert len(records) == 8
    with_lines = [r for r in records if r.fields["line_items"]]
    assert with_lines, "the seed world gives deals line items"
    opportunity = with_lines[0]
    lines = opportunity.fields["line_items"]
    assert isinstance(lines, list)
    assert set(lines[0]) == {"Id", "Name", "Description", "Quantity", "UnitPrice", "TotalPrice", "ProductCode",
                             "Product2.Name"}  # fmt: skip
    assert isinstance(lines[0]["UnitPrice"], Decimal)
    # Seeded lines are catalogue products; Salesforce names the line after the opportunity and the product.
    catalogue = (await control["salesforce"].get("records/Product2"))["records"]
    assert lines[0]["Product2.Name"] in {p["Name"] for p in catalogue}
    assert lines[0]["Name"] == f"{opportunity.fields['Name']} {lines[0]['Product2.Name']}"
    assert isinstance(opportunity.fields["Amount"], Decimal)
    assert opportunity.fields["Amount"] == sum(Decimal(str(line["TotalPrice"])) for line in lines)
    assert isinstance(opportunity.fields["CloseDate"], date)
    fetched = await sf.get_many("Opportunity", [opportunity.id, opportunity.id[:15], "006000000000000AAA"])
    assert set(fetched) == {opportunity.id, opportunity.id[:15]}
    assert fetched[opportunity.id].fields["line_items"] == lines


async def test_a_won_opportunitys_lines_carry_their_product_names(sf: SalesforceConnector,
                                                                  control: dict[str, ControlPlane]) -> None:
    await control["salesforce"].post("seed", {"deals": 8})  # the product catalogue and its standard prices
    products = {p["Name"]: p["Id"] for p in (await control["salesforce"].get("records/Product2"))["records"]}
    first, second = sorted(products)[:2]
    [made] = await sf.create_many("Opportunity", [Create("ref-o", {
        "Name": "Acme – renewal", "StageName": "Closed Won", "CloseDate": date(2025, 6, 2)})])  # fmt: skip
    assert made.ok and made.id
    lines = [Create(f"ref-l{n}", {"OpportunityId": made.id, "Product2Id": products[name], "Quantity": Decimal(n),
                                  "UnitPrice": Decimal("100"), "Description": f"line {n}"})
             for n, name in enumerate((first, second), 1)]  # fmt: skip
    assert all(o.ok for o in await sf.create_many("OpportunityLineItem", lines))
    record = (await sf.get_many("Opportunity", [made.id]))[made.id]
    got = record.fields["line_items"]
    assert isinstance(got, list)
    assert [(line["Product2.Name"], line["Name"], line["Description"], line["Quantity"]) for line in got] == [
        (first, f"Acme – renewal {first}", "line 1", Decimal(1)),
        (second, f"Acme – renewal {second}", "line 2", Decimal(2)),
    ]
    # A mapping may name the product's name among the line fields (`syncd mappings validate --live`).
    described = await sf.describe("Opportunity")
    assert described["line_items.Product2.Name"].type == "string"
    assert not described["line_items.Product2.Name"].createable
    assert not described["line_items.Name"].createable and described["line_items.Product2Id"].type == "reference"


async def test_creates_are_idempotent_by_reference(sf: SalesforceConnector, sandbox: Sandbox) -> None:
    items = [contact(f"ref-{i}", f"Person{i}", f"p{i}@example.com") for i in range(3)]
    first = await sf.create_many("Contact", items)
    assert all(o.ok and o.id and not o.existed for o in first)
    # The same creates again (as after a crash between the write and recording it): found, not duplicated.
    second = await sf.create_many("Contact", items)
    assert [o.id for o in second] == [o.id for o in first]
    assert all(o.existed for o in second)
    stored = [r for r in sandbox.salesforce.records("Contact") or [] if not r["IsDeleted"]]
    assert sorted(r["Syncd_Ref__c"] for r in stored) == ["ref-0", "ref-1", "ref-2"]


async def test_create_errors_stay_on_their_record(sf: SalesforceConnector) -> None:
    outcomes = await sf.create_many("Contact", [
        contact("ok-1", "Fine"),
        Create("bad-1", {"FirstName": "NoLastName"}),
        contact("bad-2", "BadMail", "not-an-email"),
        Create("bad-3", {"LastName": "Lines", "line_items": []}),
    ])
    assert outcomes[0].ok
    for outcome, code in zip(outcomes[1:3], ["REQUIRED_FIELD_MISSING", "INVALID_EMAIL_ADDRESS"], strict=True):
        assert isinstance(outcome.error, SkippableError)
        assert outcome.error.vendor_code == code
        assert outcome.error.record is not None and outcome.error.record.startswith("bad-")
    assert isinstance(outcomes[3].error, SkippableError)


async def test_batches_larger_than_a_collection_are_split(sf: SalesforceConnector, sandbox: Sandbox) -> None:
    items = [contact(f"bulk-{i}", f"Bulk{i}") for i in range(450)]
    outcomes = await sf.create_many("Contact", items)
    assert all(o.ok for o in outcomes) and len({o.id for o in outcomes}) == 450
    counted = sandbox.salesforce.stats.requests
    assert counted["POST /services/data/{version}/composite/sobjects"] == 3


async def test_update_and_delete_report_per_record_outcomes(sf: SalesforceConnector) -> None:
    created = await sf.create_many("Contact", [contact("u-1", "One"), contact("u-2", "Two")])
    one, two = (o.id for o in created)
    assert one and two
    missing = "003000000000999AAA"
    updates = await sf.update_many("Contact", [Update(one, {"Title": "Updated"}), Update(missing, {"Title": "x"})])
    assert updates[0].ok and isinstance(updates[1].error, NotFoundError)
    assert (await sf.get_many("Contact", [one]))[one].fields["Title"] == "Updated"
    before_delete = datetime.now(UTC) - timedelta(seconds=1)
    deleted = await sf.delete_many("Contact", [two, missing])
    assert deleted[0].ok and isinstance(deleted[1].error, NotFoundError)
    again = await sf.delete_many("Contact", [two])
    assert again[0].ok, "an already-deleted record counts as done"
    assert await sf.get_many("Contact", [two]) == {}
    gone = await sf.deletions("Contact", before_delete)
    assert [d.id for d in gone] == [two]
    assert gone[0].merged_into is None


INJECTION_VALUES = ["o'brien@x.com", "a\\b@x.com", "50%_off@x.com"]
DECOY_EMAILS = ["obrien@x.com", "ab@x.com", "a\\\\b@x.com", "50xyoff@x.com", "50%_off@x.co", "b@x.com"]


async def test_lookups_match_exactly_and_cannot_be_injected(sf: SalesforceConnector) -> None:
    people = [contact(f"e-{i}", f"Mail{i}", email) for i, email in enumerate(INJECTION_VALUES + DECOY_EMAILS)]
    people += [contact("n-0", "x' OR Name != '"), contact("n-1", "x"), contact("n-2", "Other")]
    outcomes = await sf.create_many("Contact", people)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    ids = {item.reference: o.id for item, o in zip(people, outcomes, strict=True)}
    found = await sf.find_by_field("Contact", "Email", INJECTION_VALUES)
    for i, value in enumerate(INJECTION_VALUES):
        assert [r.id for r in found[value]] == [ids[f"e-{i}"]], value
    by_name = await sf.find_by_field("Contact", "LastName", ["x' OR Name != '"])
    assert [r.id for r in by_name["x' OR Name != '"]] == [ids["n-0"]]
    # Salesforce compares text case-insensitively, so does the lookup; absent values map to [].
    cased = await sf.find_by_field("Contact", "Email", ["O'Brien@X.com", "nobody@x.com"])
    assert [r.id for r in cased["O'Brien@X.com"]] == [ids["e-0"]]
    assert cased["nobody@x.com"] == []


async def test_lookups_are_chunked_under_url_limits(sf: SalesforceConnector, sandbox: Sandbox) -> None:
    await sf.create_many("Contact", [contact("chunk-1", "Chunk")])
    values = ["chunk-1"] + [f"missing-{i:04d}-{'y' * 60}" for i in range(400)]
    found = await sf.find_by_field("Contact", "Syncd_Ref__c", values)
    assert len(found["chunk-1"]) == 1 and sum(len(v) for v in found.values()) == 1
    requests = sandbox.salesforce.stats.requests
    queries = sum(n for key, n in requests.items() if key.startswith("GET") and "/query" in key)
    assert queries > 2, requests


async def test_describe_reports_fields_for_mapping_validation(sf: SalesforceConnector) -> None:
    fields = await sf.describe("Opportunity")
    assert fields["Syncd_Ref__c"].unique
    assert fields["StageName"].required and "Closed Won" in fields["StageName"].options
    assert not fields["IsWon"].createable and not fields["IsWon"].updateable
    assert fields["Amount"].type == "currency"


async def test_change_feed_is_verified_and_parsed(sf: SalesforceConnector, sandbox: Sandbox) -> None:
    received: list[WebhookRequest] = []
    arrived = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        received.append(WebhookRequest(request.method, str(request.url), dict(request.headers), await request.read()))
        arrived.set()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hooks/salesforce", receive)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        # Set from the sandbox side, as `syncd sandbox --webhook-url` does: the connector never calls /_sandbox/.
        sandbox.simulator("salesforce").set_webhook_targets([str(server.make_url("/hooks/salesforce"))])
        created = await sf.create_many("Contact", [contact("hook-1", "Hooked")])
        record_id = created[0].id
        await asyncio.wait_for(arrived.wait(), 10)
    delivery = received[0]
    sf.verify_webhook(delivery)
    events = sf.parse_webhook(delivery)
    assert [(e.object, e.record_id, e.kind) for e in events] == [("Contact", record_id, "created")]
    assert "client=syncd" in events[0].extra["change_origin"]  # our own write, recognisable as such
    tampered = WebhookRequest(delivery.method, delivery.url, delivery.headers, delivery.body + b" ")
    with pytest.raises(WebhookRejected) as rejected:
        sf.verify_webhook(tampered)
    assert rejected.value.status == 401
    with pytest.raises(WebhookRejected) as malformed:
        sf.parse_webhook(WebhookRequest("POST", delivery.url, {}, b'{"not": "a list"}'))
    assert malformed.value.status == 400


async def test_authorization_code_flow(sf: SalesforceConnector, control_session: aiohttp.ClientSession) -> None:
    redirect = "http://127.0.0.1:9/callback"
    url = sf.authorize_url(redirect, "state-123")
    async with control_session.get(url, allow_redirects=False) as response:
        assert response.status == 302
        location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["state-123"]
    grant = await sf.exchange_code(query["code"][0], redirect)
    assert grant.refresh_token and grant.access_token
    assert grant.expires_at is None
    assert grant.extras["instance_url"].startswith("https://127.0.0.1:")


@pytest.mark.parametrize(("age", "word"), [(timedelta(days=365), "stale"), (timedelta(hours=73), "stale"),
                                           (timedelta(minutes=-10), "future")])
def test_a_signed_feed_delivery_a_year_old_or_from_the_future_is_refused(age: timedelta, word: str) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def delivery(committed: datetime) -> bytes:
        header = {"entityName": "Contact", "recordIds": ["003000000000001AAA"], "changeType": "UPDATE",
                  "commitTimestamp": int(committed.timestamp() * 1000), "transactionKey": "t", "sequenceNumber": 1}
        return json.dumps([{"ChangeEventHeader": header}]).encode()

    body = delivery(now - age)
    signature = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    verify_feed(WebhookRequest("POST", "https://x/hook", {"X-Sandbox-Signature": signature}, body), "secret")
    with pytest.raises(WebhookRejected, match=word) as refused:
        parse_feed(body, ["Contact"], now=now)
    assert refused.value.status == 401
    # Replayed within Salesforce's 72 hours of retention, it is still a change to look at.
    assert len(parse_feed(delivery(now - timedelta(hours=71)), ["Contact"], now=now)) == 1
