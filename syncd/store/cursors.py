"""Polling cursors: how far each connection × object has been read and applied."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.tables import CURSOR


class CursorStore:
    """Read and move cursors; a cursor is opaque text owned by the connector that reads it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, connection: str, object: str, *, session: AsyncSession | None = None) -> str | None:
        """The stored cursor, or None when this connection × object was never polled."""
        stmt = select(CURSOR.c.value).where(CURSOR.c.connection == connection, CURSOR.c.object == object)
        async with self._db.scope(session) as s:
            value: str | None = (await s.execute(stmt)).scalar_one_or_none()
            return value

    async def set(self, connection: str, object: str, value: str, *, session: AsyncSession | None = None) -> None:
        """Store the cursor (insert or overwrite); pass the session that commits the batch it covers."""
        now = utcnow()
        stmt = (
            self._db.insert(CURSOR)
            .values(connection=connection, object=object, value=value, updated_at=now)
            .on_conflict_do_update(index_elements=["connection", "object"], set_={"value": value, "updated_at": now})
        )
        async with self._db.scope(session) as s:
            await s.execute(stmt)
