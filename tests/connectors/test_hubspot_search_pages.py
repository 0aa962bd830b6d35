"""HubSpot change search: one search pages through up to the 10,000 cap, each page two rows into the one before,
so re-listing the contacts of an overlap window costs about one call per 200 of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.connectors.base import Update
from syncd.sandbox.runner import Sandbox
from tests.connectors.conftest import ControlPlane
from tests.connectors.hubspot_fixtures import hubspot_connector

SEARCH = "POST /crm/v3/objects/{object_type}/search"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def searches(control: ControlPlane) -> int:
    """Search calls HubSpot has served so far."""
    return int((await control.get("stats"))["requests"].get(SEARCH, 0))


async def test_a_change_search_lists_its_window_in_pages_of_almost_200(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    hubspot_control = control["hubspot"]
    await hubspot_control.post("seed", {"contacts": 990, "seed": 3})
    await hubspot_control.post("limits", {"window_max": 100_000, "search_per_s": 1_000})
    async with hubspot_connector(reset_sandbox) as hubspot:
        before = await searches(hubspot_control)
        ids = [r.id async for page in hubspot.changes("contacts", LONG_AGO, timedelta(0)) for r in page.records]
        calls = await searches(hubspot_control) - before
    assert len(ids) == len(set(ids)) == 990
    # Offsets 0, 198, 396, 594 and 792 (the last page short): 5 = ceil(990 / 200). A new search from the last
    # stamp for every page, as before, re-listed the records sharing that millisecond each time.
    assert calls == 5


async def test_a_search_that_knows_its_window_reads_it_from_the_far_end_at_the_minimum(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    hubspot_control = control["hubspot"]
    await hubspot_control.post("seed", {"contacts": 1_000, "seed": 5})
    await hubspot_control.post("limits", {"window_max": 100_000, "search_per_s": 1_000})
    async with hubspot_connector(reset_sandbox) as hubspot:
        before = await searches(hubspot_control)
        pages = [page async for page in hubspot.changes("contacts", LONG_AGO, timedelta(0), 1_000)]
        calls = await searches(hubspot_control) - before
    ids = [r.id for page in pages for r in page.records]
    assert len(ids) == len(set(ids)) == 1_000
    # Offsets 800, 600, 400, 200 and 0, with no overlap: the 5 that pages of 200 allow (6 read upwards, each
    # page holding a row of the one before; 5 only while the window is not a whole number of pages).
    assert calls == 5
    assert all(page.cursor == LONG_AGO for page in pages[:-2]), "the cursor holds until offset 0 is read"


async def test_contacts_archived_and_edited_while_read_downward_skip_nothing(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    hubspot_control = control["hubspot"]
    await hubspot_control.post("seed", {"contacts": 1_000, "seed": 6})
    await hubspot_control.post("limits", {"window_max": 100_000, "search_per_s": 1_000})
    async with hubspot_connector(reset_sandbox) as hubspot:
        order = [r.id async for page in hubspot.changes("contacts", LONG_AGO, timedelta(0)) for r in page.records]
        # After two pages (offsets 800 and 600): seven archived below them (everything above moves down seven
        # places, rows already read into pages still to read), five edited there and three on the top page.
        gone, edited = order[100:107], order[50:55] + order[990:993]
        seen: set[str] = set()
        handed = 0
        cursor = LONG_AGO
        before = await searches(hubspot_control)
        async for page in hubspot.changes("contacts", LONG_AGO, timedelta(0), 1_000):
            seen.update(r.id for r in page.records)
            cursor = page.cursor
            handed += 1
            if handed == 2:
                assert all(o.ok for o in await hubspot.delete_many("contacts", gone))
                outcomes = await hubspot.update_many("contacts", [Update(i, {"jobtitle": "Edited"}) for i in edited])
                assert all(o.ok for o in outcomes)
        calls = await searches(hubspot_control) - before
        after = {r.id async for page in hubspot.changes("contacts", cursor, timedelta(0)) for r in page.records}
    unchanged = set(order) - set(gone) - set(edited)
    assert unchanged <= seen, "no contact the churn did not touch is skipped"
    assert calls == 5, "the archived pull read rows down into pages still to read: no call more"
    assert set(edited) <= seen | after, "the edits are read by this pass or, from its cursor, by the next"
