"""Writing a planned batch to both systems (creates, then updates), then committing what was written: links
bound, bases moved, conflicts opened, audit rows and dead letters, in one transaction; a write a system refused
is reported as an error with the system's code and message, never as the create or update it was meant to be."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from syncd.connectors.base import Create, Record, Update, WriteOutcome
from syncd.engine.context import describe, jsonable, other, side_object
from syncd.engine.failures import Refusal, as_error
from syncd.engine.journal import Journalled, journal_updates, status_entry
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import SIDES, Batch, CreateWork, PairWork
from syncd.engine.plan import PlannedAction
from syncd.engine.signals import announce_conflicts
from syncd.engine.snapshot import decode_base, encode_base, encode_value
from syncd.engine.taken_names import choose_free_names, rename_taken
from syncd.engine.unchanged import settled_create, settled_read, settled_write
from syncd.errors import ConnectorError, DuplicateError, FatalError, SkippableError
from syncd.mapping.spec import Side
from syncd.store import Conflict, ConnectionStore, JournalEntry, JournalOwner, Link, StoreConflictError
from syncd.store.columns import utcnow
from syncd.store.links import SeenStamps

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Created = tuple[CreateWork, WriteOutcome]
Updated = tuple[PairWork, Side, WriteOutcome]


class BatchWriter:
    """Writes one object's planned batches and commits them."""

    def __init__(self, scope: ObjectRun) -> None:
        self.scope = scope
        self.run = scope.run
        self.mapper = scope.mapper
        # Conflicts the batch being committed opened or refreshed, announced once the commit succeeded.
        self.opened: list[tuple[Link, Conflict]] = []

    async def write(self, batch: Batch) -> None:
        """Create and update on each side through its batch endpoints, then commit the batch."""
        # The batch owns its journal rows until it ends: a later pass resolves those it leaves pending (a
        # process dying, or a failure, before the commit) only then, never while it is still writing.
        async with self.run.stores.journal.owning() as owner:
            created = await self._create(await self._intend(batch.creates))
            # Journalled before they are sent: a process dying before the commit leaves them for the next pass.
            journal = await journal_updates(self.scope, batch.pairs, owner)
            updated = await self._update(batch.pairs)
            marked = await self._reach_statuses(created, owner)
            await self._commit(batch, created, updated, journal, marked)

    async def _intend(self, creates: Sequence[CreateWork]) -> list[CreateWork]:
        """The pending links (intents) of the batch's new creates, written together before anything is created,
        so that a crash never creates twice; a create whose record another link holds is dropped, reported."""
        new = [w for w in creates if w.link is None]
        if not new:
            return list(creates)
        run = self.run
        intents = [
            (w.source.id, None, w.reference) if w.target == "accounting" else (None, w.source.id, w.reference)
            for w in new
        ]
        held = await run.stores.links.intend_many(
            run.name, self.scope.obj, run.mapping.crm_system, run.mapping.acc_system, intents,
            bases=[encode_base(w.base) for w in new],
        )
        out: list[CreateWork] = []
        for work in creates:
            if work.link is not None:
                out.append(work)
            elif (link := held.get(work.reference)) is not None:
                out.append(replace(work, link=link))
            else:
                if work.reported is not None:
                    run.settle(work.reported, None)
                self.scope.skip(work.source, "another link already holds this record")
        return out

    async def _create(self, creates: Sequence[CreateWork]) -> list[Created]:
        """Each side's creates in one batch call; the outcomes in the order of the work."""
        created: list[Created] = []
        for side in SIDES:
            items = [w for w in creates if w.target == side]
            if not items:
                continue
            send = partial(self._send_creates, side)
            items = choose_free_names(self.scope, side, items)  # a first sync knows the names held there
            outcomes = await send(items)
            # A create refused for a taken unique name is tried again under the mapping's alternatives.
            created.extend(await rename_taken(self.scope, side, list(zip(items, outcomes, strict=True)), send))
        return created

    async def _send_creates(self, side: Side, items: Sequence[CreateWork]) -> Sequence[WriteOutcome]:
        """One batch call creating `items` on `side`."""
        run = self.run
        connector = run.connector(side)
        obj = side_object(self.mapper, side)
        outcomes = await connector.create_many(obj, [Create(w.reference, w.fields) for w in items])
        if run.hooks.after_create is not None:
            run.hooks.after_create(connector.system, obj, outcomes)
        return outcomes

    async def _update(self, pairs: Sequence[PairWork]) -> list[Updated]:
        """Each side's updates in one batch call; the outcomes with the pair and side they concern."""
        updated: list[Updated] = []
        for side in SIDES:
            writing = [p for p in pairs if side in p.writes]
            if not writing:
                continue
            updates = [Update(p.record(side).id, p.writes[side]) for p in writing]
            outcomes = await self.run.connector(side).update_many(side_object(self.mapper, side), updates)
            updated.extend((p, side, o) for p, o in zip(writing, outcomes, strict=True))
        return updated

    async def _reach_statuses(self, created: Sequence[Created], owner: JournalOwner) -> list[int]:
        """Move the records created on to the status they were planned with (the create makes the system's
        initial one, a draft), by the system's action; only when the mapping says `mark_sent`. Each action is
        journalled first (one statement for the batch), like a void; the rows of actions made, to complete at
        the commit (those refused are dropped: nothing was written)."""
        moving: list[tuple[CreateWork, str, str, JournalEntry]] = []
        for work, outcome in created:
            made_or_found = outcome.ok or isinstance(outcome.error, DuplicateError)
            if not work.after_status or outcome.id is None or not made_or_found:
                continue
            obj = side_object(self.mapper, work.target)
            moved = self.run.connector(work.target).action_fields[obj]
            entry = status_entry(self.scope, work.target, outcome.id, moved.field, moved.initial, work.after_status,
                                 describe(work.source), work.link.id if work.link is not None else None)
            moving.append((work, obj, outcome.id, entry))
        journal = self.run.stores.journal
        rows = await journal.open_many([entry for *_, entry in moving], owner=owner)
        made: list[int] = []
        for (work, obj, record_id, _), row in zip(moving, rows, strict=True):
            assert work.after_status is not None
            try:
                await self.run.connector(work.target).act(obj, record_id, work.after_status)
            except SkippableError as exc:
                self.run.errors.append(f"{describe(work.source)}: could not mark {obj} {work.after_status}: {exc}")
                await journal.discard([row])
            else:
                made.append(row)
        return made

    # --- commit --------------------------------------------------------------------------------------
    async def _commit(
        self,
        batch: Batch,
        created: Sequence[Created],
        updated: Sequence[Updated],
        journal: Journalled,
        marked: Sequence[int] = (),
    ) -> None:
        """Links, bases, conflicts, audit rows and dead letters of the batch, in one transaction; the report's
        actions settled by what the systems answered. The journal rows of the updates and status actions made
        are completed with it (one statement), those of refused updates dropped (nothing was written)."""
        if not (created or batch.pairs or batch.seen):
            return
        refused: dict[int, dict[Side, ConnectorError]] = {}
        written: dict[tuple[int, Side], WriteOutcome] = {}
        done: list[int] = list(marked)
        dropped: list[int] = []
        for pair, side, outcome in updated:
            written[(id(pair), side)] = outcome
            if outcome.error is not None:
                refused.setdefault(id(pair), {})[side] = outcome.error
            if (row := journal.get((id(pair), side))) is not None:
                (dropped if outcome.error is not None else done).append(row)
        if self.run.hooks.before_commit is not None:
            self.run.hooks.before_commit(self.scope.obj)
        started, self.opened = utcnow(), []
        async with self.run.stores.db.transaction() as session:
            await self.run.stores.journal.complete(done, session=session)
            await self.run.stores.journal.discard(dropped, session=session)
            await self._commit_creates(session, created)
            for pair in batch.pairs:
                seen: SeenStamps = {
                    side: (
                        self._written_stamp(side, w)
                        if (w := written.get((id(pair), side))) and (side, pair.record(side).id) in batch.checked
                        else self._read_stamp(side, pair.record(side).modified_at)
                    )
                    for side in SIDES
                }
                await self._commit_pair(session, pair, refused.get(id(pair), {}), seen)
            stamps = [(i, side, t) for i, side, stamp in batch.seen if (t := self._read_stamp(side, stamp))]
            await self.run.stores.links.mark_seen(stamps, session=session)
        announce_conflicts(self.run.name, self.scope.obj, self.opened, since=started)

    def _created_seen(self, work: CreateWork, outcome: WriteOutcome) -> SeenStamps:
        """The stamps a created pair's link keeps: the source as read, the new record as its create answered."""
        return {
            other(work.target): self._read_stamp(other(work.target), work.source.modified_at),
            work.target: settled_create(outcome.modified_at, self.run.stamp_resolution(work.target), outcome.existed),
        }

    def _read_stamp(self, side: Side, stamp: datetime) -> datetime | None:
        """A stamp read in this run, as the seen stamp to keep (see `settled_read`)."""
        return settled_read(stamp, self.run.stamp_resolution(side), self.run.read_from(side))

    def _written_stamp(self, side: Side, outcome: WriteOutcome) -> datetime | None:
        """A write answer's stamp, as the seen stamp to keep (see `settled_write`)."""
        return settled_write(outcome.modified_at, self.run.stamp_resolution(side))

    async def _commit_creates(self, session: AsyncSession, created: Sequence[Created]) -> None:
        """Bind the batch's creates: those made plainly together (one statement each for the links, the audit
        rows and the dead letters cleared), the rest (refused, duplicates, a record held elsewhere) one by one."""
        plain = [(w, o) for w, o in created if o.ok and o.id is not None and w.link is not None]
        ids = [o.id for _, o in plain]
        if len(set(ids)) != len(ids):
            plain = []  # two creates answered with one record: each is bound on its own, to tell which
        bound: set[int] = set()
        if plain:
            try:
                async with session.begin_nested():
                    await self._bind_together(session, plain)
                bound = {id(w) for w, _ in plain}
            except StoreConflictError:
                pass  # a record already held by another link: one by one, each told apart
        for work, outcome in created:
            if id(work) not in bound:
                await self._commit_create(session, work, outcome)

    async def _bind_together(self, session: AsyncSession, plain: Sequence[Created]) -> None:
        """Links, audit rows and cleared dead letters of creates made plainly, in one statement each."""
        run, scope = self.run, self.scope
        binds: list[tuple[int, str | None, str | None, dict[str, Any], SeenStamps]] = []
        audits: list[tuple[str, str, str, dict[str, Any], dict[str, Any], str]] = []
        sources: dict[Side, list[str]] = {}
        for work, outcome in plain:
            assert work.link is not None and outcome.id is not None
            crm_id, acc_id = (outcome.id, None) if work.target == "crm" else (None, outcome.id)
            binds.append((work.link.id, crm_id, acc_id, encode_base(work.base), self._created_seen(work, outcome)))
            audits.append((run.system(work.target), side_object(self.mapper, work.target), outcome.id, {},
                           jsonable(work.fields), scope.cause(f"created from {describe(work.source)}")))
            sources.setdefault(other(work.target), []).append(work.source.id)
        await run.stores.links.bind_many(binds, session=session)
        await run.stores.audit.record_many(audits, session=session)
        for side, record_ids in sources.items():
            await run.stores.dead_letters.clear_many(run.name, scope.obj, side, record_ids, session=session)

    async def _commit_create(self, session: AsyncSession, work: CreateWork, outcome: WriteOutcome) -> None:
        """Bind a create's pending link to the record made (or found a duplicate), or park its source."""
        scope = self.scope
        target_id = outcome.id
        if not outcome.ok and isinstance(outcome.error, DuplicateError) and outcome.error.existing_id:
            target_id = outcome.error.existing_id
        elif outcome.error is not None or target_id is None:
            error = outcome.error or FatalError(
                "the create was answered without a record id", connection=self.run.connector(work.target).name
            )
            refusal = Refusal.of(error, self.run.connector(work.target))
            target_object = side_object(self.mapper, work.target)
            reason = refusal.reason(f"the create of {target_object} for {describe(work.source)}")
            if refusal.error_class == "validation" and work.link is not None:
                # Refused outright, so nothing was created: no intent to look up on every pass while the
                # record waits for a change (a create is keyed by its reference, so a repeat stays single).
                await self.run.stores.links.unbind(work.link.id, session=session)
            await self._refused(session, work.reported, other(work.target), work.source, refusal, reason)
            return
        if not await self._bind_created(session, work, target_id, self._created_seen(work, outcome)):
            return
        await self.run.stores.audit.record(
            self.run.system(work.target),
            side_object(self.mapper, work.target),
            target_id,
            {},
            jsonable(work.fields),
            scope.cause(f"created from {describe(work.source)}"),
            session=session,
        )
        await self.run.stores.dead_letters.clear(
            self.run.name, scope.obj, other(work.target), work.source.id, session=session
        )

    async def _refused(
        self,
        session: AsyncSession,
        planned: PlannedAction | None,
        side: Side,
        record: Record,
        refusal: Refusal,
        reason: str,
        *,
        counterpart: Record | None = None,
        earlier_attempts: int = 0,
    ) -> None:
        """A write the system refused: reported as an error (never as the create or update it was meant to
        be), the record parked as the refusal's class decides, its connection paused if our grant was refused."""
        if planned is not None:
            self.run.settle(planned, as_error(planned, reason))
        await self.scope.park_in(
            session, side, record, reason, retry=refusal, counterpart=counterpart, earlier_attempts=earlier_attempts
        )
        if refusal.error_class == "authorisation" and refusal.connection:
            # The daemon pauses the jobs of a connection needing re-authorisation until `syncd auth` renews it.
            connections = ConnectionStore(self.run.stores.db)
            await connections.ensure(refusal.connection, refusal.system, session=session)
            await connections.set_status(refusal.connection, "needs_reauth", reason, session=session)

    async def _bind_created(
        self, session: AsyncSession, work: CreateWork, target_id: str, seen: SeenStamps
    ) -> bool:
        """Bind the pending link to `target_id`; False (the source parked) when another link holds it."""
        run, stores = self.run, self.run.stores
        assert work.link is not None
        crm_id, acc_id = (target_id, None) if work.target == "crm" else (None, target_id)
        try:
            async with session.begin_nested():
                await stores.links.bind(
                    work.link.id, crm_id=crm_id, acc_id=acc_id, base=encode_base(work.base), seen=seen,
                    session=session,
                )
        except StoreConflictError:
            # The system said the record exists (a duplicate) and that record already belongs to
            # another link: two of our records are one of theirs. Never guess which; a person merges.
            await stores.links.unbind(work.link.id, session=session)
            reason = (
                f"{run.system(work.target)} {side_object(self.mapper, work.target)} {target_id} is "
                "already linked to another record: merge the duplicates, then it links"
            )
            self.scope.skip(work.source, reason)
            await self.scope.park_in(session, other(work.target), work.source, reason, retry=False)
            return False
        return True

    async def _commit_pair(
        self, session: AsyncSession, pair: PairWork, refused: Mapping[Side, ConnectorError], seen: SeenStamps
    ) -> None:
        """Link (or move the base of) a pair whose writes succeeded, with its conflicts and audit rows;
        report and park its source record if a system refused a write."""
        scope, stores = self.scope, self.run.stores
        if refused:
            await self._pair_refused(session, pair, refused)
            return
        link = await self._bind_pair(session, pair, seen)
        if link is None:
            return
        for conflict_id in pair.reopened_conflicts:
            # Before the notes below, so that the move's note refreshes this conflict instead of adding one.
            await stores.conflicts.reopen(conflict_id, session=session)
        for note in pair.conflicts:
            conflict = await stores.conflicts.open_conflict(
                link.id,
                note.field,
                encode_value(note.base),
                encode_value(note.crm),
                encode_value(note.acc),
                session=session,
            )
            self.opened.append((link, conflict))
        await stores.conflicts.mark_applied(pair.applied_conflicts, session=session)
        for side in SIDES:
            # Either record may hold the pair's letter: the pair is in step now, whichever side was read.
            await stores.dead_letters.clear(
                self.run.name, scope.obj, side, pair.record(side).id, session=session
            )

    async def _pair_refused(
        self, session: AsyncSession, pair: PairWork, refused: Mapping[Side, ConnectorError]
    ) -> None:
        """A pair a system refused to write: each refused write is an error, nothing is linked, and the pair is
        parked (the side written anyway keeps its audit row: its journal row is completed)."""
        if "link" in pair.reported:
            self.run.settle(pair.reported["link"], None)  # a first link is made only with its writes
        refusals = [(side, Refusal.of(error, self.run.connector(side))) for side, error in refused.items()]
        # A record refused as it is on one side but for now on the other is tried again when the wait is over.
        governing = max(refusals, key=lambda found: found[1].error_class != "validation")[1]
        reasons = []
        for side, refusal in refusals:
            target = pair.record(side)
            reason = refusal.reason(f"the update of {target.object} {target.id}")
            reasons.append(reason)
            if side in pair.reported:
                self.run.settle(pair.reported[side], as_error(pair.reported[side], reason))
        # One letter per pair, on the record read (the side its retry reads again): a letter the pair got
        # when read from the other side is taken over, its attempts counted on.
        source_side, counterpart_side = pair.source_side, other(pair.source_side)
        source, counterpart = pair.record(source_side), pair.record(counterpart_side)
        earlier = await self.run.stores.dead_letters.take(
            self.run.name, self.scope.obj, counterpart_side, counterpart.id, counterpart_id=source.id,
            session=session,
        )
        await self._refused(
            session, None, source_side, source, governing, "; ".join(reasons), counterpart=counterpart,
            earlier_attempts=earlier.attempts if earlier is not None else 0,
        )

    async def _bind_pair(self, session: AsyncSession, pair: PairWork, seen: SeenStamps) -> Link | None:
        """The pair's link with its new base and stamps: made now for a first-time pair, or None (the source
        parked) when the match already belongs to another link."""
        link = pair.link
        if link is None:
            return await self._link_first(session, pair, seen)
        if dict(pair.base) != decode_base(link.base) or pair.writes:
            return await self.run.stores.links.update_base(
                link.id, encode_base(pair.base), link.version, seen=seen, session=session
            )
        stamps = [(link.id, side, t) for side, t in seen.items() if t is not None and t != link.seen_at(side)]
        await self.run.stores.links.mark_seen(stamps, session=session)
        return link

    async def _link_first(self, session: AsyncSession, pair: PairWork, seen: SeenStamps) -> Link | None:
        """A first-time pair's link, made and bound at once; None (the source parked) on a duplicate."""
        run, stores = self.run, self.run.stores
        try:
            async with session.begin_nested():
                link = await stores.links.intend(
                    run.name,
                    self.scope.obj,
                    run.mapping.crm_system,
                    pair.crm_id,
                    run.mapping.acc_system,
                    pair.acc_id,
                    pair.reference,
                    session=session,
                )
                return await stores.links.bind(link.id, base=encode_base(pair.base), seen=seen, session=session)
        except StoreConflictError:
            # The match is already linked to another record of ours: duplicates, not a pair.
            match = pair.crm_id if pair.source_side == "accounting" else pair.acc_id
            reason = (
                f"its match {match} is already linked to another record: merge the duplicates, "
                "then it links"
            )
            source_record = pair.record(pair.source_side)
            self.scope.skip(source_record, reason)
            await self.scope.park_in(session, pair.source_side, source_record, reason, retry=False)
            return None
