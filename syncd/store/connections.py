"""Connection state: which connections are usable and why one is not."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StoreNotFoundError
from syncd.store.tables import CONNECTION

ConnectionStatus = Literal["ok", "needs_reauth", "disabled"]


@dataclass(frozen=True)
class ConnectionState:
    """A connection's name, system and health as last recorded."""

    name: str
    system: str
    status: ConnectionStatus
    last_error: str | None
    updated_at: datetime


def _state(row: Row[Any]) -> ConnectionState:
    """A value from a result row."""
    return ConnectionState(
        name=row.name,
        system=row.system,
        status=cast(ConnectionStatus, row.status),
        last_error=row.last_error,
        updated_at=row.updated_at,
    )


class ConnectionStore:
    """Records each connection's status so one revoked grant stops only that connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def ensure(self, name: str, system: str, *, session: AsyncSession | None = None) -> ConnectionState:
        """Create the connection row if missing (status ok); an existing row keeps its status."""
        stmt = (
            self._db.insert(CONNECTION)
            .values(name=name, system=system, status="ok", updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        async with self._db.scope(session) as s:
            await s.execute(stmt)
            found = await self.get(name, session=s)
        assert found is not None
        return found

    async def get(self, name: str, *, session: AsyncSession | None = None) -> ConnectionState | None:
        """The connection's state, or None if it was never ensured."""
        async with self._db.scope(session) as s:
            row = (await s.execute(select(CONNECTION).where(CONNECTION.c.name == name))).one_or_none()
            return None if row is None else _state(row)

    async def set_status(
        self,
        name: str,
        status: ConnectionStatus,
        last_error: str | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> ConnectionState:
        """Record a new status (and the error behind it, cleared when None)."""
        stmt = (
            update(CONNECTION)
            .where(CONNECTION.c.name == name)
            .values(status=status, last_error=last_error, updated_at=utcnow())
        )
        async with self._db.scope(session) as s:
            result = cast(CursorResult[Any], await s.execute(stmt))
            if result.rowcount == 0:
                raise StoreNotFoundError(f"connection {name!r} is not in the store")
            found = await self.get(name, session=s)
        assert found is not None
        return found

    async def list(self, *, session: AsyncSession | None = None) -> builtins.list[ConnectionState]:
        """Every connection, by name."""
        async with self._db.scope(session) as s:
            rows = (await s.execute(select(CONNECTION).order_by(CONNECTION.c.name))).all()
            return [_state(r) for r in rows]
