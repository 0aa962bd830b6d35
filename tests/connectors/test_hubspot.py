"""HubSpotConnector against the HubSpot simulator: complete reads, idempotent writes, exact lookups, faults."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from syncd.connectors.base import Connector, Create, Update
from syncd.connectors.hubspot import HubSpotConnector
from syncd.errors import DuplicateError, NotFoundError, RetryableError
from syncd.sandbox.runner import Sandbox
from tests.connectors.conftest import ControlPlane
from tests.connectors.hubspot_fixtures import hubspot_connector

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def live_ids(control: ControlPlane, obj: str) -> set[str]:
    """Ids of the simulator's live (not archived) records of an object."""
    listing = await control.get(f"records/{obj}")
    return {r["id"] for r in listing["records"] if not r["archived"]}


async def test_is_a_connector(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        assert isinstance(hubspot, Connector)
        assert list(hubspot.objects()) == ["contacts", "companies", "deals", "line_items"]


async def test_full_and_incremental_reads_return_every_record_once_typed(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    await control["hubspot"].post("seed", {"contacts": 250, "companies": 10, "deals": 40, "seed": 3})
    expected = await live_ids(control["hubspot"], "contacts")
    async with hubspot_connector(reset_sandbox) as hubspot:
        full = [page async for page in hubspot.changes("contacts", None, timedelta(0))]
        ids = [r.id for page in full for r in page.records]
        assert sorted(ids) == sorted(expected)
        assert full[-1].cursor <= datetime.now(UTC)
        incremental = [page async for page in hubspot.changes("contacts", LONG_AGO, timedelta(minutes=2))]
        inc_ids = [r.id for page in incremental for r in page.records]
        assert sorted(inc_ids) == sorted(expected)
        cursors = [p.cursor for p in incremental]
        assert cursors == sorted(cursors) and cursors[-1] <= datetime.now(UTC)

        deals = [r for page in [p async for p in hubspot.changes("deals", None, timedelta(0))] for r in page.records]
        assert len(deals) == 40
        # A list leaves a deal's associations and lines out, and says so; `get_many` reads them.
        assert deals[0].missing == {"associations.contacts", "associations.companies", "line_items"}
        deal = (await hubspot.get_many("deals", [deals[0].id]))[deals[0].id]
        assert not deal.missing
        assert isinstance(deal.fields["amount"], Decimal)
        assert deal.fields["associations.contacts"] in expected
        lines = deal.fields["line_items"]
        assert isinstance(lines, list) and lines
        assert set(lines[0]) == {"id", "name", "quantity", "price", "amount"}
        assert isinstance(lines[0]["quantity"], Decimal)
        assert deal.modified_at.tzinfo is not None


async def test_read_while_records_change_with_faults_skips_nothing(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    await control["hubspot"].post("seed", {"contacts": 900, "seed": 5})
    before = sorted(await live_ids(control["hubspot"], "contacts"))
    # Short windows so that a 429's Retry-After (the window's reset) is short too.
    await control["hubspot"].post("limits", {"window_s": 1, "window_max": 10_000})
    await control["hubspot"].post(
        "faults", {"error_rate": 0.1, "rate_limit_rate": 0.05, "latency_ms": [0, 5]}
    )
    rng = random.Random(1)
    async with hubspot_connector(reset_sandbox) as reader, hubspot_connector(reset_sandbox, "writer") as writer:
        stop = asyncio.Event()

        async def keep_modifying() -> None:
            # Touch records already read and not yet read, so that ordering shifts under the reader.
            n = 0
            while not stop.is_set():
                chosen = rng.sample(before, 20)
                # The writer only stirs the data under the reader; its own calls may run out of retries
                # under these fault rates, which is not what this test is about.
                with contextlib.suppress(RetryableError):
                    await writer.update_many("contacts", [Update(i, {"jobtitle": f"t{n}"}) for i in chosen])
                n += 1

        modifier = asyncio.create_task(keep_modifying())
        try:
            seen = [r.id async for page in reader.changes("contacts", LONG_AGO, timedelta(0)) for r in page.records]
        finally:
            stop.set()
            await modifier
    assert set(before) <= set(seen)


async def test_creates_are_idempotent_under_timeouts_and_errors(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    await control["hubspot"].post("faults", {"timeout_rate": 0.2, "error_rate": 0.1, "timeout_s": 0.6})
    items = [Create(f"ref-{i}", {"email": f"person{i}@example.com", "firstname": f"P{i}"}) for i in range(150)]
    async with hubspot_connector(reset_sandbox, timeout_s=0.3) as hubspot:
        outcomes = await hubspot.create_many("contacts", items)
        again = await hubspot.create_many("contacts", items[:10])
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    assert all(o.existed for o in again)
    assert [o.id for o in again] == [o.id for o in outcomes[:10]]
    await control["hubspot"].post("faults", {})
    listing = await control["hubspot"].get("records/contacts")
    refs = [r["properties"].get("syncd_ref") for r in listing["records"] if not r["archived"]]
    assert sorted(refs) == sorted(i.reference for i in items)  # each exactly once


async def test_duplicate_email_is_a_typed_error_naming_the_existing_record(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        first = await hubspot.create_many("contacts", [Create("a", {"email": "ann@example.com"})])
        outcomes = await hubspot.create_many("contacts", [
            Create("b", {"email": "ANN@example.com", "firstname": "Dup"}),
            Create("c", {"email": "carl@example.com"}),
        ])
    assert isinstance(outcomes[0].error, DuplicateError)
    assert outcomes[0].error.existing_id == first[0].id
    assert outcomes[0].error.record == "b"
    assert outcomes[1].ok


async def test_one_invalid_record_does_not_fail_its_batch(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        outcomes = await hubspot.create_many("deals", [
            Create("d1", {"dealname": "Good", "amount": Decimal("10.50")}),
            Create("d2", {"dealname": "Bad", "dealstage": "not-a-stage"}),
        ])
        assert outcomes[0].ok and not outcomes[1].ok
        assert outcomes[1].error is not None and "not-a-stage" in str(outcomes[1].error)
        updated = await hubspot.update_many("deals", [Update(str(outcomes[0].id), {"amount": Decimal("11")}),
                                                      Update("424242", {"amount": Decimal("1")})])
        assert updated[0].ok and isinstance(updated[1].error, NotFoundError)
        got = await hubspot.get_many("deals", [str(outcomes[0].id), "424242"])
        assert list(got) == [outcomes[0].id] and got[str(outcomes[0].id)].fields["amount"] == Decimal("11")


@pytest.mark.parametrize("field", ["email", "firstname"])
async def test_lookups_match_exactly_the_record_with_that_value(reset_sandbox: Sandbox, field: str) -> None:
    tricky = ["o'brien@x.com", "a\\b@x.com", "50%_off@x.com", "x' OR Name != '"]
    emails = ["o'brien@x.com", "a\\b@x.com", "50%_off@x.com", "plain@x.com", "obrien@x.com", "50xyoff@x.com"]
    names = [*tricky, "plain", "obrien"]
    async with hubspot_connector(reset_sandbox) as hubspot:
        created = await hubspot.create_many("contacts", [
            Create(f"r{i}", {"email": email, "firstname": names[i]}) for i, email in enumerate(emails)
        ])
        assert all(o.ok for o in created)
        found = await hubspot.find_by_field("contacts", field, [*tricky, "O'Brien@X.com"])
    expected_index = {name: names.index(name) for name in tricky} if field == "firstname" else {
        value: emails.index(value) for value in tricky[:3]}
    for value in tricky:
        hits = [r.id for r in found[value]]
        want = [created[expected_index[value]].id] if value in expected_index else []
        assert hits == want, (field, value, hits)
    # HubSpot compares e-mail addresses case-insensitively; other text exactly.
    assert [r.id for r in found["O'Brien@X.com"]] == ([created[0].id] if field == "email" else [])


async def test_deletions_list_archived_and_merged_records(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    async with hubspot_connector(reset_sandbox) as hubspot:
        made = await hubspot.create_many("contacts", [Create(f"x{i}", {"email": f"x{i}@x.com"}) for i in range(3)])
        ids = [str(o.id) for o in made]
        assert [o.ok for o in await hubspot.delete_many("contacts", ids[:1])] == [True]
        await hubspot.transport.call("merge", lambda a, t: a.objects_basic.api_client.call_api(
            "/crm/v3/objects/contacts/merge", "POST", header_params={"Content-Type": "application/json"},
            body={"primaryObjectId": ids[1], "objectIdToMerge": ids[2]}, auth_settings=["oauth2"],
            response_types_map={}, _preload_content=False, _request_timeout=t))
        gone = await hubspot.deletions("contacts", start)
    assert gone is not None
    by_id = {d.id: d for d in gone}
    assert set(by_id) == {ids[0], ids[2]}
    assert by_id[ids[2]].merged_into == ids[1] and by_id[ids[0]].merged_into is None


async def test_describe_reports_types_and_the_unique_reference(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        deals = await hubspot.describe("deals")
    assert deals["syncd_ref"].unique
    assert deals["amount"].type == "number"
    assert "closedwon" in deals["dealstage"].options
    assert "associations.contacts" in deals and "line_items" in deals


async def test_deal_writes_carry_their_associations(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        contact = (await hubspot.create_many("contacts", [Create("c", {"email": "c@x.com"})]))[0]
        deal = (await hubspot.create_many("deals", [
            Create("d", {"dealname": "D", "associations.contacts": contact.id})
        ]))[0]
        assert deal.ok
        read = await hubspot.get_many("deals", [str(deal.id)])
    assert read[str(deal.id)].fields["associations.contacts"] == contact.id


@pytest.mark.slow
async def test_reads_past_the_ten_thousand_search_cap(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    await control["hubspot"].post("seed", {"contacts": 10_250, "seed": 9})
    async with hubspot_connector(reset_sandbox) as hubspot:
        ids = [r.id async for page in hubspot.changes("contacts", LONG_AGO, timedelta(0)) for r in page.records]
    assert len(ids) == len(set(ids)) == 10_250


async def associate_line(hubspot: HubSpotConnector, deal: str, line: str) -> None:
    """Put a line item on a deal as a HubSpot user would (associations v4, default type)."""
    path = f"/crm/v4/objects/deals/{deal}/associations/default/line_items/{line}"
    await hubspot.transport.call("associate", lambda a, t: a.objects_basic.api_client.call_api(
        path, "PUT", header_params={"Content-Type": "application/json"}, auth_settings=["oauth2"],
        response_types_map={}, _preload_content=False, _request_timeout=t))


async def deal_with_lines(hubspot: HubSpotConnector, name: str, quantities: list[int]) -> tuple[str, list[str]]:
    """A deal with one line item per quantity (price 10 each); returns the deal id and the line ids."""
    [deal] = await hubspot.create_many("deals", [Create(f"deal-{name}", {"dealname": name})])
    made = await hubspot.create_many("line_items", [
        Create(f"line-{name}-{i}", {"name": f"{name} {i}", "quantity": Decimal(q), "price": Decimal(10)})
        for i, q in enumerate(quantities)
    ])
    assert deal.ok and all(m.ok for m in made)
    lines = [str(m.id) for m in made]
    for line in lines:
        await associate_line(hubspot, str(deal.id), line)
    return str(deal.id), lines


async def quiet_point(hubspot: HubSpotConnector, objects: dict[str, list[str]]) -> datetime:
    """A moment after every given record's last change, once the clock has passed it (HubSpot stamps to the
    millisecond), so that anything changed from now on is later."""
    stamps = [r.modified_at for obj, ids in objects.items() for r in (await hubspot.get_many(obj, ids)).values()]
    moment = max(stamps) + timedelta(milliseconds=1)
    deadline = asyncio.get_running_loop().time() + 3
    while datetime.now(UTC) <= moment:
        assert asyncio.get_running_loop().time() < deadline, "the clock did not move on"
        await asyncio.sleep(0.001)
    return moment


async def test_a_deal_whose_line_item_changed_is_read_with_its_new_lines(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        deal, lines = await deal_with_lines(hubspot, "Seats", [3, 1])
        since = await quiet_point(hubspot, {"deals": [deal], "line_items": lines})
        assert [r.id async for page in hubspot.changes("deals", since, timedelta(0)) for r in page.records] == []

        await hubspot.update_many("line_items", [Update(lines[0], {"quantity": Decimal(5)})])
        pages = [page async for page in hubspot.changes("deals", since, timedelta(0))]
        [read] = [r for page in pages for r in page.records]
        # The deal itself did not change: it comes stamped with its line's change, its lines left to get_many.
        assert read.id == deal and read.modified_at >= since and "line_items" in read.missing
        read = (await hubspot.get_many("deals", [deal]))[deal]
        items = read.fields["line_items"]
        assert isinstance(items, list)
        assert sorted((i["id"], i["quantity"], i["amount"]) for i in items) == sorted([
            (lines[0], Decimal(5), Decimal(50)), (lines[1], Decimal(1), Decimal(10))])
        assert pages[-1].cursor >= since

        # The deal and one of its lines both changed: the deal comes once, with the line's new value.
        await hubspot.update_many("line_items", [Update(lines[1], {"quantity": Decimal(2)})])
        await hubspot.update_many("deals", [Update(deal, {"dealname": "Seats and more"})])
        both = [r async for page in hubspot.changes("deals", since, timedelta(0)) for r in page.records]
        assert [r.id for r in both] == [deal]
        assert both[0].fields["dealname"] == "Seats and more"
        both_items = (await hubspot.get_many("deals", [deal]))[deal].fields["line_items"]
        assert isinstance(both_items, list)
        assert {i["id"]: i["quantity"] for i in both_items} == {lines[0]: Decimal(5), lines[1]: Decimal(2)}


async def test_no_deal_page_cursor_passes_a_line_change_not_yet_read(reset_sandbox: Sandbox) -> None:
    async with hubspot_connector(reset_sandbox) as hubspot:
        quiet, quiet_lines = await deal_with_lines(hubspot, "Quiet", [1])
        busy, busy_lines = await deal_with_lines(hubspot, "Busy", [1])
        since = await quiet_point(hubspot, {"deals": [quiet, busy], "line_items": [*quiet_lines, *busy_lines]})
        # The quiet deal's line changes first, then the busy deal itself: the busy deal's page comes first,
        # and committing its cursor must not lose the quiet deal's line change if the read stops there.
        await hubspot.update_many("line_items", [Update(quiet_lines[0], {"quantity": Decimal(4)})])
        [line_edit] = (await hubspot.get_many("line_items", quiet_lines)).values()
        await quiet_point(hubspot, {"line_items": quiet_lines})
        await hubspot.update_many("deals", [Update(busy, {"dealname": "Busier"})])
        pages = [page async for page in hubspot.changes("deals", since, timedelta(0))]
    assert [[r.id for r in page.records] for page in pages] == [[busy], [quiet]]
    assert pages[0].cursor <= line_edit.modified_at
    assert pages[-1].cursor >= line_edit.modified_at
    assert [p.cursor for p in pages] == sorted(p.cursor for p in pages)
