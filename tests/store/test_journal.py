"""The write journal on SQLite and PostgreSQL: rows opened pending in one statement, in order; completed,
discarded or resolved only while pending; listed per mapping; shown by the audit log with their status; and
owned by their writer, so that only rows whose writer is gone (finished, failed, or its process killed) are
orphaned for a later pass to resolve, never those of a writer still running, in this process or another."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from syncd.store import AuditLog, JournalEntry, WriteJournal
from syncd.store.database import Database
from syncd.store.owners import new_token, owner_locks
from syncd.store.tables import AUDIT

ROOT = Path(__file__).resolve().parents[2]


def entry(record_id: str, mapping: str = "hubspot-zohobooks", city: str = "Cambridge") -> JournalEntry:
    """A journalled update of a Zoho Books customer's city."""
    return JournalEntry(
        "zohobooks", "contacts", record_id, {"billing_address.city": "Boston"}, {"billing_address.city": city},
        f"{mapping}:customers: from hubspot contacts 1", link_id=7, base_change={"city": ["Boston", city]},
    )  # fmt: skip


async def test_rows_open_pending_in_order_and_complete_or_drop_at_commit(database: Database) -> None:
    journal, audit = WriteJournal(database), AuditLog(database)
    async with journal.owning() as owner:
        ids = await journal.open_many([entry(str(n), city=f"City {n}") for n in range(250)], owner=owner)
    assert len(ids) == 250
    pending = await journal.pending("hubspot-zohobooks")
    assert [w.id for w in pending] == ids
    # Returned in the order given: each id is the row of its own entry.
    assert [w.entry.record_id for w in pending] == [str(n) for n in range(250)]
    assert pending[3].entry.base_change == {"city": ["Boston", "City 3"]} and pending[3].entry.link_id == 7
    async with database.transaction() as session:
        await journal.complete(ids[:200], session=session)
        await journal.discard(ids[200:], session=session)
    assert await journal.pending("hubspot-zohobooks") == []
    rows = await audit.list(limit=1000)
    assert len(rows) == 200 and {r.status for r in rows} == {"done"}


async def test_pending_rows_are_listed_per_mapping_and_resolved_once(database: Database) -> None:
    journal, audit = WriteJournal(database), AuditLog(database)
    async with journal.owning() as owner:
        [mine, theirs] = await journal.open_many([entry("1"), entry("2", mapping="salesforce-zohobooks")],
                                                 owner=owner)
    assert [w.id for w in await journal.pending("hubspot-zohobooks")] == [mine]
    await journal.resolve(mine, "recovered", "written by a process that stopped")
    await journal.resolve(mine, "unconfirmed", "again")  # resolved already: unchanged
    await journal.complete([mine])
    [row] = await audit.list(record_id="1")
    assert row.status == "recovered"
    assert row.cause == "hubspot-zohobooks:customers: from hubspot contacts 1 (written by a process that stopped)"
    assert [w.id for w in await journal.pending("salesforce-zohobooks")] == [theirs]


async def orphaned_ids(journal: WriteJournal, mapping: str = "hubspot-zohobooks") -> list[int]:
    """The ids of the rows `mapping` left pending whose writer is gone."""
    return [w.id for w in await journal.orphaned(mapping)]


async def test_a_running_writers_rows_are_not_orphaned_until_it_ends(database: Database, database_url: str) -> None:
    journal = WriteJournal(database)
    # Another process on the same store: its own engine, pool and locks.
    elsewhere = await Database.open(database_url)
    try:
        async with journal.owning() as owner:
            rows = await journal.open_many([entry("1"), entry("2")], owner=owner)
            assert [w.owner for w in await journal.pending("hubspot-zohobooks")] == [owner.token] * 2
            # In flight: neither another pass of this process nor another process may resolve them.
            assert await orphaned_ids(WriteJournal(database)) == []
            assert await orphaned_ids(WriteJournal(elsewhere)) == []
        # The writer ended without completing them (a failure before its commit): a later pass's to resolve.
        assert await orphaned_ids(WriteJournal(elsewhere)) == rows
        assert await orphaned_ids(journal) == rows
    finally:
        await elsewhere.close()


async def test_a_row_without_an_owner_is_orphaned(database: Database) -> None:
    # Left pending by a syncd from before owners existed: its writer is long gone.
    async with database.transaction() as session:
        await session.execute(AUDIT.insert().values(
            system="zohobooks", object="contacts", record_id="9", fields_before={}, fields_after={"x": 1},
            cause="hubspot-zohobooks:customers: from hubspot contacts 9", status="pending"))  # fmt: skip
    [row] = await WriteJournal(database).orphaned("hubspot-zohobooks")
    assert row.owner is None and row.entry.record_id == "9"


async def test_an_owner_lock_is_held_once_and_seen_from_another_store_object(
    database: Database, database_url: str
) -> None:
    elsewhere = await Database.open(database_url)
    try:
        mine, theirs, token = owner_locks(database), owner_locks(elsewhere), new_token()
        assert await mine.hold(token)
        assert not await theirs.hold(token)  # a clash: the journal picks another token
        assert await theirs.alive({token, new_token()}) == {token}
        await mine.release(token)
        assert await theirs.alive({token}) == set() and await mine.alive({token}) == set()
    finally:
        await elsewhere.close()


# A writer in its own process: journals one row, says its id, and waits to be killed.
WRITER = """
import asyncio, sys
from syncd.store import Database, JournalEntry, WriteJournal

async def main(url):
    db = await Database.open(url)
    journal = WriteJournal(db)
    async with journal.owning() as owner:
        [row] = await journal.open_many([JournalEntry(
            "zohobooks", "contacts", "7", {"city": "Boston"}, {"city": "Cambridge"},
            "hubspot-zohobooks:customers: from hubspot contacts 7")], owner=owner)
        print(row, flush=True)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1]))
"""


async def test_rows_of_a_killed_process_are_orphaned_once_it_is_gone(database: Database, database_url: str) -> None:
    journal = WriteJournal(database)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, database_url, stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        row = int(await asyncio.wait_for(child.stdout.readline(), timeout=60))  # type: ignore[union-attr]
        assert [w.id for w in await journal.pending("hubspot-zohobooks")] == [row]
        assert await orphaned_ids(journal) == []  # alive, in another process
    finally:
        child.kill()
        await child.wait()
    # SIGKILLed: the kernel dropped its lock file's lock with the process; PostgreSQL drops the session's
    # advisory lock once the server has seen the connection close (which may take it a moment).
    deadline = asyncio.get_running_loop().time() + 10
    while (found := await orphaned_ids(journal)) != [row]:
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.01)
