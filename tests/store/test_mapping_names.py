"""Mapping names in the store: who owns which links, and a rename that moves everything or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syncd.store import (
    ConflictStore,
    CursorStore,
    Database,
    DeadLetterStore,
    LinkStore,
    StoreConflictError,
    StoreNotFoundError,
)
from syncd.store.mapping_names import LinkOwner, MappingNames, RenameCounts

OLD, NEW = "hubspot-zohobooks", "hubspot_zoho.v2"
# A name that is a prefix of another, and one whose `_` a LIKE pattern would take for any character.
NEIGHBOURS = ("hubspot-zohobooks-eu", "hubspot_zohobooks")


async def _history(db: Database, mapping: str, crm_ids: list[str]) -> list[int]:
    """Linked customers with a conflict on the first, two cursors and a dead letter, all under `mapping`."""
    links = LinkStore(db)
    ids = []
    for crm_id in crm_ids:
        pending = await links.intend(mapping, "customer", "hubspot", crm_id, "zohobooks", None, f"ref-{crm_id}")
        ids.append((await links.bind(pending.id, acc_id=f"Z{crm_id}", base={"email": f"{crm_id}@x.com"})).id)
    await ConflictStore(db).open_conflict(ids[0], "phone", "1", "2", "3")
    cursors = CursorStore(db)
    await cursors.set("hubs", f"{mapping}:customer:contacts", "2026-01-01T00:00:00+00:00")
    await cursors.set("zoho", f"{mapping}:customer:contacts", "2026-01-02T00:00:00+00:00")
    await DeadLetterStore(db).park(
        "hubs", mapping, "customer", "crm", f"{crm_ids[0]}9", "duplicate",
        next_attempt_at=datetime.now(UTC) + timedelta(minutes=1),
    )  # fmt: skip
    return ids


async def test_link_owners_are_counted_per_mapping_object_and_systems(database: Database) -> None:
    await _history(database, OLD, ["1", "2"])
    await _history(database, "salesforce-zohobooks", ["3"])
    assert await MappingNames(database).link_owners() == [
        LinkOwner(OLD, "customer", "hubspot", "zohobooks", 2),
        LinkOwner("salesforce-zohobooks", "customer", "hubspot", "zohobooks", 1),
    ]


async def test_rename_moves_links_conflicts_cursors_and_dead_letters_and_nothing_else(database: Database) -> None:
    ids = await _history(database, OLD, ["1", "2"])
    for neighbour, crm_id in zip(NEIGHBOURS, ("7", "8"), strict=True):
        await _history(database, neighbour, [crm_id])
    names = MappingNames(database)
    moved = await names.rename(OLD, NEW)
    assert moved == RenameCounts(links=2, conflicts=1, cursors=2, dead_letters=1)
    links = LinkStore(database)
    assert [link.id for link in await links.list(mapping=NEW)] == ids
    assert await links.list(mapping=OLD) == []
    assert (await links.lookup_crm(NEW, "customer", "hubspot", "1")) is not None
    [conflict] = await ConflictStore(database).list("open", ids[0])
    assert (await links.get(conflict.link_id)).mapping == NEW
    cursors = CursorStore(database)
    assert await cursors.get("hubs", f"{NEW}:customer:contacts") == "2026-01-01T00:00:00+00:00"
    assert await cursors.get("zoho", f"{NEW}:customer:contacts") == "2026-01-02T00:00:00+00:00"
    assert await cursors.get("hubs", f"{OLD}:customer:contacts") is None
    [letter] = await DeadLetterStore(database).list(mapping=NEW)
    assert letter.record_id == "19"
    # The neighbours kept everything.
    for neighbour in NEIGHBOURS:
        assert await names.owned(neighbour) == RenameCounts(links=1, conflicts=1, cursors=2, dead_letters=1)


async def test_rename_onto_a_name_that_owns_rows_changes_nothing(database: Database) -> None:
    await _history(database, OLD, ["1"])
    await CursorStore(database).set("hubs", f"{NEW}:customer:contacts", "2026-03-01T00:00:00+00:00")
    names = MappingNames(database)
    with pytest.raises(StoreConflictError, match="already owns 1 cursor"):
        await names.rename(OLD, NEW)
    assert await names.owned(OLD) == RenameCounts(links=1, conflicts=1, cursors=2, dead_letters=1)
    assert await names.owned(NEW) == RenameCounts(links=0, conflicts=0, cursors=1, dead_letters=0)


async def test_rename_of_an_unknown_name_is_refused(database: Database) -> None:
    with pytest.raises(StoreNotFoundError, match="nothing under mapping 'nobody'"):
        await MappingNames(database).rename("nobody", NEW)
