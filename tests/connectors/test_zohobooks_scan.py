"""Zoho Books change scans after a burst: list calls at the minimum that pages of 200 allow, and nothing lost
when records are edited, deleted or share one second while the scan reads them (sandbox on a hand-moved clock)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.connectors.base import Create, Page, Update
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.sandbox.runner import Sandbox
from tests.connectors.zohobooks_fixtures import live, open_zoho

LIST = "GET /books/v3/contacts"
PAGE = 200  # Zoho Books' largest page, the connector's default
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a whole second


class HandClock:
    """The sandbox's clock, moved by the test only."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clock_and_sandbox(tmp_path: Path) -> AsyncIterator[tuple[HandClock, Sandbox]]:
    """Zoho Books alone, on a clock that stands still unless moved."""
    clock = HandClock(T0)
    async with Sandbox.running(workdir=tmp_path, systems=["zohobooks"], clock=clock) as sandbox:
        yield clock, sandbox


async def burst(zoho: ZohoBooksConnector, clock: HandClock, count: int, *, start: float, span_s: float) -> None:
    """`count` contacts created in chunks of 100, the clock moved evenly across `span_s` seconds."""
    chunks = math.ceil(count / 100)
    for chunk in range(chunks):
        clock.now = start + span_s * chunk / chunks
        items = [Create(f"ref-{i}", {"contact_name": f"Burst {i:05d}"})
                 for i in range(chunk * 100, min(count, (chunk + 1) * 100))]  # fmt: skip
        outcomes = await zoho.create_many("contacts", items)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]


def list_calls(sandbox: Sandbox) -> int:
    """List calls Zoho Books has served so far."""
    return int(sandbox.simulator("zohobooks").stats.requests.get(LIST, 0))


async def scan(
    zoho: ZohoBooksConnector, since: datetime, after_page: Callable[[int, Page], Awaitable[None]] | None = None,
    *, expected: int = 0, cursors: list[datetime] | None = None,
) -> dict[str, list[datetime]]:
    """One pass's changes of contacts (no overlap): the stamps each id was read at (and each page's cursor)."""
    seen: dict[str, list[datetime]] = {}
    pages = 0
    async for page in zoho.changes("contacts", since, timedelta(0), expected):
        if cursors is not None:
            cursors.append(page.cursor)
        for record in page.records:
            seen.setdefault(record.id, []).append(record.modified_at)
        pages += 1
        if after_page is not None:
            await after_page(pages, page)
    return seen


BEFORE_BURST = datetime.fromtimestamp(T0 - 10, UTC)


async def test_pass_after_a_burst_in_two_seconds_lists_at_the_minimum(
    clock_and_sandbox: tuple[HandClock, Sandbox],
) -> None:
    clock, sandbox = clock_and_sandbox
    async with open_zoho(sandbox, page_size=PAGE) as zoho:
        await burst(zoho, clock, 1_150, start=T0 + 0.1, span_s=1.8)
        clock.now = T0 + 5
        before = list_calls(sandbox)
        seen = await scan(zoho, BEFORE_BURST)
        calls = list_calls(sandbox) - before
    assert set(seen) == set(live(sandbox, "contacts")) and len(seen) == 1_150
    assert all(len(stamps) == 1 for stamps in seen.values()), "no record handed out twice"
    # ceil(1,150 / 200) = 6: every page after the first repeats two rows of the one before (its anchor), and
    # 200 + 5 x 198 still covers 1,150.
    assert calls == 6 == math.ceil(1_150 / PAGE)


async def test_a_record_edited_mid_read_moves_to_the_end_and_nothing_is_skipped(
    clock_and_sandbox: tuple[HandClock, Sandbox],
) -> None:
    clock, sandbox = clock_and_sandbox
    async with open_zoho(sandbox, page_size=PAGE) as zoho:
        await burst(zoho, clock, 1_000, start=T0 + 0.1, span_s=1.5)
        clock.now = T0 + 5
        edited: list[str] = []

        async def edit(pages: int, page: Page) -> None:
            if pages == 2:
                # Records read on page 1 move to the end of the order: the rest is pulled back past the next
                # page's overlap of two rows.
                edited.extend(r.id for r in page.records[:5])
                clock.now = T0 + 6
                outcomes = await zoho.update_many("contacts", [Update(i, {"notes": "edited"}) for i in edited])
                assert all(o.ok for o in outcomes)

        seen = await scan(zoho, BEFORE_BURST, edit)
    assert set(seen) == set(live(sandbox, "contacts")), "no record skipped"
    assert all(len(set(seen[i])) == 2 for i in edited), "the edits made during the read are read too"


@pytest.mark.parametrize("deleted", [1, 7])
async def test_records_deleted_mid_read_skip_nothing(
    clock_and_sandbox: tuple[HandClock, Sandbox], deleted: int
) -> None:
    clock, sandbox = clock_and_sandbox
    async with open_zoho(sandbox, page_size=PAGE) as zoho:
        await burst(zoho, clock, 1_000, start=T0 + 0.1, span_s=1.5)
        clock.now = T0 + 5
        gone: list[str] = []

        async def delete(pages: int, page: Page) -> None:
            if pages == 2:
                gone.extend(r.id for r in page.records[10 : 10 + deleted])
                outcomes = await zoho.delete_many("contacts", gone)
                assert all(o.ok for o in outcomes)

        before = list_calls(sandbox)
        seen = await scan(zoho, BEFORE_BURST, delete)
        calls = list_calls(sandbox) - before
    assert set(live(sandbox, "contacts")) <= set(seen), "no record skipped"
    assert not set(gone) & set(live(sandbox, "contacts"))
    if deleted == 1:
        # As many as with nothing deleted: pages of 200, 197, 195, 194, 193 and a last one of 192 (39 rows),
        # each page after the first placed two rows before the end of the one before. The minimum is 5.
        assert calls == 6, "one record leaving behind the read is absorbed by the overlap: no extra call"
    else:
        # Seven leaving pull the next page past its overlap: it holds no row already read and is dropped, and
        # the read restarts from the last second read (page 1 by value, then pages placed from it): 3 calls more.
        assert calls == 9, calls


async def test_a_second_holding_many_pages_edited_mid_read_skips_nothing(
    clock_and_sandbox: tuple[HandClock, Sandbox],
) -> None:
    clock, sandbox = clock_and_sandbox
    async with open_zoho(sandbox, page_size=PAGE) as zoho:
        await burst(zoho, clock, 1_000, start=T0 + 0.2, span_s=0.6)  # all in one second: page numbers only
        clock.now = T0 + 5
        changed: list[str] = []

        async def churn(pages: int, page: Page) -> None:
            if pages in (2, 3):
                # One edit and one deletion of records already read, then (page 3) three edits.
                ids = [r.id for r in page.records[: 2 if pages == 2 else 3]]
                clock.now += 1
                if pages == 2:
                    assert (await zoho.delete_many("contacts", ids[:1]))[0].ok
                    ids = ids[1:]
                assert all(o.ok for o in await zoho.update_many("contacts", [Update(i, {"notes": "x"})
                                                                            for i in ids]))  # fmt: skip
                changed.extend(ids)

        before = list_calls(sandbox)
        seen = await scan(zoho, BEFORE_BURST, churn)
        calls = list_calls(sandbox) - before
    assert set(live(sandbox, "contacts")) <= set(seen), "no record skipped"
    assert all(len(set(seen[i])) == 2 for i in changed), "the edits made during the read are read too"
    # 6 without the churn (1,000 rows; 5 at the minimum); the churn after page 3 pulls the next page past its
    # overlap: dropped, and the read restarts from the second before (page 1 by value), 4 calls more.
    assert calls == 10, calls


def burst_ids(sandbox: Sandbox) -> list[str]:
    """The burst's live contacts in the order they were created (their names count up)."""
    rows = live(sandbox, "contacts")
    return sorted((i for i, r in rows.items() if not str(r["contact_name"]).endswith("(2019)")),
                  key=lambda i: str(rows[i]["contact_name"]))  # fmt: skip


async def history(zoho: ZohoBooksConnector, clock: HandClock, count: int) -> None:
    """Contacts from before the pass's window, some sharing the burst's names: not in the changes."""
    clock.now = T0 - 100
    items = [Create(f"old-{i}", {"contact_name": f"Burst {i:05d} (2019)"}) for i in range(count)]
    assert all(o.ok for o in await zoho.create_many("contacts", items))


async def test_a_pass_that_knows_its_records_reads_them_from_the_far_end_at_the_minimum(
    clock_and_sandbox: tuple[HandClock, Sandbox],
) -> None:
    clock, sandbox = clock_and_sandbox
    async with open_zoho(sandbox, page_size=PAGE) as zoho:
        await history(zoho, clock, 40)
        await burst(zoho, clock, 2_000, start=T0 + 0.1, span_s=1.8)
        clock.now = T0 + 5
        before = list_calls(sandbox)
        cursors: list[datetime] = []
        seen = await scan(zoho, BEFORE_BURST, expected=2_000, cursors=cursors)
        calls = list_calls(sandbox) - before
    assert set(seen) == set(burst_ids(sandbox)), "every record of the window, and none from before it"
    assert all(len(stamps) == 1 for stamps in seen.values()), "no record handed out twice"
    # 2,000 rows in pages of 200 with no overlap at all: the 10 the page size allows (anchored pages read
    # upwards need 11, each repeating a row of the one before).
    assert calls == 10 == math.ceil(2_000 / PAGE)
    assert cursors[:-1] == [BEFORE_BURST] * (len(cursors) - 1), "the cursor holds until page 1 is read"
    assert cursors[-1] == datetime.fromtimestamp(T0 + 4, UTC), "then moves to the read's start, less a second"


async def test_records_deleted_and_edited_while_read_downward_skip_nothing(
    clock_and_sandbox: tuple[HandClock, Sandbox],
) -> None:
    clock, sandbox = clock_and_sandbox
    async with open_zoho(sandbox, page_size=PAGE) as zoho:
        await history(zoho, clock, 40)
        await burst(zoho, clock, 2_000, start=T0 + 0.1, span_s=1.8)
        clock.now = T0 + 5
        order = burst_ids(sandbox)
        # After three pages (10, 9 and 8): seven deleted from page 2, not read yet (everything above them moves
        # down seven places, rows already read into pages still to read), five edited from page 1 (they leave
        # for the end of the order) and three edited on the top page, already read.
        gone, edited_unread, edited_read = order[200:207], order[100:105], order[1_990:1_993]

        async def churn(pages: int, page: Page) -> None:
            if pages == 3:
                clock.now = T0 + 6
                assert all(o.ok for o in await zoho.delete_many("contacts", gone))
                assert all(o.ok for o in await zoho.update_many(
                    "contacts", [Update(i, {"notes": "edited"}) for i in edited_unread + edited_read]))

        before = list_calls(sandbox)
        cursors: list[datetime] = []
        seen = await scan(zoho, BEFORE_BURST, churn, expected=2_000, cursors=cursors)
        calls = list_calls(sandbox) - before
        clock.now = T0 + 10
        after = await scan(zoho, cursors[-1])
    unchanged = set(order) - set(gone) - set(edited_unread) - set(edited_read)
    assert unchanged <= set(seen), "no record the churn did not touch is skipped"
    assert calls == 10, "the deletions only pull read rows down into pages still to read: no call more"
    # The edits landed after the read's start: the next pass, from this one's cursor, lists them all.
    assert set(edited_unread + edited_read) <= set(after)
    assert cursors[-1] < datetime.fromtimestamp(T0 + 6, UTC)


@pytest.mark.parametrize(("expected", "calls"), [(2_400, 12), (1_500, 11)])
async def test_a_wrong_estimate_costs_at_most_a_call(
    clock_and_sandbox: tuple[HandClock, Sandbox], expected: int, calls: int
) -> None:
    clock, sandbox = clock_and_sandbox
    async with open_zoho(sandbox, page_size=PAGE) as zoho:
        await burst(zoho, clock, 2_000, start=T0 + 0.1, span_s=1.8)
        clock.now = T0 + 5
        before = list_calls(sandbox)
        seen = await scan(zoho, BEFORE_BURST, expected=expected)
        made = list_calls(sandbox) - before
    assert set(seen) == set(burst_ids(sandbox))
    # Too high: page 12 is empty, and the read starts again from page 1, upwards (11 anchored pages). Too
    # low: pages 8 down to 1, then upwards from page 8's last row: 400 rows in 3 pages placed by anchors.
    assert made == calls, made
