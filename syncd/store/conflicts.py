"""Field conflicts: both sides changed a field differently and the rule said a person must decide."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, func, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StoreConflictError, StoreNotFoundError
from syncd.store.tables import CONFLICT, LINK

ConflictStatus = Literal["open", "resolved"]
Resolution = Literal["crm", "accounting", "value"]
ConflictOrder = Literal["detected", "resolved"]


@dataclass(frozen=True)
class Conflict:
    """One field of one link on which the sides disagree, and how it was settled."""

    id: int
    link_id: int
    field: str
    base_value: Any
    crm_value: Any
    acc_value: Any
    detected_at: datetime
    status: ConflictStatus
    resolution: Resolution | None = None
    resolved_value: Any = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    applied_at: datetime | None = None


def _conflict(row: Row[Any]) -> Conflict:
    """A value from a result row."""
    return Conflict(
        id=row.id,
        link_id=row.link_id,
        field=row.field,
        base_value=row.base_value,
        crm_value=row.crm_value,
        acc_value=row.acc_value,
        detected_at=row.detected_at,
        status=cast(ConflictStatus, row.status),
        resolution=cast("Resolution | None", row.resolution),
        resolved_value=row.resolved_value,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        applied_at=row.applied_at,
    )


class ConflictStore:
    """Open, list, resolve and apply conflicts; one open conflict per (link, field) at most."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_conflict(
        self,
        link_id: int,
        field: str,
        base_value: Any,
        crm_value: Any,
        acc_value: Any,
        *,
        detected_at: datetime | None = None,
        session: AsyncSession | None = None,
    ) -> Conflict:
        """Open a conflict, or refresh the values of the one already open for this field."""
        now = detected_at or utcnow()
        stmt = (
            self._db.insert(CONFLICT)
            .values(
                link_id=link_id,
                field=field,
                base_value=base_value,
                crm_value=crm_value,
                acc_value=acc_value,
                detected_at=now,
                status="open",
            )
            .on_conflict_do_update(
                # Targets the partial unique index, so resolved history never blocks a new conflict.
                index_elements=["link_id", "field"],
                index_where=text("status = 'open'"),
                set_={"base_value": base_value, "crm_value": crm_value, "acc_value": acc_value},
            )
            .returning(*CONFLICT.c)
        )
        async with self._db.scope(session) as s:
            return _conflict((await s.execute(stmt)).one())

    async def get(self, conflict_id: int, *, session: AsyncSession | None = None) -> Conflict:
        """The conflict with this id; `StoreNotFoundError` if none."""
        async with self._db.scope(session) as s:
            row = (await s.execute(select(CONFLICT).where(CONFLICT.c.id == conflict_id))).one_or_none()
        if row is None:
            raise StoreNotFoundError(f"conflict {conflict_id} does not exist")
        return _conflict(row)

    async def list(
        self,
        status: ConflictStatus | None = "open",
        link_id: int | None = None,
        limit: int | None = 100,
        offset: int = 0,
        *,
        mapping: str | None = None,
        object: str | None = None,
        field: str | None = None,
        detected_before: datetime | None = None,
        order: ConflictOrder = "detected",
        session: AsyncSession | None = None,
    ) -> builtins.list[Conflict]:
        """Conflicts oldest first (or, with `order="resolved"`, latest resolution first); open ones by default,
        optionally only those of one mapping, object or field, or detected before a time."""
        stmt = select(CONFLICT).limit(limit).offset(offset)  # no limit at all when None
        if order == "resolved":
            stmt = stmt.order_by(CONFLICT.c.resolved_at.desc(), CONFLICT.c.id.desc())
        else:
            stmt = stmt.order_by(CONFLICT.c.detected_at, CONFLICT.c.id)
        if status is not None:
            stmt = stmt.where(CONFLICT.c.status == status)
        if link_id is not None:
            stmt = stmt.where(CONFLICT.c.link_id == link_id)
        if field is not None:
            stmt = stmt.where(CONFLICT.c.field == field)
        if detected_before is not None:
            stmt = stmt.where(CONFLICT.c.detected_at < detected_before)
        if mapping is not None or object is not None:
            stmt = stmt.join(LINK, LINK.c.id == CONFLICT.c.link_id)
            if mapping is not None:
                stmt = stmt.where(LINK.c.mapping == mapping)
            if object is not None:
                stmt = stmt.where(LINK.c.object == object)
        async with self._db.scope(session) as s:
            return [_conflict(r) for r in (await s.execute(stmt)).all()]

    async def open_counts(self, *, session: AsyncSession | None = None) -> dict[tuple[str, str, str], int]:
        """How many conflicts are open, by (mapping, object, field)."""
        stmt = (
            select(LINK.c.mapping, LINK.c.object, CONFLICT.c.field, func.count())
            .select_from(CONFLICT.join(LINK, LINK.c.id == CONFLICT.c.link_id))
            .where(CONFLICT.c.status == "open")
            .group_by(LINK.c.mapping, LINK.c.object, CONFLICT.c.field)
        )
        async with self._db.scope(session) as s:
            return {(m, o, f): int(n) for m, o, f, n in (await s.execute(stmt)).all()}

    async def resolve(
        self,
        conflict_id: int,
        resolution: Resolution,
        value: Any = None,
        by: str = "operator",
        *,
        session: AsyncSession | None = None,
    ) -> Conflict:
        """Settle an open conflict: keep the CRM value, the accounting value, or a given value.

        Raises `StoreConflictError` if it is already resolved, so two reviewers cannot both win.
        """
        async with self._db.scope(session) as s:
            current = await self.get(conflict_id, session=s)
            chosen = {"crm": current.crm_value, "accounting": current.acc_value, "value": value}[resolution]
            stmt = (
                update(CONFLICT)
                .where(CONFLICT.c.id == conflict_id, CONFLICT.c.status == "open")
                .values(
                    status="resolved",
                    resolution=resolution,
                    resolved_value=chosen,
                    resolved_by=by,
                    resolved_at=utcnow(),
                )
            )
            if cast(CursorResult[Any], await s.execute(stmt)).rowcount == 0:
                raise StoreConflictError(f"conflict {conflict_id} is already resolved")
            return await self.get(conflict_id, session=s)

    async def resolved_unapplied(
        self, link_id: int | None = None, *, session: AsyncSession | None = None
    ) -> builtins.list[Conflict]:
        """Resolved conflicts whose value the engine has not written yet (all links when None)."""
        stmt = (
            select(CONFLICT)
            .where(CONFLICT.c.status == "resolved", CONFLICT.c.applied_at.is_(None))
            .order_by(CONFLICT.c.resolved_at, CONFLICT.c.id)
        )
        if link_id is not None:
            stmt = stmt.where(CONFLICT.c.link_id == link_id)
        async with self._db.scope(session) as s:
            return [_conflict(r) for r in (await s.execute(stmt)).all()]

    async def reopen(self, conflict_id: int, *, session: AsyncSession | None = None) -> bool:
        """Put a resolved, unapplied conflict back in front of a person (its resolution could not be carried
        out), unless another conflict of that field is already open; returns whether it was reopened."""
        other = CONFLICT.alias("other")
        already_open = (
            select(other.c.id)
            .where(other.c.link_id == CONFLICT.c.link_id, other.c.field == CONFLICT.c.field, other.c.status == "open")
            .exists()
        )
        stmt = (
            update(CONFLICT)
            .where(
                CONFLICT.c.id == conflict_id,
                CONFLICT.c.status == "resolved",
                CONFLICT.c.applied_at.is_(None),
                ~already_open,
            )
            .values(status="open", resolution=None, resolved_value=None, resolved_by=None, resolved_at=None)
        )
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount > 0

    async def mark_applied(self, ids: Iterable[int], *, session: AsyncSession | None = None) -> int:
        """Record that resolved values were written to both sides; returns how many changed."""
        id_list = builtins.list(ids)
        if not id_list:
            return 0
        stmt = (
            update(CONFLICT)
            .where(CONFLICT.c.id.in_(id_list), CONFLICT.c.status == "resolved", CONFLICT.c.applied_at.is_(None))
            .values(applied_at=utcnow())
        )
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount
