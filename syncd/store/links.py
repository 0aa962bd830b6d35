"""The link table's repository: the one binder between a CRM record and an accounting record."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, Row, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StaleVersionError, StoreNotFoundError
from syncd.store.tables import LINK, LinkRow

LinkState = Literal["pending", "linked", "deleted"]
Side = Literal["crm", "accounting"]


@dataclass(frozen=True)
class Link:
    """One CRM record bound to one accounting record, with the field values both held after the last sync."""

    id: int
    mapping: str
    object: str
    crm_system: str
    crm_id: str | None
    acc_system: str
    acc_id: str | None
    state: LinkState
    reference: str
    version: int
    base: dict[str, Any] = field(default_factory=dict)
    last_synced_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    crm_seen_at: datetime | None = None
    acc_seen_at: datetime | None = None

    def seen_at(self, side: Side) -> datetime | None:
        """The modification stamp of `side`'s record when syncd last saw it in step with base."""
        return self.crm_seen_at if side == "crm" else self.acc_seen_at


#: Each side's modification stamp as last seen; a side left out keeps what the link holds.
SeenStamps = Mapping[Side, "datetime | None"]


def _seen_values(seen: SeenStamps | None) -> dict[str, datetime | None]:
    """The link columns that `seen` sets."""
    if not seen:
        return {}
    names = {"crm": "crm_seen_at", "accounting": "acc_seen_at"}
    return {names[side]: stamp for side, stamp in seen.items()}


def _link(row: LinkRow | Row[Any]) -> Link:
    """Copy a row (an ORM object or a plain row of the link table) into a value the engine can keep without a
    session."""
    assert row.id is not None
    return Link(
        id=row.id,
        mapping=row.mapping,
        object=row.object,
        crm_system=row.crm_system,
        crm_id=row.crm_id,
        acc_system=row.acc_system,
        acc_id=row.acc_id,
        state=cast(LinkState, row.state),
        reference=row.reference,
        version=row.version,
        base=dict(row.base),
        last_synced_at=row.last_synced_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        crm_seen_at=row.crm_seen_at,
        acc_seen_at=row.acc_seen_at,
    )


class LinkStore:
    """lookup / intend / bind / unbind: the only ways to read or change links."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, link_id: int, *, session: AsyncSession | None = None) -> Link:
        """The link with this id; `StoreNotFoundError` if there is none."""
        async with self._db.scope(session) as s:
            return _link(await _row(s, link_id))

    async def get_many(
        self, link_ids: Iterable[int], *, session: AsyncSession | None = None
    ) -> dict[int, Link]:
        """The links with these ids, by id (ids that do not exist are left out)."""
        wanted = sorted(set(link_ids))
        found: dict[int, Link] = {}
        async with self._db.scope(session) as s:
            # Chunks keep each IN list well under every backend's limit on bound parameters.
            for start in range(0, len(wanted), 500):
                stmt = select(LinkRow).where(col(LinkRow.id).in_(wanted[start : start + 500]))
                rows = await s.scalars(stmt.execution_options(populate_existing=True))
                found.update((link.id, link) for link in map(_link, rows))
        return found

    async def lookup_crm(
        self, mapping: str, object: str, system: str, record_id: str, *, session: AsyncSession | None = None
    ) -> Link | None:
        """The link holding this CRM record, if any."""
        return await self._find(
            session,
            col(LinkRow.mapping) == mapping,
            col(LinkRow.object) == object,
            col(LinkRow.crm_system) == system,
            col(LinkRow.crm_id) == record_id,
        )

    async def lookup_acc(
        self, mapping: str, object: str, system: str, record_id: str, *, session: AsyncSession | None = None
    ) -> Link | None:
        """The link holding this accounting record, if any."""
        return await self._find(
            session,
            col(LinkRow.mapping) == mapping,
            col(LinkRow.object) == object,
            col(LinkRow.acc_system) == system,
            col(LinkRow.acc_id) == record_id,
        )

    async def lookup_many(
        self,
        mapping: str,
        object: str,
        side: Side,
        system: str,
        record_ids: Sequence[str],
        *,
        session: AsyncSession | None = None,
    ) -> dict[str, Link]:
        """The links holding these records of `side`, by record id (one query per 500 ids)."""
        id_column = col(LinkRow.crm_id) if side == "crm" else col(LinkRow.acc_id)
        system_column = col(LinkRow.crm_system) if side == "crm" else col(LinkRow.acc_system)
        found: dict[str, Link] = {}
        async with self._db.scope(session) as s:
            conditions = (col(LinkRow.mapping) == mapping, col(LinkRow.object) == object, system_column == system)
            for link in await _where_in(s, id_column, record_ids, *conditions):
                record_id = link.crm_id if side == "crm" else link.acc_id
                assert record_id is not None
                found[record_id] = link
        return found

    async def mark_seen(
        self, stamps: Sequence[tuple[int, Side, datetime]], *, session: AsyncSession | None = None
    ) -> None:
        """Record records re-read in step with base at these stamps, in one statement per side; the version
        is left alone, since nothing about the pair changed."""
        async with self._db.scope(session) as s:
            for side, column in (("crm", "crm_seen_at"), ("accounting", "acc_seen_at")):
                rows = [{"link_id": i, "stamp": t} for i, sd, t in stamps if sd == side]
                if rows:
                    stmt = (
                        update(LINK)
                        .where(LINK.c.id == bindparam("link_id"))
                        .values({column: bindparam("stamp")})
                    )
                    await s.execute(stmt, rows)

    async def count_seen_since(
        self, mapping: str, object: str, side: Side, system: str, moment: datetime, *,
        session: AsyncSession | None = None,
    ) -> int:
        """How many linked records of `side` syncd last saw (or wrote) stamped at or after `moment`, counting
        those whose stamp was too fresh to keep (read or written within its precision) by when they were synced."""
        seen = col(LinkRow.crm_seen_at) if side == "crm" else col(LinkRow.acc_seen_at)
        system_column = col(LinkRow.crm_system) if side == "crm" else col(LinkRow.acc_system)
        stmt = select(func.count()).select_from(LinkRow).where(
            col(LinkRow.mapping) == mapping, col(LinkRow.object) == object, system_column == system,
            col(LinkRow.state) == "linked",
            or_(seen >= moment, and_(seen.is_(None), col(LinkRow.last_synced_at) >= moment)),
        )
        async with self._db.scope(session) as s:
            return int((await s.execute(stmt)).scalar_one())

    async def lookup_reference(
        self, mapping: str, object: str, reference: str, *, session: AsyncSession | None = None
    ) -> Link | None:
        """The link created with this deterministic create reference, if any."""
        return await self._find(
            session,
            col(LinkRow.mapping) == mapping,
            col(LinkRow.object) == object,
            col(LinkRow.reference) == reference,
        )

    async def intend(
        self,
        mapping: str,
        object: str,
        crm_system: str,
        crm_id: str | None,
        acc_system: str,
        acc_id: str | None,
        reference: str,
        *,
        session: AsyncSession | None = None,
    ) -> Link:
        """Record the intent to create the missing side: a pending link, idempotent on `reference`.

        Raises `StoreConflictError` if the known side's record is already held by another link.
        """
        now = utcnow()
        stmt = (
            self._db.insert(LINK)
            .values(
                mapping=mapping,
                object=object,
                crm_system=crm_system,
                crm_id=crm_id,
                acc_system=acc_system,
                acc_id=acc_id,
                state="pending",
                base={},
                reference=reference,
                version=1,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["mapping", "object", "reference"])
        )
        async with self._db.scope(session) as s:
            await s.execute(stmt)
            found = await self._find(
                s,
                col(LinkRow.mapping) == mapping,
                col(LinkRow.object) == object,
                col(LinkRow.reference) == reference,
            )
        assert found is not None  # inserted or already there, within this transaction
        return found

    async def intend_many(
        self,
        mapping: str,
        object: str,
        crm_system: str,
        acc_system: str,
        intents: Sequence[tuple[str | None, str | None, str]],
        *,
        bases: Sequence[dict[str, Any]] | None = None,
        session: AsyncSession | None = None,
    ) -> dict[str, Link | None]:
        """`intend` for many (crm id, acc id, reference) in two statements: by reference, the pending link
        (written now, or there from an earlier attempt), or None where another link already holds the record.

        `bases` (one per intent, encoded) are what each create will write: kept on the pending link so that a
        create recovered after a crash gets the base it would have had, not the target's own defaults."""
        if not intents:
            return {}
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {"mapping": mapping, "object": object, "crm_system": crm_system, "crm_id": crm_id,
             "acc_system": acc_system, "acc_id": acc_id, "state": "pending", "base": base, "reference": reference,
             "version": 1, "created_at": now, "updated_at": now}
            for (crm_id, acc_id, reference), base in zip(intents, bases or [{}] * len(intents), strict=True)
        ]  # fmt: skip
        references = [reference for _, _, reference in intents]
        found: dict[str, Link] = {}
        async with self._db.scope(session) as s:
            # Any conflict leaves the row out: the reference exists already (an earlier attempt), or the record
            # is held by another link (told apart below, by the ids the row holds).
            # Executemany, not one multi-row VALUES: its statement is compiled once and cached, where a VALUES
            # list is compiled afresh for every batch (a bind parameter per cell, 8% of a first sync's CPU).
            await s.execute(self._db.insert(LINK).on_conflict_do_nothing(), rows)
            conditions = (col(LinkRow.mapping) == mapping, col(LinkRow.object) == object)
            found.update((k.reference, k) for k in await _where_in(s, col(LinkRow.reference), references, *conditions))
        out: dict[str, Link | None] = {}
        for crm_id, acc_id, reference in intents:
            link = found.get(reference)
            mine = link is not None and (crm_id is None or link.crm_id == crm_id) and (
                acc_id is None or link.acc_id == acc_id
            )
            out[reference] = link if mine else None
        return out

    async def bind_many(
        self,
        binds: Sequence[tuple[int, str | None, str | None, dict[str, Any], SeenStamps]],
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """`bind` for many (link id, crm id, acc id, base, seen stamps) in one statement per kind of bind.

        Raises `StoreConflictError` (from the unique constraints) if a record is already held by another link:
        the caller binds one by one then, to tell which."""
        now = utcnow()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for link_id, crm_id, acc_id, base, seen in binds:
            values: dict[str, Any] = {"state": "linked", "base": base, "last_synced_at": now, "updated_at": now,
                                      **_seen_values(seen)}  # fmt: skip
            if crm_id is not None:
                values["crm_id"] = crm_id
            if acc_id is not None:
                values["acc_id"] = acc_id
            # Bound parameters may not share a column's name in an UPDATE's SET: `v_` tells them apart.
            groups.setdefault(tuple(sorted(values)), []).append(
                {"link_id": link_id, **{f"v_{k}": v for k, v in values.items()}}
            )
        async with self._db.scope(session) as s:
            for columns, rows in groups.items():
                stmt = (
                    update(LINK)
                    .where(LINK.c.id == bindparam("link_id"))
                    .values({**{c: bindparam(f"v_{c}") for c in columns}, "version": LINK.c.version + 1})
                )
                await s.execute(stmt, rows)

    async def bind(
        self,
        link_id: int,
        *,
        crm_id: str | None = None,
        acc_id: str | None = None,
        base: dict[str, Any],
        synced_at: datetime | None = None,
        seen: SeenStamps | None = None,
        session: AsyncSession | None = None,
    ) -> Link:
        """Mark the link linked after a successful write: fill in the new side's id and store the new base."""
        values: dict[str, Any] = {
            "state": "linked", "base": base, "last_synced_at": synced_at or utcnow(), **_seen_values(seen)
        }
        if crm_id is not None:
            values["crm_id"] = crm_id
        if acc_id is not None:
            values["acc_id"] = acc_id
        return await self._update(session, link_id, values, expected_version=None)

    async def update_base(
        self,
        link_id: int,
        base: dict[str, Any],
        expected_version: int,
        *,
        synced_at: datetime | None = None,
        seen: SeenStamps | None = None,
        session: AsyncSession | None = None,
    ) -> Link:
        """Store a new base only if nobody changed the link since `expected_version` was read.

        Raises `StaleVersionError` otherwise, so two writers never silently overwrite each other.
        """
        values: dict[str, Any] = {"base": base, "last_synced_at": synced_at or utcnow(), **_seen_values(seen)}
        return await self._update(session, link_id, values, expected_version=expected_version)

    async def mark_deleted(self, link_id: int, *, session: AsyncSession | None = None) -> Link:
        """Record that a side's record was deleted; the link stays so a re-create does not undo it."""
        return await self._update(session, link_id, {"state": "deleted"}, expected_version=None)

    async def unbind(self, link_id: int, *, session: AsyncSession | None = None) -> None:
        """Forget the link entirely (its conflicts go with it); the records themselves are untouched."""
        async with self._db.scope(session) as s:
            result = cast(CursorResult[Any], await s.execute(delete(LINK).where(LINK.c.id == link_id)))
            if result.rowcount == 0:
                raise StoreNotFoundError(f"link {link_id} does not exist")

    async def move(self, link_id: int, side: Side, new_id: str, *, session: AsyncSession | None = None) -> Link:
        """Point one side of a link at another record (the survivor of a merge) and return the surviving link.

        If another link already holds `new_id` on that side, that link survives and this one is marked
        deleted, because one record can never be in two links.
        """
        async with self._db.scope(session) as s:
            link = _link(await _row(s, link_id))
            system = link.crm_system if side == "crm" else link.acc_system
            holder = await (self.lookup_crm if side == "crm" else self.lookup_acc)(
                link.mapping, link.object, system, new_id, session=s
            )
            if holder is not None and holder.id != link.id:
                await self._update(s, link.id, {"state": "deleted"}, expected_version=None)
                return holder
            key = "crm_id" if side == "crm" else "acc_id"
            return await self._update(s, link.id, {key: new_id}, expected_version=None)

    async def pending(self, *, session: AsyncSession | None = None) -> builtins.list[Link]:
        """Links whose create is unconfirmed: resolve each by looking its reference up on the target."""
        return await self.list(state="pending", limit=None, session=session)

    async def list(
        self,
        mapping: str | None = None,
        object: str | None = None,
        state: LinkState | None = None,
        limit: int | None = 100,
        offset: int = 0,
        *,
        session: AsyncSession | None = None,
    ) -> builtins.list[Link]:
        """Links in id order, optionally filtered by mapping, object and state."""
        stmt = select(LinkRow).order_by(col(LinkRow.id)).offset(offset)
        if mapping is not None:
            stmt = stmt.where(col(LinkRow.mapping) == mapping)
        if object is not None:
            stmt = stmt.where(col(LinkRow.object) == object)
        if state is not None:
            stmt = stmt.where(col(LinkRow.state) == state)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self._db.scope(session) as s:
            rows = await s.scalars(stmt.execution_options(populate_existing=True))
            return [_link(r) for r in rows]

    async def _find(self, session: AsyncSession | None, *conditions: Any) -> Link | None:
        """The one link matching the conditions (the unique constraints guarantee at most one)."""
        stmt = select(LinkRow).where(*conditions).execution_options(populate_existing=True)
        async with self._db.scope(session) as s:
            row = (await s.scalars(stmt)).one_or_none()
            return None if row is None else _link(row)

    async def _update(
        self,
        session: AsyncSession | None,
        link_id: int,
        values: dict[str, Any],
        *,
        expected_version: int | None,
    ) -> Link:
        """One UPDATE that also bumps the version, guarded by the expected version when given."""
        stmt = (
            update(LINK).where(LINK.c.id == link_id).values(**values, version=LINK.c.version + 1, updated_at=utcnow())
        )
        if expected_version is not None:
            stmt = stmt.where(LINK.c.version == expected_version)
        async with self._db.scope(session) as s:
            result = cast(CursorResult[Any], await s.execute(stmt))
            if result.rowcount == 0:
                current = _link(await _row(s, link_id))  # raises StoreNotFoundError if it is gone
                raise StaleVersionError(
                    f"link {link_id} is at version {current.version}, not {expected_version}: re-read it"
                )
            return _link(await _row(s, link_id))


async def _where_in(session: AsyncSession, column: Any, values: Sequence[str], *conditions: Any) -> list[Link]:
    """The links meeting `conditions` whose `column` is one of `values`, read 500 values to a query."""
    unique = list(dict.fromkeys(values))
    links: list[Link] = []
    for start in range(0, len(unique), 500):
        # Plain rows, not ORM objects: a first sync reads every link it makes this way, and building (and
        # tracking) an object per row cost more than the query.
        stmt = select(LINK).where(*conditions, column.in_(unique[start : start + 500]))
        links.extend(_link(row) for row in await session.execute(stmt))
    return links


async def _row(session: AsyncSession, link_id: int) -> LinkRow:
    """The row itself, freshly read; `StoreNotFoundError` if missing."""
    row = await session.get(LinkRow, link_id, populate_existing=True)
    if row is None:
        raise StoreNotFoundError(f"link {link_id} does not exist")
    return row
