"""Dead letters: records that failed to sync, kept with the reason and retried on a schedule."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.tables import DEAD_LETTER

Side = Literal["crm", "accounting"]


@dataclass(frozen=True)
class DeadLetter:
    """One parked record and why it is parked."""

    id: int
    connection: str
    mapping: str
    object: str
    side: Side
    record_id: str
    error: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


def _letter(row: Row[Any]) -> DeadLetter:
    """A value from a result row."""
    return DeadLetter(
        id=row.id,
        connection=row.connection,
        mapping=row.mapping,
        object=row.object,
        side=cast(Side, row.side),
        record_id=row.record_id,
        error=row.error,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        payload=dict(row.payload),
    )


class DeadLetterStore:
    """One row per failing record: parking it again counts another attempt instead of adding a row."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def park(
        self,
        connection: str,
        mapping: str,
        object: str,
        side: Side,
        record_id: str,
        error: str,
        *,
        next_attempt_at: datetime | None,
        payload: dict[str, Any] | None = None,
        session: AsyncSession | None = None,
    ) -> DeadLetter:
        """Park a record (or count one more failure); `next_attempt_at=None` means wait for an operator."""
        now = utcnow()
        body = payload or {}
        stmt = self._db.insert(DEAD_LETTER).values(
            connection=connection,
            mapping=mapping,
            object=object,
            side=side,
            record_id=record_id,
            error=error,
            attempts=1,
            next_attempt_at=next_attempt_at,
            payload=body,
            created_at=now,
            updated_at=now,
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["mapping", "object", "side", "record_id"],
            set_={
                "connection": connection,
                "error": error,
                "attempts": DEAD_LETTER.c.attempts + 1,
                "next_attempt_at": next_attempt_at,
                "payload": body,
                "updated_at": now,
            },
        ).returning(*DEAD_LETTER.c)
        async with self._db.scope(session) as s:
            return _letter((await s.execute(upsert)).one())

    async def list(
        self,
        mapping: str | None = None,
        object: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        session: AsyncSession | None = None,
    ) -> builtins.list[DeadLetter]:
        """Parked records, oldest first."""
        stmt = select(DEAD_LETTER).order_by(DEAD_LETTER.c.id).limit(limit).offset(offset)
        if mapping is not None:
            stmt = stmt.where(DEAD_LETTER.c.mapping == mapping)
        if object is not None:
            stmt = stmt.where(DEAD_LETTER.c.object == object)
        async with self._db.scope(session) as s:
            return [_letter(r) for r in (await s.execute(stmt)).all()]

    async def held(
        self,
        mapping: str,
        object: str,
        side: Side,
        record_ids: Iterable[str],
        *,
        session: AsyncSession | None = None,
    ) -> dict[str, DeadLetter]:
        """Of `record_ids`, those parked to wait for a person or a change (no next attempt), by record id."""
        wanted = sorted(set(record_ids))
        found: dict[str, DeadLetter] = {}
        async with self._db.scope(session) as s:
            # Chunks keep each IN list well under every backend's limit on bound parameters.
            for start in range(0, len(wanted), 500):
                stmt = select(DEAD_LETTER).where(
                    DEAD_LETTER.c.mapping == mapping,
                    DEAD_LETTER.c.object == object,
                    DEAD_LETTER.c.side == side,
                    DEAD_LETTER.c.record_id.in_(wanted[start : start + 500]),
                    DEAD_LETTER.c.next_attempt_at.is_(None),
                )
                found.update((r.record_id, _letter(r)) for r in (await s.execute(stmt)).all())
        return found

    async def due(
        self, now: datetime | None = None, limit: int = 100, *, session: AsyncSession | None = None
    ) -> builtins.list[DeadLetter]:
        """Parked records whose next attempt time has come, earliest first."""
        stmt = (
            select(DEAD_LETTER)
            .where(DEAD_LETTER.c.next_attempt_at.is_not(None), DEAD_LETTER.c.next_attempt_at <= (now or utcnow()))
            .order_by(DEAD_LETTER.c.next_attempt_at, DEAD_LETTER.c.id)
            .limit(limit)
        )
        async with self._db.scope(session) as s:
            return [_letter(r) for r in (await s.execute(stmt)).all()]

    async def clear(
        self, mapping: str, object: str, side: Side, record_id: str, *, session: AsyncSession | None = None
    ) -> bool:
        """Remove a record's dead letter once it synced; False if there was none."""
        stmt = delete(DEAD_LETTER).where(
            DEAD_LETTER.c.mapping == mapping,
            DEAD_LETTER.c.object == object,
            DEAD_LETTER.c.side == side,
            DEAD_LETTER.c.record_id == record_id,
        )
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount > 0
