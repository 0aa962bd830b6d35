"""The webhook inbox: events stored before acknowledgement, processed (and retried) after."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StoreNotFoundError
from syncd.store.tables import INBOX


@dataclass(frozen=True)
class InboxEvent:
    """One received webhook event."""

    id: int
    connection: str
    event_id: str
    received_at: datetime
    attempts: int
    processed_at: datetime | None = None
    last_error: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def _event(row: Row[Any]) -> InboxEvent:
    """A value from a result row."""
    return InboxEvent(
        id=row.id,
        connection=row.connection,
        event_id=row.event_id,
        received_at=row.received_at,
        attempts=row.attempts,
        processed_at=row.processed_at,
        last_error=row.last_error,
        payload=dict(row.payload),
    )


class InboxStore:
    """Durable, de-duplicated queue of webhook events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(
        self, connection: str, event_id: str, payload: dict[str, Any], *, session: AsyncSession | None = None
    ) -> bool:
        """Store the event; False if this connection already delivered this event id (a redelivery)."""
        stmt = (
            self._db.insert(INBOX)
            .values(connection=connection, event_id=event_id, payload=payload, received_at=utcnow(), attempts=0)
            .on_conflict_do_nothing(index_elements=["connection", "event_id"])
            # RETURNING, not rowcount: the psycopg async adapter does not report rowcount for this INSERT.
            .returning(INBOX.c.id)
        )
        async with self._db.scope(session) as s:
            return (await s.execute(stmt)).scalar_one_or_none() is not None

    async def pending(
        self, limit: int = 100, connection: str | None = None, *, session: AsyncSession | None = None
    ) -> list[InboxEvent]:
        """Unprocessed events, oldest first."""
        stmt = (
            select(INBOX).where(INBOX.c.processed_at.is_(None)).order_by(INBOX.c.received_at, INBOX.c.id).limit(limit)
        )
        if connection is not None:
            stmt = stmt.where(INBOX.c.connection == connection)
        async with self._db.scope(session) as s:
            return [_event(r) for r in (await s.execute(stmt)).all()]

    async def mark_processed(self, ids: Iterable[int], *, session: AsyncSession | None = None) -> int:
        """Mark events done (in the session that commits their effects); returns how many changed."""
        id_list = list(ids)
        if not id_list:
            return 0
        stmt = (
            update(INBOX).where(INBOX.c.id.in_(id_list), INBOX.c.processed_at.is_(None)).values(processed_at=utcnow())
        )
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount

    async def mark_failed(self, event_id: int, error: str, *, session: AsyncSession | None = None) -> int:
        """Count a failed attempt and keep the reason; the event stays pending. Returns the attempt count."""
        stmt = (
            update(INBOX)
            .where(INBOX.c.id == event_id)
            .values(attempts=INBOX.c.attempts + 1, last_error=error)
            .returning(INBOX.c.attempts)
        )
        async with self._db.scope(session) as s:
            attempts: int | None = (await s.execute(stmt)).scalar_one_or_none()
        if attempts is None:
            raise StoreNotFoundError(f"inbox event {event_id} does not exist")
        return attempts
