"""When each mapping was first activated: the moment its history ends and new work begins (`sync_from`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.tables import MAPPING_ACTIVATION


class ActivationStore:
    """One row per mapping name, written the first time the mapping is used and never moved after."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, mapping: str, *, session: AsyncSession | None = None) -> datetime | None:
        """When `mapping` was first activated, or None if it never was."""
        stmt = select(MAPPING_ACTIVATION.c.activated_at).where(MAPPING_ACTIVATION.c.mapping == mapping)
        async with self._db.scope(session) as s:
            value: datetime | None = (await s.execute(stmt)).scalar_one_or_none()
            return value

    async def activate(self, mapping: str, *, session: AsyncSession | None = None) -> datetime:
        """Record now as `mapping`'s activation unless one is recorded already; returns the recorded moment.

        Two processes activating at once both get the first one's moment (insert-or-ignore, then read)."""
        stmt = (
            self._db.insert(MAPPING_ACTIVATION)
            .values(mapping=mapping, activated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["mapping"])
        )
        async with self._db.scope(session) as s:
            await s.execute(stmt)
            found = await self.get(mapping, session=s)
        assert found is not None  # inserted above, or already there
        return found
