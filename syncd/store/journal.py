"""The write journal: audit rows written `pending` before their writes are sent, completed (`done`) in the
commit that moves the link's base, and resolved by the next pass when the process that sent them died first."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.tables import AUDIT

#: What a pass after a crash makes of a pending row: the target holds what was sent, or it does not.
Resolution = Literal["recovered", "unconfirmed"]


@dataclass(frozen=True)
class JournalEntry:
    """A write about to be sent: its audit row, the link it concerns and the base fields it carries."""

    system: str
    object: str
    record_id: str
    fields_before: dict[str, Any]
    fields_after: dict[str, Any]
    cause: str
    link_id: int | None = None
    # {canonical field: [base before, value written]}, encoded as the link's base is.
    base_change: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingWrite:
    """A journalled write whose commit never came: sent (or about to be) by a process that stopped."""

    id: int
    entry: JournalEntry


def _pending(row: Row[Any]) -> PendingWrite:
    """A value from a result row."""
    return PendingWrite(
        row.id,
        JournalEntry(
            row.system, row.object, row.record_id, dict(row.fields_before), dict(row.fields_after), row.cause,
            row.link_id, dict(row.base_change or {}),
        ),
    )  # fmt: skip


class WriteJournal:
    """Pending audit rows: opened before a batch's writes, completed or discarded at its commit."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_many(
        self, entries: Sequence[JournalEntry], *, session: AsyncSession | None = None
    ) -> builtins.list[int]:
        """Journal `entries` as pending audit rows, in one statement; their ids, in the order given."""
        if not entries:
            return []
        now = utcnow()
        rows = [
            {"at": now, "system": e.system, "object": e.object, "record_id": e.record_id,
             "fields_before": e.fields_before, "fields_after": e.fields_after, "cause": e.cause,
             "status": "pending", "link_id": e.link_id, "base_change": e.base_change}
            for e in entries
        ]  # fmt: skip
        stmt = AUDIT.insert().returning(AUDIT.c.id, sort_by_parameter_order=True)
        async with self._db.scope(session) as s:
            return [row.id for row in (await s.execute(stmt, rows)).all()]

    async def complete(self, ids: Sequence[int], *, session: AsyncSession | None = None) -> None:
        """The writes of `ids` were made and are committed with this session: their rows are done."""
        if ids:
            stmt = update(AUDIT).where(AUDIT.c.id.in_(ids), AUDIT.c.status == "pending").values(status="done")
            async with self._db.scope(session) as s:
                await s.execute(stmt)

    async def discard(self, ids: Sequence[int], *, session: AsyncSession | None = None) -> None:
        """The writes of `ids` were refused by their system, so nothing was written: their rows go."""
        if ids:
            stmt = delete(AUDIT).where(AUDIT.c.id.in_(ids), AUDIT.c.status == "pending")
            async with self._db.scope(session) as s:
                await s.execute(stmt)

    async def pending(self, mapping: str, *, session: AsyncSession | None = None) -> builtins.list[PendingWrite]:
        """The rows `mapping` left pending, oldest first (one indexed query: none in a pass after a clean one)."""
        stmt = (
            select(AUDIT)
            .where(AUDIT.c.status == "pending", AUDIT.c.cause.startswith(f"{mapping}:", autoescape=True))
            .order_by(AUDIT.c.id)
        )
        async with self._db.scope(session) as s:
            return [_pending(r) for r in (await s.execute(stmt)).all()]

    async def resolve(
        self, write_id: int, status: Resolution, note: str, *, session: AsyncSession | None = None
    ) -> None:
        """A pending row resolved by a later pass, its cause completed with `note` (what was found)."""
        stmt = (
            update(AUDIT)
            .where(AUDIT.c.id == write_id, AUDIT.c.status == "pending")
            .values(status=status, cause=AUDIT.c.cause + f" ({note})")
        )
        async with self._db.scope(session) as s:
            await s.execute(stmt)
