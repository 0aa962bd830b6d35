"""The review read model on SQLite and PostgreSQL: conflicts with their links and names, counts for the gauges,
one field resolved at once, and dead letters made due or found since a mark."""

from __future__ import annotations

from datetime import timedelta

from syncd.store import ConflictStore, Database, DeadLetterStore, LinkStore
from syncd.store.columns import utcnow
from syncd.store.review import ConflictQuery, ReviewStore, shown


async def linked(db: Database, obj: str, crm_id: str, base: dict[str, object]) -> int:
    links = LinkStore(db)
    pending = await links.intend("hubspot-zohobooks", obj, "hubspot", crm_id, "zohobooks", f"Z{crm_id}", f"r{crm_id}")
    return (await links.bind(pending.id, base=base)).id


async def test_counts_filters_and_a_whole_field_resolved_in_one_go(database: Database) -> None:
    conflicts, review = ConflictStore(database), ReviewStore(database)
    ann = await linked(database, "customer", "1", {"first_name": "Ann", "last_name": "Lee", "email": "a@x.com"})
    bo = await linked(database, "customer", "2", {"company": "Bo & Co"})
    bill = await linked(database, "invoice", "3", {"invoice_number": "INV-7"})
    mark = await review.high_water_marks()
    one = await conflicts.open_conflict(ann, "phone", "1", "2", "3", detected_at=utcnow() - timedelta(days=2))
    two = await conflicts.open_conflict(bo, "phone", "1", "4", "5")
    await conflicts.open_conflict(bill, "total", {"$dec": "10.00"}, {"$dec": "12.00"}, {"$dec": "11.50"})
    assert await conflicts.open_counts() == {
        ("hubspot-zohobooks", "customer", "phone"): 2, ("hubspot-zohobooks", "invoice", "total"): 1}
    old = await review.cases(ConflictQuery(detected_before=utcnow() - timedelta(days=1)))
    assert [(c.conflict.id, c.record) for c in old] == [(one.id, "Ann Lee <a@x.com>")]
    assert [c.record for c in await review.cases_after(mark[0])] == ["Ann Lee <a@x.com>", "Bo & Co", "invoice INV-7"]
    done = await review.resolve_field("hubspot-zohobooks", "customer", "phone", "accounting", by="ops")
    assert {(c.id, c.resolved_value) for c in done} == {(one.id, "3"), (two.id, "5")}
    assert await conflicts.open_counts() == {("hubspot-zohobooks", "invoice", "total"): 1}
    history = await review.cases(ConflictQuery(status="resolved", order="resolved"))
    assert {c.conflict.resolved_by for c in history} == {"ops"}


async def test_a_dead_letter_is_made_due_and_counted(database: Database) -> None:
    letters, review = DeadLetterStore(database), ReviewStore(database)
    _, mark = await review.high_water_marks()
    held = await letters.park("books", "hubspot-zohobooks", "customer", "crm", "1", "refused", next_attempt_at=None)
    assert await letters.due() == [] and await review.dead_letter_counts() == {("hubspot-zohobooks", "customer"): 1}
    assert (await review.retry_dead_letter(held.id)).next_attempt_at is not None
    assert [d.id for d in await letters.due()] == [held.id]
    assert [d.id for d in await review.dead_letters_after(mark)] == [held.id]


def test_values_and_records_in_words() -> None:
    assert [shown(v) for v in (None, "", {"$dec": "10.50"}, {"$date": "2024-06-30"}, True, 5)] == [
        "(empty)", "(empty)", "10.50", "2024-06-30", "yes", "5"]
