"""The write journal on SQLite and PostgreSQL: rows opened pending in one statement, in order; completed,
discarded or resolved only while pending; listed per mapping; shown by the audit log with their status."""

from __future__ import annotations

from syncd.store import AuditLog, JournalEntry, WriteJournal
from syncd.store.database import Database


def entry(record_id: str, mapping: str = "hubspot-zohobooks", city: str = "Cambridge") -> JournalEntry:
    """A journalled update of a Zoho Books customer's city."""
    return JournalEntry(
        "zohobooks", "contacts", record_id, {"billing_address.city": "Boston"}, {"billing_address.city": city},
        f"{mapping}:customers: from hubspot contacts 1", link_id=7, base_change={"city": ["Boston", city]},
    )  # fmt: skip


async def test_rows_open_pending_in_order_and_complete_or_drop_at_commit(database: Database) -> None:
    journal, audit = WriteJournal(database), AuditLog(database)
    ids = await journal.open_many([entry(str(n), city=f"City {n}") for n in range(250)])
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
    [mine, theirs] = await journal.open_many([entry("1"), entry("2", mapping="salesforce-zohobooks")])
    assert [w.id for w in await journal.pending("hubspot-zohobooks")] == [mine]
    await journal.resolve(mine, "recovered", "written by a process that stopped")
    await journal.resolve(mine, "unconfirmed", "again")  # resolved already: unchanged
    await journal.complete([mine])
    [row] = await audit.list(record_id="1")
    assert row.status == "recovered"
    assert row.cause == "hubspot-zohobooks:customers: from hubspot contacts 1 (written by a process that stopped)"
    assert [w.id for w in await journal.pending("salesforce-zohobooks")] == [theirs]
