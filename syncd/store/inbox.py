"""The webhook inbox: events stored before acknowledgement, processed after, retried with back-off, and given
up after too many failures (polling, the safety net, still brings their changes)."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from syncd.store.columns import utcnow
from syncd.store.database import Database
from syncd.store.errors import StoreConflictError, StoreNotFoundError
from syncd.store.tables import INBOX


@dataclass(frozen=True)
class InboxRetryPolicy:
    """When a failed inbox event is tried again: exponential back-off with jitter, up to `max_attempts`."""

    first_delay_s: float = 5.0
    max_delay_s: float = 900.0
    max_attempts: int = 10
    # Up to this fraction of each delay is taken off at random, so events that failed together (one vendor
    # outage) do not all come due in the same instant again.
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.first_delay_s <= self.max_delay_s:
            raise ValueError("retry delays must satisfy 0 < first_delay_s <= max_delay_s")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempts: int, draw: float) -> timedelta:
        """The wait after the `attempts`-th failure; `draw` in [0, 1) picks where in the jitter it falls."""
        # The exponent is bounded so that a huge attempt count cannot overflow the float before the cap.
        full = min(self.max_delay_s, self.first_delay_s * 2.0 ** min(max(attempts - 1, 0), 64))
        return timedelta(seconds=full * (1 - self.jitter * draw))


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
    next_attempt_at: datetime | None = None  # when a failed event is due again
    gave_up: bool = False  # retrying stopped; processed_at says when


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
        next_attempt_at=row.next_attempt_at,
        gave_up=bool(row.gave_up),
    )


class InboxStore:
    """Durable, de-duplicated queue of webhook events."""

    def __init__(
        self, db: Database, retry: InboxRetryPolicy | None = None, *, draw: Callable[[], float] = random.random
    ) -> None:
        self._db = db
        self.retry = retry or InboxRetryPolicy()
        self._draw = draw

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
        self,
        limit: int = 100,
        connection: str | None = None,
        *,
        now: datetime | None = None,
        exclude: Collection[str] = (),
        session: AsyncSession | None = None,
    ) -> list[InboxEvent]:
        """Unprocessed events that are due (never tried, or their back-off has passed), oldest first, leaving
        out those of the connections in `exclude`."""
        stmt = (
            select(INBOX)
            .where(
                INBOX.c.processed_at.is_(None),
                or_(INBOX.c.next_attempt_at.is_(None), INBOX.c.next_attempt_at <= (now or utcnow())),
            )
            .order_by(INBOX.c.received_at, INBOX.c.id)
            .limit(limit)
        )
        if connection is not None:
            stmt = stmt.where(INBOX.c.connection == connection)
        if exclude:
            stmt = stmt.where(INBOX.c.connection.not_in(list(exclude)))
        async with self._db.scope(session) as s:
            return [_event(r) for r in (await s.execute(stmt)).all()]

    async def retry_now(self, connections: Collection[str], *, session: AsyncSession | None = None) -> int:
        """Make the events of `connections` still backing off due at once (what blocked them, such as a dead
        grant, is fixed); returns how many. Other connections' back-offs stand; given-up events stay given up."""
        stmt = (
            update(INBOX)
            .where(
                INBOX.c.processed_at.is_(None),
                INBOX.c.next_attempt_at.is_not(None),
                INBOX.c.connection.in_(list(connections)),
            )
            .values(next_attempt_at=None)
        )
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount

    async def given_up(
        self, limit: int = 100, connection: str | None = None, *, session: AsyncSession | None = None
    ) -> list[InboxEvent]:
        """Events retrying stopped for, most recent first, with their last error (for operators)."""
        return await self.events("given_up", connection, limit, session=session)

    async def events(
        self,
        status: Literal["pending", "given_up", "all"] = "given_up",
        connection: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        session: AsyncSession | None = None,
    ) -> list[InboxEvent]:
        """Events for operators: pending ones (backing off included) oldest first, the order they are processed
        in; given-up ones most recently given up first; or all of them, processed ones too, newest first."""
        stmt = select(INBOX).limit(limit).offset(offset)
        if status == "pending":
            stmt = stmt.where(INBOX.c.processed_at.is_(None)).order_by(INBOX.c.received_at, INBOX.c.id)
        elif status == "given_up":
            stmt = stmt.where(INBOX.c.gave_up).order_by(INBOX.c.processed_at.desc(), INBOX.c.id.desc())
        else:
            stmt = stmt.order_by(INBOX.c.received_at.desc(), INBOX.c.id.desc())
        if connection is not None:
            stmt = stmt.where(INBOX.c.connection == connection)
        async with self._db.scope(session) as s:
            return [_event(r) for r in (await s.execute(stmt)).all()]

    async def pending_count(self, *, session: AsyncSession | None = None) -> int:
        """How many events wait in the inbox (due or backing off), for the `syncd_inbox_pending` gauge."""
        stmt = select(func.count()).select_from(INBOX).where(INBOX.c.processed_at.is_(None))
        async with self._db.scope(session) as s:
            count: int = (await s.execute(stmt)).scalar_one()
        return count

    async def given_up_count(self, *, session: AsyncSession | None = None) -> int:
        """How many given-up events nobody requeued yet, for the `syncd_inbox_given_up` gauge."""
        stmt = select(func.count()).select_from(INBOX).where(INBOX.c.gave_up)
        async with self._db.scope(session) as s:
            count: int = (await s.execute(stmt)).scalar_one()
        return count

    async def requeue(self, ids: Iterable[int], *, session: AsyncSession | None = None) -> list[InboxEvent]:
        """Put given-up events back in the queue, due at once, attempts counted from zero again (the last error
        stays until the next attempt); returns them by id. All or nothing: `StoreNotFoundError` if an id is
        unknown, `StoreConflictError` if an event was not given up (processed normally, or still pending)."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        stmt = (
            update(INBOX)
            .where(INBOX.c.id.in_(wanted), INBOX.c.gave_up)
            .values(processed_at=None, gave_up=False, attempts=0, next_attempt_at=None)
            .returning(*INBOX.c)
        )
        async with self._db.scope(session) as s:
            requeued = sorted((_event(r) for r in (await s.execute(stmt)).all()), key=lambda e: e.id)
            missed = sorted(set(wanted) - {e.id for e in requeued})
            if missed:
                # Raised inside the transaction, so the events that could be requeued are not either.
                found = select(INBOX.c.id, INBOX.c.processed_at).where(INBOX.c.id.in_(missed))
                states = {row.id: row.processed_at for row in (await s.execute(found)).all()}
                raise self._not_requeued(missed, states)
        return requeued

    async def requeue_given_up(self, connection: str | None = None, *, session: AsyncSession | None = None) -> int:
        """Put every given-up event (of one connection, if named) back in the queue as `requeue` does; returns
        how many."""
        stmt = (
            update(INBOX)
            .where(INBOX.c.gave_up)
            .values(processed_at=None, gave_up=False, attempts=0, next_attempt_at=None)
            # RETURNING, not rowcount, as in `put`: every driver reports it the same way.
            .returning(INBOX.c.id)
        )
        if connection is not None:
            stmt = stmt.where(INBOX.c.connection == connection)
        async with self._db.scope(session) as s:
            return len((await s.execute(stmt)).all())

    @staticmethod
    def _not_requeued(
        missed: list[int], states: dict[int, datetime | None]
    ) -> StoreNotFoundError | StoreConflictError:
        """The error naming why each of `missed` could not be requeued: unknown, processed, or still pending."""
        reasons = []
        for event_id in missed:
            if event_id not in states:
                reasons.append(f"inbox event {event_id} does not exist")
            elif states[event_id] is None:
                reasons.append(f"inbox event {event_id} is still pending, not given up")
            else:
                reasons.append(f"inbox event {event_id} was processed, not given up")
        message = "nothing requeued: " + "; ".join(reasons)
        if any(event_id not in states for event_id in missed):
            return StoreNotFoundError(message)
        return StoreConflictError(message)

    async def prune_processed(self, before: datetime, *, session: AsyncSession | None = None) -> int:
        """Delete the events processed (successfully) before `before`; returns how many. Pending events and
        those given up (an operator may still retry them) stay."""
        stmt = delete(INBOX).where(INBOX.c.processed_at < before, INBOX.c.gave_up.is_(False))
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount

    async def mark_processed(self, ids: Iterable[int], *, session: AsyncSession | None = None) -> int:
        """Mark events done (in the session that commits their effects); returns how many changed."""
        id_list = list(ids)
        if not id_list:
            return 0
        stmt = (
            update(INBOX)
            .where(INBOX.c.id.in_(id_list), INBOX.c.processed_at.is_(None))
            .values(processed_at=utcnow(), next_attempt_at=None)
        )
        async with self._db.scope(session) as s:
            return cast(CursorResult[Any], await s.execute(stmt)).rowcount

    async def mark_failed(
        self,
        event_id: int,
        error: str,
        *,
        now: datetime | None = None,
        session: AsyncSession | None = None,
    ) -> InboxEvent:
        """Count a failed attempt and keep the reason: the event is due again after the back-off, or, at the
        policy's last attempt, given up. Returns the event as it now stands."""
        return await self._fail(event_id, error, now or utcnow(), give_up=False, session=session)

    async def give_up(
        self,
        event_id: int,
        error: str,
        *,
        now: datetime | None = None,
        session: AsyncSession | None = None,
    ) -> InboxEvent:
        """Count a failed attempt and stop retrying at once (an event that can never succeed)."""
        return await self._fail(event_id, error, now or utcnow(), give_up=True, session=session)

    async def _fail(
        self, event_id: int, error: str, now: datetime, *, give_up: bool, session: AsyncSession | None
    ) -> InboxEvent:
        """Count the attempt, then schedule the next one or give up, in one transaction."""
        count = (
            update(INBOX)
            .where(INBOX.c.id == event_id, INBOX.c.processed_at.is_(None))
            .values(attempts=INBOX.c.attempts + 1, last_error=error)
            .returning(INBOX.c.attempts)
        )
        async with self._db.scope(session) as s:
            attempts: int | None = (await s.execute(count)).scalar_one_or_none()
            if attempts is None:
                raise StoreNotFoundError(f"inbox event {event_id} does not exist or is no longer pending")
            # The count above holds the row's write lock, so the schedule below matches that count.
            if give_up or attempts >= self.retry.max_attempts:
                values: dict[str, Any] = {"processed_at": now, "gave_up": True, "next_attempt_at": None}
            else:
                values = {"next_attempt_at": now + self.retry.delay(attempts, self._draw())}
            schedule = update(INBOX).where(INBOX.c.id == event_id).values(**values).returning(*INBOX.c)
            return _event((await s.execute(schedule)).one())

