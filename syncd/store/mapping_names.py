"""Mapping names in the store: which names own links, and moving everything kept under one name to another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StoreConflictError, StoreNotFoundError
from syncd.store.tables import CONFLICT, CURSOR, DEAD_LETTER, LINK


@dataclass(frozen=True)
class LinkOwner:
    """A mapping name that owns links of one object between two systems, and how many."""

    mapping: str
    object: str
    crm_system: str
    acc_system: str
    links: int


@dataclass(frozen=True)
class RenameCounts:
    """What `MappingNames.rename` moved to the new name."""

    links: int
    conflicts: int  # travel with their links (they key on the link, not the name): counted, not updated
    cursors: int
    dead_letters: int

    @property
    def total(self) -> int:
        """Rows kept under the name, conflicts included."""
        return self.links + self.conflicts + self.cursors + self.dead_letters


def _cursor_prefix(mapping: str) -> str:
    # Cursor keys are `mapping:object:system_object` (see the engine's `cursor_key`); names hold no colon.
    return f"{mapping}:"


def _cursor_of(mapping: str) -> ColumnElement[bool]:
    """Cursors kept under `mapping`: compared by prefix with substr, because LIKE would read `_` as a wildcard."""
    prefix = _cursor_prefix(mapping)
    return func.substr(CURSOR.c.object, 1, len(prefix)) == prefix


class MappingNames:
    """The names links, cursors and dead letters are kept under, and the one way to change a name."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def link_owners(self, *, session: AsyncSession | None = None) -> list[LinkOwner]:
        """Every (mapping, object, systems) that has links, with their count."""
        stmt = (
            select(LINK.c.mapping, LINK.c.object, LINK.c.crm_system, LINK.c.acc_system, func.count())
            .group_by(LINK.c.mapping, LINK.c.object, LINK.c.crm_system, LINK.c.acc_system)
            .order_by(LINK.c.mapping, LINK.c.object)
        )
        async with self._db.scope(session) as s:
            return [LinkOwner(*row) for row in (await s.execute(stmt)).all()]

    async def owned(self, mapping: str, *, session: AsyncSession | None = None) -> RenameCounts:
        """How many links (and their conflicts), cursors and dead letters are kept under `mapping`."""
        links = select(func.count()).select_from(LINK).where(LINK.c.mapping == mapping)
        conflicts = (
            select(func.count())
            .select_from(CONFLICT.join(LINK, CONFLICT.c.link_id == LINK.c.id))
            .where(LINK.c.mapping == mapping)
        )
        cursors = select(func.count()).select_from(CURSOR).where(_cursor_of(mapping))
        letters = select(func.count()).select_from(DEAD_LETTER).where(DEAD_LETTER.c.mapping == mapping)
        async with self._db.scope(session) as s:
            counts = [int((await s.execute(stmt)).scalar_one()) for stmt in (links, conflicts, cursors, letters)]
        return RenameCounts(*counts)

    async def rename(self, old: str, new: str) -> RenameCounts:
        """Move every link (with its conflicts), cursor and dead letter from `old` to `new` in one transaction.

        Refused, with nothing changed, when `new` already owns any of them (`StoreConflictError`: merging two
        mappings' links is not a rename) or `old` owns none (`StoreNotFoundError`).
        """
        if old == new:
            raise StoreConflictError(f"mapping {old!r} already has that name")
        async with self._db.transaction() as s:
            taken = await self.owned(new, session=s)
            if taken.total:
                raise StoreConflictError(
                    f"mapping {new!r} already owns {describe_counts(taken)}: a rename would mix two mappings' links; "
                    "nothing was changed"
                )
            moving = await self.owned(old, session=s)
            if not moving.total:
                raise StoreNotFoundError(f"the store keeps nothing under mapping {old!r}; nothing was changed")
            now = utcnow()
            # The version moves too: a writer still holding a link read under the old name must re-read it.
            links = update(LINK).where(LINK.c.mapping == old).values(
                mapping=new, version=LINK.c.version + 1, updated_at=now
            )
            letters = update(DEAD_LETTER).where(DEAD_LETTER.c.mapping == old).values(mapping=new, updated_at=now)
            prefix = _cursor_prefix(old)
            cursors = (
                update(CURSOR)
                .where(_cursor_of(old))
                .values(object=literal(_cursor_prefix(new)) + func.substr(CURSOR.c.object, len(prefix) + 1))
            )
            moved = [cast(CursorResult[Any], await s.execute(stmt)).rowcount for stmt in (links, cursors, letters)]
        return RenameCounts(links=moved[0], conflicts=moving.conflicts, cursors=moved[1], dead_letters=moved[2])


def describe_counts(counts: RenameCounts) -> str:
    """The non-zero counts as an operator reads them (`12 links, 2 cursors`), or `nothing`."""
    parts = [
        f"{n} {label}{'s' if n != 1 else ''}"
        for n, label in (
            (counts.links, "link"),
            (counts.conflicts, "conflict"),
            (counts.cursors, "cursor"),
            (counts.dead_letters, "dead letter"),
        )
        if n
    ]
    return ", ".join(parts) or "nothing"
