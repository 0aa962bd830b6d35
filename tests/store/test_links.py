"""The link table: intents, binding, and the rules that make two links for one record impossible."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd.store import (
    ConflictStore,
    CursorStore,
    Database,
    LinkStore,
    StaleVersionError,
    StoreConflictError,
    StoreNotFoundError,
)

M, OBJ = "hubspot-zoho", "contact"


async def _linked(links: LinkStore, crm_id: str, acc_id: str) -> int:
    pending = await links.intend(M, OBJ, "hubspot", crm_id, "zohobooks", None, f"ref-{crm_id}")
    bound = await links.bind(pending.id, acc_id=acc_id, base={"email": f"{crm_id}@example.com"})
    return bound.id


async def test_intend_is_idempotent_on_reference(database: Database) -> None:
    links = LinkStore(database)
    first = await links.intend(M, OBJ, "hubspot", "101", "zohobooks", None, "syncd-contact-101")
    again = await links.intend(M, OBJ, "hubspot", "101", "zohobooks", None, "syncd-contact-101")
    assert again.id == first.id and again.state == "pending" and again.acc_id is None
    assert [link.id for link in await links.pending()] == [first.id]
    assert (await links.lookup_reference(M, OBJ, "syncd-contact-101")) == first


async def test_bind_links_the_new_side_and_stores_base(database: Database) -> None:
    links = LinkStore(database)
    pending = await links.intend(M, OBJ, "hubspot", "101", "zohobooks", None, "ref-101")
    synced = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    bound = await links.bind(pending.id, acc_id="Z-9", base={"email": "a@example.com", "n": 1}, synced_at=synced)
    assert bound.state == "linked" and bound.acc_id == "Z-9" and bound.version == pending.version + 1
    assert bound.base == {"email": "a@example.com", "n": 1}
    assert bound.last_synced_at == synced
    assert await links.lookup_acc(M, OBJ, "zohobooks", "Z-9") == bound
    assert await links.lookup_crm(M, OBJ, "hubspot", "101") == bound
    assert await links.pending() == []


async def test_one_crm_record_cannot_get_a_second_link(database: Database) -> None:
    links = LinkStore(database)
    await _linked(links, "101", "Z-1")
    with pytest.raises(StoreConflictError):
        await links.intend(M, OBJ, "hubspot", "101", "zohobooks", None, "another-reference")
    assert len(await links.list()) == 1


async def test_one_accounting_record_cannot_be_bound_twice(database: Database) -> None:
    links = LinkStore(database)
    await _linked(links, "101", "Z-1")
    other = await links.intend(M, OBJ, "hubspot", "102", "zohobooks", None, "ref-102")
    with pytest.raises(StoreConflictError):
        await links.bind(other.id, acc_id="Z-1", base={})
    assert (await links.get(other.id)).state == "pending"


async def test_same_ids_under_another_mapping_or_object_are_separate(database: Database) -> None:
    links = LinkStore(database)
    await _linked(links, "101", "Z-1")
    deal = await links.intend(M, "deal", "hubspot", "101", "zohobooks", "Z-1", "deal-101")
    assert deal.object == "deal"


async def test_update_base_refuses_a_stale_version(database: Database) -> None:
    links = LinkStore(database)
    link = await links.get(await _linked(links, "101", "Z-1"))
    moved = await links.update_base(link.id, {"email": "new@example.com"}, expected_version=link.version)
    with pytest.raises(StaleVersionError, match=f"version {moved.version}"):
        await links.update_base(link.id, {"email": "lost@example.com"}, expected_version=link.version)
    assert (await links.get(link.id)).base == {"email": "new@example.com"}


async def test_move_follows_a_merge_and_merges_links_that_collide(database: Database) -> None:
    links = LinkStore(database)
    a = await _linked(links, "101", "Z-1")
    b = await _linked(links, "102", "Z-2")
    moved = await links.move(a, "crm", "201")
    assert moved.id == a and moved.crm_id == "201"
    assert await links.lookup_crm(M, OBJ, "hubspot", "101") is None
    # 201 was merged into 102: 102's link survives, the other one is retired.
    survivor = await links.move(a, "crm", "102")
    assert survivor.id == b
    assert (await links.get(a)).state == "deleted"


async def test_mark_deleted_keeps_the_link_and_unbind_removes_it_with_its_conflicts(database: Database) -> None:
    links, conflicts = LinkStore(database), ConflictStore(database)
    link_id = await _linked(links, "101", "Z-1")
    assert (await links.mark_deleted(link_id)).state == "deleted"
    assert (await links.lookup_crm(M, OBJ, "hubspot", "101")) is not None
    await conflicts.open_conflict(link_id, "email", "a", "b", "c")
    await links.unbind(link_id)
    assert await links.lookup_crm(M, OBJ, "hubspot", "101") is None
    assert await conflicts.list(status=None) == []
    with pytest.raises(StoreNotFoundError):
        await links.unbind(link_id)


async def test_list_filters_and_pages(database: Database) -> None:
    links = LinkStore(database)
    for n in range(5):
        await _linked(links, str(n), f"Z-{n}")
    await links.intend(M, "deal", "hubspot", "d1", "zohobooks", None, "deal-1")
    assert len(await links.list(object=OBJ)) == 5
    assert [link.crm_id for link in await links.list(object=OBJ, limit=2, offset=1)] == ["1", "2"]
    assert [link.object for link in await links.list(state="pending")] == ["deal"]
    assert await links.list(mapping="other") == []


async def test_link_and_cursor_commit_together_or_not_at_all(database: Database) -> None:
    links, cursors = LinkStore(database), CursorStore(database)
    link = await links.get(await _linked(links, "101", "Z-1"))
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await links.update_base(link.id, {"email": "x"}, link.version, session=session)
            await cursors.set("hubspot", OBJ, "2026-01-01T00:00:00Z", session=session)
            raise RuntimeError("write failed before commit")
    assert (await links.get(link.id)).base == link.base
    assert await cursors.get("hubspot", OBJ) is None
    async with database.transaction() as session:
        await links.update_base(link.id, {"email": "x"}, link.version, session=session)
        await cursors.set("hubspot", OBJ, "2026-01-01T00:00:00Z", session=session)
    assert (await links.get(link.id)).base == {"email": "x"}
    assert await cursors.get("hubspot", OBJ) == "2026-01-01T00:00:00Z"


async def test_count_seen_since_counts_one_side_of_one_mapping_from_a_moment(database: Database) -> None:
    links = LinkStore(database)
    ids = [await _linked(links, str(100 + n), f"Z-{n}") for n in range(5)]
    other = await links.intend("salesforce-zoho", OBJ, "salesforce", "001", "zohobooks", None, "ref-sf")
    await links.bind(other.id, acc_id="Z-0", base={})
    at = [datetime(2026, 3, 1, 12, 0, n, tzinfo=UTC) for n in range(5)]
    # The Zoho side seen at 12:00:00..04; the HubSpot side much earlier.
    await links.mark_seen([(i, "accounting", t) for i, t in zip(ids, at, strict=True)])
    await links.mark_seen([(i, "crm", datetime(2025, 1, 1, tzinfo=UTC)) for i in ids])
    await links.mark_seen([(other.id, "accounting", at[4])])
    assert await links.count_seen_since(M, OBJ, "accounting", "zohobooks", at[2]) == 3
    assert await links.count_seen_since(M, OBJ, "accounting", "zohobooks", at[0]) == 5
    assert await links.count_seen_since(M, OBJ, "crm", "hubspot", at[0]) == 0, "seen before the moment"
    assert await links.count_seen_since(M, OBJ, "accounting", "xero", at[0]) == 0
    # A stamp too fresh to keep (None) counts by when the link was synced.
    fresh = await links.intend(M, OBJ, "hubspot", "200", "zohobooks", None, "ref-200")
    await links.bind(fresh.id, acc_id="Z-200", base={}, synced_at=at[3])
    assert await links.count_seen_since(M, OBJ, "accounting", "zohobooks", at[2]) == 4
    assert await links.count_seen_since(M, OBJ, "accounting", "zohobooks", at[4]) == 1
