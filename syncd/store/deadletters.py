"""Dead letters: records that failed to sync, kept with the reason (the system's code and message for a
refused write), retried on a schedule or held until they change, and requeued by an operator."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, and_, delete, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StoreNotFoundError
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
    error_class: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    mapping_fingerprint: str | None = None
    counterpart_id: str | None = None


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
        error_class=row.error_class,
        error_code=row.error_code,
        error_message=row.error_message,
        mapping_fingerprint=row.mapping_fingerprint,
        counterpart_id=row.counterpart_id,
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
        error_class: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        mapping_fingerprint: str | None = None,
        counterpart_id: str | None = None,
        earlier_attempts: int = 0,
        session: AsyncSession | None = None,
    ) -> DeadLetter:
        """Park a record (or count one more failure); `next_attempt_at=None` means wait for a change or an
        operator. `error_code`/`error_message` are the system's own, for a write it refused; a new letter
        continuing one taken from the pair's other record counts its `earlier_attempts` too."""
        now = utcnow()
        body = payload or {}
        reasons = {
            "error_class": error_class,
            "error_code": error_code,
            "error_message": error_message,
            "mapping_fingerprint": mapping_fingerprint,
            "counterpart_id": counterpart_id,
        }
        stmt = self._db.insert(DEAD_LETTER).values(
            connection=connection,
            mapping=mapping,
            object=object,
            side=side,
            record_id=record_id,
            error=error,
            attempts=earlier_attempts + 1,
            next_attempt_at=next_attempt_at,
            payload=body,
            created_at=now,
            updated_at=now,
            **reasons,
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
                **reasons,
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

    async def of_records(
        self,
        mapping: str,
        object: str,
        side: Side,
        record_ids: Iterable[str],
        *,
        session: AsyncSession | None = None,
    ) -> dict[str, DeadLetter]:
        """The dead letters concerning `record_ids` of `side`, by record id: each record's own, or else the
        letter of a refused pair whose other record it is."""
        wanted = sorted(set(record_ids))
        other_side: Side = "accounting" if side == "crm" else "crm"
        own: dict[str, DeadLetter] = {}
        as_counterpart: dict[str, DeadLetter] = {}
        async with self._db.scope(session) as s:
            # Chunks keep each IN list well under every backend's limit on bound parameters.
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                stmt = select(DEAD_LETTER).where(
                    DEAD_LETTER.c.mapping == mapping,
                    DEAD_LETTER.c.object == object,
                    or_(
                        and_(DEAD_LETTER.c.side == side, DEAD_LETTER.c.record_id.in_(chunk)),
                        and_(DEAD_LETTER.c.side == other_side, DEAD_LETTER.c.counterpart_id.in_(chunk)),
                    ),
                )
                for row in (await s.execute(stmt)).all():
                    letter = _letter(row)
                    if letter.side == side:
                        own[letter.record_id] = letter
                    else:
                        as_counterpart[str(letter.counterpart_id)] = letter
        return {**as_counterpart, **own}

    async def get(self, letter_id: int, *, session: AsyncSession | None = None) -> DeadLetter:
        """One dead letter by id; `StoreNotFoundError` if there is none."""
        async with self._db.scope(session) as s:
            row = (await s.execute(select(DEAD_LETTER).where(DEAD_LETTER.c.id == letter_id))).one_or_none()
        if row is None:
            raise StoreNotFoundError(f"dead letter {letter_id} does not exist")
        return _letter(row)

    async def requeue(
        self, ids: Iterable[int], *, session: AsyncSession | None = None
    ) -> builtins.list[DeadLetter]:
        """Make dead letters due now, whatever they waited for (a change, a back-off): the next run of their
        object reads the records again and syncs them. All or nothing: `StoreNotFoundError` names unknown ids."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        stmt = (
            update(DEAD_LETTER)
            .where(DEAD_LETTER.c.id.in_(wanted))
            .values(next_attempt_at=utcnow())
            .returning(*DEAD_LETTER.c)
        )
        async with self._db.scope(session) as s:
            requeued = sorted((_letter(r) for r in (await s.execute(stmt)).all()), key=lambda d: d.id)
            missing = sorted(set(wanted) - {d.id for d in requeued})
            if missing:
                # Raised inside the transaction, so none of them is requeued.
                raise StoreNotFoundError(
                    "nothing requeued: " + "; ".join(f"dead letter {i} does not exist" for i in missing)
                )
        return requeued

    async def requeue_all(
        self, mapping: str | None = None, object: str | None = None, *, session: AsyncSession | None = None
    ) -> int:
        """Make every dead letter (of one mapping and object, if named) due now; returns how many."""
        stmt = update(DEAD_LETTER).values(next_attempt_at=utcnow()).returning(DEAD_LETTER.c.id)
        if mapping is not None:
            stmt = stmt.where(DEAD_LETTER.c.mapping == mapping)
        if object is not None:
            stmt = stmt.where(DEAD_LETTER.c.object == object)
        async with self._db.scope(session) as s:
            return len((await s.execute(stmt)).all())

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

    async def take(
        self,
        mapping: str,
        object: str,
        side: Side,
        record_id: str,
        *,
        counterpart_id: str,
        session: AsyncSession | None = None,
    ) -> DeadLetter | None:
        """Remove and return a refused pair's letter kept on its `side` record, if it names `counterpart_id`
        as the pair's other record (the pair is parked again from the other side)."""
        stmt = (
            delete(DEAD_LETTER)
            .where(
                DEAD_LETTER.c.mapping == mapping,
                DEAD_LETTER.c.object == object,
                DEAD_LETTER.c.side == side,
                DEAD_LETTER.c.record_id == record_id,
                DEAD_LETTER.c.counterpart_id == counterpart_id,
            )
            .returning(*DEAD_LETTER.c)
        )
        async with self._db.scope(session) as s:
            row = (await s.execute(stmt)).one_or_none()
        return None if row is None else _letter(row)

    async def clear_many(
        self, mapping: str, object: str, side: Side, record_ids: Sequence[str], *, session: AsyncSession | None = None
    ) -> None:
        """Remove the dead letters of records that synced, in one statement per 500."""
        unique = list(dict.fromkeys(record_ids))
        async with self._db.scope(session) as s:
            for start in range(0, len(unique), 500):
                await s.execute(
                    delete(DEAD_LETTER).where(
                        DEAD_LETTER.c.mapping == mapping,
                        DEAD_LETTER.c.object == object,
                        DEAD_LETTER.c.side == side,
                        DEAD_LETTER.c.record_id.in_(unique[start : start + 500]),
                    )
                )

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
