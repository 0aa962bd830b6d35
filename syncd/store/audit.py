"""The audit log: every write syncd made, with the fields before and after and the cause."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.tables import AUDIT


@dataclass(frozen=True)
class AuditEntry:
    """One recorded write."""

    id: int
    at: datetime
    system: str
    object: str
    record_id: str
    cause: str
    fields_before: dict[str, Any] = field(default_factory=dict)
    fields_after: dict[str, Any] = field(default_factory=dict)
    # done; pending (sent, not yet committed); recovered or unconfirmed (left pending by a process that died,
    # resolved by the next pass: see syncd/store/journal.py)
    status: str = "done"


def _entry(row: Row[Any]) -> AuditEntry:
    """A value from a result row."""
    return AuditEntry(
        id=row.id,
        at=row.at,
        system=row.system,
        object=row.object,
        record_id=row.record_id,
        cause=row.cause,
        fields_before=dict(row.fields_before),
        fields_after=dict(row.fields_after),
        status=row.status,
    )


class AuditLog:
    """Append-only record of writes, newest first when listed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_many(
        self,
        entries: Sequence[tuple[str, str, str, dict[str, Any], dict[str, Any], str]],
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Append entries (system, object, record id, before, after, cause) in one statement, all at one time."""
        if not entries:
            return
        now = utcnow()
        rows = [
            {"at": now, "system": system, "object": obj, "record_id": record_id, "fields_before": before,
             "fields_after": after, "cause": cause}
            for system, obj, record_id, before, after, cause in entries
        ]  # fmt: skip
        async with self._db.scope(session) as s:
            await s.execute(AUDIT.insert(), rows)

    async def record(
        self,
        system: str,
        object: str,
        record_id: str,
        fields_before: dict[str, Any],
        fields_after: dict[str, Any],
        cause: str,
        *,
        at: datetime | None = None,
        status: str = "done",
        session: AsyncSession | None = None,
    ) -> int:
        """Append one entry (in the caller's session, to commit with the link and cursor); returns its id.
        `status` is `recovered` for a write a process that died made, found by the next pass."""
        stmt = (
            AUDIT.insert()
            .values(
                at=at or utcnow(),
                system=system,
                object=object,
                record_id=record_id,
                fields_before=fields_before,
                fields_after=fields_after,
                cause=cause,
                status=status,
            )
            .returning(AUDIT.c.id)
        )
        async with self._db.scope(session) as s:
            new_id: int = (await s.execute(stmt)).scalar_one()
            return new_id

    async def list(
        self,
        system: str | None = None,
        object: str | None = None,
        record_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        mapping: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        session: AsyncSession | None = None,
    ) -> builtins.list[AuditEntry]:
        """Entries newest first, optionally for one system, object, record, mapping or status, and within a
        time window (`since` included, `until` excluded)."""
        stmt = select(AUDIT).order_by(AUDIT.c.at.desc(), AUDIT.c.id.desc()).limit(limit).offset(offset)
        if system is not None:
            stmt = stmt.where(AUDIT.c.system == system)
        if object is not None:
            stmt = stmt.where(AUDIT.c.object == object)
        if record_id is not None:
            stmt = stmt.where(AUDIT.c.record_id == record_id)
        if mapping is not None:
            # The engine writes every cause as `mapping:object: what happened` (see ObjectRun.cause).
            stmt = stmt.where(AUDIT.c.cause.startswith(f"{mapping}:", autoescape=True))
        if status is not None:
            stmt = stmt.where(AUDIT.c.status == status)
        if since is not None:
            stmt = stmt.where(AUDIT.c.at >= since)
        if until is not None:
            stmt = stmt.where(AUDIT.c.at < until)
        async with self._db.scope(session) as s:
            return [_entry(r) for r in (await s.execute(stmt)).all()]
