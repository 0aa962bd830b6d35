"""The inbox dispatcher: stored webhook events, grouped by connection and object, run through the pipeline
when a webhook wakes it and on a short safety interval; an event is done only once its records are applied
or parked. A failure leaves it pending, due again after a growing back-off, until the retry policy gives it up;
an event whose payload cannot be read is given up at once. Polling, the safety net, brings a given-up change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from syncd.connectors.base import ChangeEvent, Connector
from syncd.connectors.budget import webhook_work
from syncd.engine.context import side_object
from syncd.engine.reconcile import Reconciler, read_sides
from syncd.engine.scheduler import MappingLocks
from syncd.logs import get_logger
from syncd.store import Database, InboxEvent, InboxStore
from syncd.store.columns import utcnow
from syncd.store.inbox import InboxRetryPolicy
from syncd.web.events import event_from_payload
from syncd.web.metrics import Metrics

log = get_logger(__name__)

#: How many due events one round reads; the rest wait for the next round.
ROUND_LIMIT = 1000


@dataclass(frozen=True)
class InboxRound:
    """What one round over the inbox did."""

    processed: int = 0
    failed: int = 0  # events whose sync failed (retried after a back-off, or given up at their last attempt)
    deferred: int = 0  # left pending because a connection they need awaits re-authorisation
    gave_up: int = 0  # no longer retried: unreadable payloads, and failures at their last attempt


@dataclass
class _Tally:
    """What a round has done so far."""

    done: list[int] = field(default_factory=list)
    failed: int = 0
    deferred: int = 0
    gave_up: int = 0


@dataclass(frozen=True)
class _Group:
    """Pending events of one connection and one of its objects."""

    connection: str
    object: str
    events: tuple[tuple[InboxEvent, ChangeEvent], ...]


class InboxDispatcher:
    """Processes the inbox in rounds, each under the lock of every mapping it touches."""

    def __init__(
        self,
        db: Database,
        reconciler: Reconciler,
        locks: MappingLocks,
        *,
        usable: Callable[[str], bool] = lambda _connection: True,
        interval_s: float = 5.0,
        after_round: Callable[[], Awaitable[None]] | None = None,
        retry: InboxRetryPolicy | None = None,
        round_limit: int = ROUND_LIMIT,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self._inbox = InboxStore(db, retry)
        self._round_limit = round_limit
        self._clock = clock
        self._metrics = metrics
        self._reconciler = reconciler
        self._locks = locks
        self._usable = usable
        self._interval_s = interval_s
        self._after_round = after_round
        self._connectors: Mapping[str, Connector] = {c.name: c for c in reconciler.connectors.values()}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.rounds_completed = 0

    def wake(self, connection: str = "") -> None:
        """Start a round now (the webhook receiver calls this once events are stored)."""
        self._wake.set()

    def start(self) -> None:
        """Run rounds in the background: at once, then on every wake and every `interval_s`."""
        self._task = asyncio.create_task(self._loop(), name="inbox-dispatcher")

    async def stop(self, timeout_s: float | None = None) -> None:
        """Let the round in progress finish (cancelled after `timeout_s`: its events stay pending), then stop."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=timeout_s)
        if not done:
            log.error("inbox round did not finish in time; cancelling it", timeout_s=timeout_s)
            task.cancel()
            await asyncio.wait([task])

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                result = await self.run_round()
                if result.failed and self._after_round is not None:
                    # A failure may have been a grant dying: let the daemon see it now, not at its next check.
                    await self._after_round()
            except Exception as exc:
                # The store may be briefly unreachable; the events stay pending for the next round.
                log.exception("inbox round failed", error=str(exc))
            self.rounds_completed += 1
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)

    async def run_round(self) -> InboxRound:
        """One pass over the due events: each group fetched and synced, then marked processed, or failed (to
        be retried after its back-off, or given up); events still backing off are not read at all."""
        now = self._clock()
        # Events that could only be deferred are not even read, so that however many pile up behind a dead
        # grant they never fill a round and starve the other connections' events.
        pending = await self._inbox.pending(limit=self._round_limit, now=now, exclude=self._blocked())
        if not pending:
            return InboxRound()
        tally = _Tally()
        grouped: dict[tuple[str, str], list[tuple[InboxEvent, ChangeEvent]]] = {}
        for event in pending:
            if event.connection not in self._connectors:
                # The connection was removed or disabled since; when it is back, its polling catches up.
                log.warning("inbox event for a connection not enabled; dropped", connection=event.connection,
                            event_id=event.event_id)
                tally.done.append(event.id)
                continue
            try:
                change = event_from_payload(event.event_id, event.payload)
            except ValueError as exc:
                # It will never parse, however often it is tried.
                await self._fail(event, str(exc), now, tally, at_once=True)
                continue
            grouped.setdefault((event.connection, change.object), []).append((event, change))
        groups = [_Group(conn, obj, tuple(items)) for (conn, obj), items in grouped.items()]
        # Dependencies first: contacts before the deals and invoices that point at them.
        groups.sort(key=self._order)
        for group in groups:
            await self._process(group, now, tally)
        await self._inbox.mark_processed(tally.done)
        result = InboxRound(processed=len(tally.done), failed=tally.failed, deferred=tally.deferred,
                            gave_up=tally.gave_up)
        log.info("inbox round done", processed=result.processed, failed=result.failed, deferred=result.deferred,
                 gave_up=result.gave_up)
        return result

    async def _fail(self, event: InboxEvent, error: str, now: datetime, tally: _Tally, *, at_once: bool) -> None:
        """Record a failed attempt (giving up at once, or as the retry policy says) and say so if it gave up."""
        if at_once:
            changed = await self._inbox.give_up(event.id, error, now=now)
        else:
            changed = await self._inbox.mark_failed(event.id, error, now=now)
        if changed.gave_up:
            tally.gave_up += 1
            # Logged once: a given-up event is never pending again.
            log.error("inbox event given up; polling will bring its change", connection=event.connection,
                      event_id=event.event_id, attempts=changed.attempts, error=error)

    def _needed(self, mappings: Collection[str] | None = None, *, reading: str | None = None) -> set[str]:
        """The connections the given active mappings (or those whose systems include `reading`'s) write or read
        through."""
        system = self._connectors[reading].system if reading is not None else None
        chosen = [
            a.mapping for a in self._reconciler.mappings
            if (mappings is None or a.name in mappings)
            and (system is None or system in (a.mapping.crm_system, a.mapping.acc_system))
        ]
        return {c.name for c in self._connectors.values() for m in chosen if c.system in (m.crm_system, m.acc_system)}

    def _blocked(self) -> set[str]:
        """Connections read by a mapping that needs a connection awaiting re-authorisation: their events wait,
        unread, until it is back (an event of an object that mapping does not read waits too: delayed, never
        lost, and it keeps the rule simple)."""
        return {name for name in self._connectors if any(not self._usable(n) for n in self._needed(reading=name))}

    async def grant_restored(self, connection: str) -> int:
        """`connection` can be used again: the events that wait for it (its own, and those of the connections
        sharing a mapping with it) need not sit out their back-off; returns how many became due."""
        due = await self._inbox.retry_now(self._needed(reading=connection))
        self.wake()
        return due

    def _readers(self, connection: str, obj: str) -> list[str]:
        """The active mappings that copy changes from `connection`'s `obj`."""
        system = self._connectors[connection].system
        names = []
        for active in self._reconciler.mappings:
            for mapper in active.mapping.objects.values():
                for side in read_sides(mapper):
                    crm = side == "crm"
                    if (active.mapping.crm_system if crm else active.mapping.acc_system) == system and \
                            side_object(mapper, side) == obj and active.name not in names:
                        names.append(active.name)
        return names

    def _order(self, group: _Group) -> int:
        """A group's place in the dependency order of the mappings that read it."""
        system = self._connectors[group.connection].system
        places = [
            position
            for active in self._reconciler.mappings
            for position, name in enumerate(active.mapping.order)
            for side in read_sides(active.mapping.objects[name])
            if (active.mapping.crm_system if side == "crm" else active.mapping.acc_system) == system
            and side_object(active.mapping.objects[name], side) == group.object
        ]
        return min(places, default=0)

    async def _process(self, group: _Group, now: datetime, tally: _Tally) -> None:
        """Sync one group through every mapping that reads it, and count it done, failed or deferred."""
        readers = self._readers(group.connection, group.object)
        # `_blocked` kept these events out already; this catches a grant that died during the round.
        if any(not self._usable(name) for name in self._needed(readers)):
            tally.deferred += len(group.events)
            return
        system = self._connectors[group.connection].system
        changes = [change for _, change in group.events]
        try:
            for mapping in readers:
                # Webhook-driven: its calls (and its turn at the mapping's lock) go before polling's.
                with webhook_work():
                    async with self._locks.of(mapping):
                        report = await self._reconciler.sync_records(mapping, system, group.object, changes)
                # Counted as it happened: a later mapping failing does not undo this one's writes.
                if self._metrics is not None:
                    self._metrics.count_sync("webhook", mapping, group.object,
                                             report.tallied(), report.error_count)
                log.info("webhook changes synced", mapping=mapping, connection=group.connection,
                         object=group.object, records=len({c.record_id for c in changes}),
                         counts=report.counts())
        except Exception as exc:
            # Whatever went wrong (vendor outage, store hiccup, a bug), the events stay pending with the reason
            # and are tried again once their back-off has passed (or polling, the safety net, brings the change).
            log.warning("webhook changes not synced; will retry after a back-off", connection=group.connection,
                        object=group.object, error=str(exc))
            tally.failed += len(group.events)
            for event, _ in group.events:
                await self._fail(event, str(exc), now, tally, at_once=False)
            return
        tally.done.extend(event.id for event, _ in group.events)
