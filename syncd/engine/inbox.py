"""The inbox dispatcher: stored webhook events, grouped by connection and object, run through the pipeline
when a webhook wakes it and on a short safety interval; an event is done only once its records are applied
or parked, and a failure leaves it pending to be tried again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from syncd.connectors.base import ChangeEvent, Connector
from syncd.engine.context import side_object
from syncd.engine.reconcile import Reconciler, read_sides
from syncd.engine.scheduler import MappingLocks
from syncd.logs import get_logger
from syncd.store import Database, InboxEvent, InboxStore
from syncd.web.events import event_from_payload

log = get_logger(__name__)

#: How many pending events one round reads; the rest wait for the next round.
ROUND_LIMIT = 1000


@dataclass(frozen=True)
class InboxRound:
    """What one round over the inbox did."""

    processed: int = 0
    failed: int = 0
    deferred: int = 0  # left pending because a connection they need awaits re-authorisation


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
    ) -> None:
        self._inbox = InboxStore(db)
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

    async def stop(self) -> None:
        """Let the round in progress finish, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

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
        """One pass over the pending events: each group fetched and synced, then marked processed or failed."""
        pending = await self._inbox.pending(limit=ROUND_LIMIT)
        if not pending:
            return InboxRound()
        done: list[int] = []
        failed = deferred = 0
        grouped: dict[tuple[str, str], list[tuple[InboxEvent, ChangeEvent]]] = {}
        for event in pending:
            if event.connection not in self._connectors:
                # The connection was removed or disabled since; when it is back, its polling catches up.
                log.warning("inbox event for a connection not enabled; dropped", connection=event.connection,
                            event_id=event.event_id)
                done.append(event.id)
                continue
            try:
                change = event_from_payload(event.event_id, event.payload)
            except ValueError as exc:
                await self._inbox.mark_failed(event.id, str(exc))
                failed += 1
                continue
            grouped.setdefault((event.connection, change.object), []).append((event, change))
        groups = [_Group(conn, obj, tuple(items)) for (conn, obj), items in grouped.items()]
        # Dependencies first: contacts before the deals and invoices that point at them.
        groups.sort(key=self._order)
        for group in groups:
            outcome = await self._process(group)
            if outcome == "done":
                done.extend(event.id for event, _ in group.events)
            elif outcome == "failed":
                failed += len(group.events)
            else:
                deferred += len(group.events)
        await self._inbox.mark_processed(done)
        result = InboxRound(processed=len(done), failed=failed, deferred=deferred)
        log.info("inbox round done", processed=result.processed, failed=result.failed, deferred=result.deferred)
        return result

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

    async def _process(self, group: _Group) -> str:
        """Sync one group through every mapping that reads it: `done`, `failed` or `deferred`."""
        readers = self._readers(group.connection, group.object)
        needed = {
            c.name
            for active in self._reconciler.mappings
            if active.name in readers
            for c in self._reconciler.connectors.values()
            if c.system in (active.mapping.crm_system, active.mapping.acc_system)
        }
        if any(not self._usable(name) for name in needed):
            return "deferred"
        system = self._connectors[group.connection].system
        changes = [change for _, change in group.events]
        try:
            for mapping in readers:
                async with self._locks.of(mapping):
                    report = await self._reconciler.sync_records(mapping, system, group.object, changes)
                log.info("webhook changes synced", mapping=mapping, connection=group.connection,
                         object=group.object, records=len({c.record_id for c in changes}),
                         counts=report.counts())
        except Exception as exc:
            # Whatever went wrong (vendor outage, store hiccup, a bug), the events stay pending with the reason,
            # and the next round (or polling, the safety net) brings the change.
            log.warning("webhook changes not synced; will retry", connection=group.connection,
                        object=group.object, error=str(exc))
            for event, _ in group.events:
                await self._inbox.mark_failed(event.id, str(exc))
            return "failed"
        return "done"
