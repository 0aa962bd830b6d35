"""Conflicts: one open per field, resolutions pick a side or a value, and resolved ones wait to be applied."""

from __future__ import annotations

import pytest

from syncd.store import ConflictStore, Database, LinkStore, StoreConflictError


async def _link(database: Database) -> int:
    links = LinkStore(database)
    pending = await links.intend("m", "contact", "hubspot", "101", "zohobooks", "Z-1", "ref-101")
    return (await links.bind(pending.id, base={"phone": "1"})).id


async def test_one_open_conflict_per_field_refreshed_in_place(database: Database) -> None:
    conflicts = ConflictStore(database)
    link_id = await _link(database)
    first = await conflicts.open_conflict(link_id, "phone", "1", "2", "3")
    again = await conflicts.open_conflict(link_id, "phone", "1", "2b", "3b")
    other = await conflicts.open_conflict(link_id, "email", None, "a@x", "b@x")
    assert again.id == first.id and (again.crm_value, again.acc_value) == ("2b", "3b")
    assert {c.field for c in await conflicts.list()} == {"phone", "email"}
    assert other.base_value is None


@pytest.mark.parametrize(
    ("resolution", "value", "expected"), [("crm", None, "2"), ("accounting", None, "3"), ("value", "4", "4")]
)
async def test_resolution_chooses_the_value(
    database: Database, resolution: str, value: str | None, expected: str
) -> None:
    conflicts = ConflictStore(database)
    opened = await conflicts.open_conflict(await _link(database), "phone", "1", "2", "3")
    resolved = await conflicts.resolve(opened.id, resolution, value, by="alice")  # type: ignore[arg-type]
    assert (resolved.status, resolved.resolved_value, resolved.resolved_by) == ("resolved", expected, "alice")
    assert resolved.resolved_at is not None
    assert await conflicts.list() == []


async def test_resolving_twice_is_refused(database: Database) -> None:
    conflicts = ConflictStore(database)
    opened = await conflicts.open_conflict(await _link(database), "phone", "1", "2", "3")
    await conflicts.resolve(opened.id, "crm", by="alice")
    with pytest.raises(StoreConflictError, match="already resolved"):
        await conflicts.resolve(opened.id, "accounting", by="bob")
    assert (await conflicts.get(opened.id)).resolved_by == "alice"


async def test_a_field_can_conflict_again_after_resolution(database: Database) -> None:
    conflicts = ConflictStore(database)
    link_id = await _link(database)
    first = await conflicts.open_conflict(link_id, "phone", "1", "2", "3")
    await conflicts.resolve(first.id, "crm")
    second = await conflicts.open_conflict(link_id, "phone", "2", "5", "6")
    assert second.id != first.id and second.status == "open"
    assert len(await conflicts.list(status=None, link_id=link_id)) == 2


async def test_resolved_conflicts_wait_until_applied(database: Database) -> None:
    conflicts = ConflictStore(database)
    link_id = await _link(database)
    a = await conflicts.open_conflict(link_id, "phone", "1", "2", "3")
    b = await conflicts.open_conflict(link_id, "email", "x", "y", "z")
    await conflicts.resolve(a.id, "value", "+44 20 7946 0000")
    assert [c.id for c in await conflicts.resolved_unapplied(link_id)] == [a.id]
    assert await conflicts.mark_applied([a.id, b.id]) == 1  # b is still open: not applicable
    assert await conflicts.resolved_unapplied(link_id) == []
    assert (await conflicts.get(a.id)).applied_at is not None


async def test_a_resolution_that_cannot_be_carried_out_reopens_its_conflict(database: Database) -> None:
    conflicts = ConflictStore(database)
    link_id = await _link(database)
    refused = await conflicts.open_conflict(link_id, "customer", "C-1", "C-2", "C-1")
    await conflicts.resolve(refused.id, "value", "C-404", by="alice")
    assert await conflicts.reopen(refused.id) is True
    back = await conflicts.get(refused.id)
    assert (back.status, back.resolution, back.resolved_value, back.resolved_by) == ("open", None, None, None)
    assert await conflicts.reopen(refused.id) is False  # open already
    # An applied resolution stays as it is; so does one whose field has another open conflict.
    await conflicts.resolve(refused.id, "crm", by="bob")
    await conflicts.mark_applied([refused.id])
    assert await conflicts.reopen(refused.id) is False
    older = await conflicts.open_conflict(link_id, "phone", "1", "2", "3")
    await conflicts.resolve(older.id, "crm")
    newer = await conflicts.open_conflict(link_id, "phone", "2", "4", "5")
    assert await conflicts.reopen(older.id) is False
    assert [c.id for c in await conflicts.list(link_id=link_id)] == [newer.id]


async def test_conflict_for_a_missing_link_is_refused(database: Database) -> None:
    with pytest.raises(StoreConflictError):
        await ConflictStore(database).open_conflict(424242, "phone", "1", "2", "3")
