"""The write journal: audit rows written `pending` before their writes are sent, completed (`done`) in the
commit that moves the link's base, and resolved by a later pass once the writer that sent them is gone (its
process died, or its batch failed before the commit): each row names its owner, whose liveness the store tests
(syncd/store/owners.py), so that a pass never resolves another live writer's rows in flight."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.owners import OwnerLocks, new_token, owner_locks
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
    owner: str | None = None  # the writer that journalled it (None: written before owners existed)


def _pending(row: Row[Any]) -> PendingWrite:
    """A value from a result row."""
    return PendingWrite(
        row.id,
        JournalEntry(
            row.system, row.object, row.record_id, dict(row.fields_before), dict(row.fields_after), row.cause,
            row.link_id, dict(row.base_change or {}),
        ),
        row.owner,
    )  # fmt: skip


class JournalOwner:
    """One writer's claim on the rows it journals (a batch, or one action): its lock is taken before its first
    row is written and dropped when the writer ends, committed or not (`WriteJournal.owning`)."""

    def __init__(self, locks: OwnerLocks) -> None:
        self._locks = locks
        self.token = new_token()
        self.held = False

    async def hold(self) -> None:
        """Take the lock (once) before a row names this owner: a row never names an owner not yet held."""
        while not self.held:
            if await self._locks.hold(self.token):
                self.held = True
            else:
                self.token = new_token()  # a clash with a live owner's lock key: practically never

    async def release(self) -> None:
        """Drop the lock: rows of this owner still pending are now a later pass's to resolve."""
        if self.held:
            self.held = False
            await self._locks.release(self.token)


class WriteJournal:
    """Pending audit rows: opened before a batch's writes, completed or discarded at its commit."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._locks = owner_locks(db)

    @asynccontextmanager
    async def owning(self) -> AsyncIterator[JournalOwner]:
        """A writer's ownership of the rows it opens, from its first row (nothing is locked for a writer that
        journals nothing) to the end of this block, however it ends."""
        owner = JournalOwner(self._locks)
        try:
            yield owner
        finally:
            await owner.release()

    async def open_many(
        self, entries: Sequence[JournalEntry], *, owner: JournalOwner, session: AsyncSession | None = None
    ) -> builtins.list[int]:
        """Journal `entries` as pending audit rows of `owner`, in one statement; their ids, in the order given."""
        if not entries:
            return []
        await owner.hold()
        now = utcnow()
        rows = [
            {"at": now, "system": e.system, "object": e.object, "record_id": e.record_id,
             "fields_before": e.fields_before, "fields_after": e.fields_after, "cause": e.cause,
             "status": "pending", "link_id": e.link_id, "base_change": e.base_change, "owner": owner.token}
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

    async def orphaned(self, mapping: str) -> builtins.list[PendingWrite]:
        """The rows `mapping` left pending whose writer is gone, oldest first: read first, owners tested after,
        so a row is never taken for orphaned by a writer that had not journalled it yet."""
        rows = await self.pending(mapping)
        alive = await self._locks.alive({w.owner for w in rows if w.owner is not None})
        return [w for w in rows if w.owner is None or w.owner not in alive]

    async def resolve(
        self, write_id: int, status: Resolution, note: str, *, session: AsyncSession | None = None
    ) -> bool:
        """A pending row resolved by a later pass, its cause completed with `note` (what was found); False when
        it was no longer pending (its writer committed it meanwhile)."""
        stmt = (
            update(AUDIT)
            .where(AUDIT.c.id == write_id, AUDIT.c.status == "pending")
            .values(status=status, cause=AUDIT.c.cause + f" ({note})")
        )
        async with self._db.scope(session) as s:
            result = await s.execute(stmt)
            return bool(cast("CursorResult[Any]", result).rowcount)
