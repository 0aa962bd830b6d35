"""One reconcile pass: every active mapping and object in dependency order, from stored cursors."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syncd.connectors.base import ChangeEvent, Connector, Deletion, Page, Record
from syncd.engine.action_log import DEFAULT_KEPT, ActionLog
from syncd.engine.context import (
    RECHECK_AFTER,
    LifecyclePolicy,
    MappingRun,
    PipelineHooks,
    Stores,
    describe,
    jsonable,
    other,
    side_id,
    side_object,
)
from syncd.engine.history import activate
from syncd.engine.journal import recover_writes
from syncd.engine.match_index import FullRead, MatchIndex
from syncd.engine.pairs import ReadCause
from syncd.engine.pipeline import ObjectPipeline
from syncd.engine.plan import PlannedAction, SyncReport, merge_reports
from syncd.engine.progress import PassObserver, SilentObserver
from syncd.engine.snapshot import decode_base, encode_base
from syncd.engine.sweep import Sweep, record_sweep, sweep_from
from syncd.engine.targets import TargetLocks, creation_targets
from syncd.engine.unchanged import settled_read
from syncd.engine.vanished import find_vanished
from syncd.errors import ConnectorError, SkippableError
from syncd.logs import get_logger
from syncd.mapping.compiled import CompiledMapping, ObjectMapper, writes_to
from syncd.mapping.spec import Side
from syncd.store import Database, Link, StoreConflictError, StoreError
from syncd.store.columns import utcnow

log = get_logger(__name__)


@dataclass(frozen=True)
class ActiveMapping:
    """A compiled mapping file and the name its links and cursors are kept under (the file's `name`)."""

    name: str
    mapping: CompiledMapping


def read_sides(mapper: ObjectMapper) -> tuple[Side, ...]:
    """The sides whose changes matter to an object: those its direction copies from."""
    sides: list[Side] = []
    if mapper.direction != "accounting_to_crm":
        sides.append("crm")
    if mapper.direction != "crm_to_accounting":
        sides.append("accounting")
    return tuple(sides)


def cursor_key(mapping: str, mapper: ObjectMapper, side: Side) -> str:
    """Cursor name per mapping × object × side, so two mappings reading one system never share a cursor."""
    return f"{mapping}:{mapper.name}:{side_object(mapper, side)}"


@dataclass
class Reconciler:
    """Runs reconcile passes over the active mappings with one connector per system."""

    db: Database
    mappings: Sequence[ActiveMapping]
    connectors: Mapping[str, Connector]  # by system name, as registered
    overlap: timedelta = timedelta(seconds=120)
    # How often a system's deletions are listed by poll (their lists cost calls even when nothing changed);
    # merges and recycle bins come with the change read itself where the API allows, deletions by webhook at once.
    deletion_sweep: timedelta = timedelta(hours=1)
    batch_size: int = 100
    hooks: PipelineHooks = field(default_factory=PipelineHooks)
    policy: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    retry_after: timedelta = timedelta(seconds=60)
    recheck_after: timedelta = RECHECK_AFTER
    # Shared by every mapping: two mappings creating on one target (two CRMs into one organisation) take turns.
    targets: TargetLocks = field(default_factory=TargetLocks)
    # Told how a pass goes, object by object (a command shows it as progress); the daemon's passes go unwatched.
    observer: PassObserver = field(default_factory=SilentObserver)
    # How many actions of a pass its report holds in full (every one is counted).
    kept_actions: int = DEFAULT_KEPT

    async def _sync_batch(
        self, pipeline: ObjectPipeline, side: Side, records: Sequence[Record], why: ReadCause = "poll"
    ) -> None:
        """One batch through the pipeline, holding the targets it may match and create on until it committed."""
        targets = creation_targets(pipeline.run.mapping, pipeline.mapper, side)
        pipeline.run.actions.mark()
        async with self.targets.hold(targets, pipeline.run.name):
            await pipeline.sync(side, records, why=why)
        self.observer.batch_synced(pipeline.run.name, pipeline.mapper.name, len(records),
                                   pipeline.run.actions.recent)

    async def run_pass(self, *, dry_run: bool = False) -> SyncReport:
        """One pass over every mapping; with `dry_run` it plans and writes nothing (not even the store)."""
        stores = Stores.on(self.db)
        reports = []
        for active in self.mappings:
            run = MappingRun(
                active.name,
                active.mapping,
                self._connector(active.mapping.crm_system),
                self._connector(active.mapping.acc_system),
                stores,
                dry_run=dry_run,
                hooks=self.hooks,
                target_locks=self.targets,
                policy=self.policy,
                retry_after=self.retry_after,
                recheck_after=self.recheck_after,
                actions=ActionLog(self.kept_actions),
            )
            if not dry_run:
                await activate(run)  # the mapping's history ends at its first pass (default `sync_from`)
                await self._recover_pending(run)
                await recover_writes(run)
            for name in active.mapping.order:
                self.observer.object_started(active.name, name)
                try:
                    await self._sync_object(run, active.mapping.objects[name])
                except (ConnectorError, StoreError) as exc:
                    # The object stops here (its cursor stays where it was); the other objects go on.
                    log.warning("object sync failed", mapping=active.name, object=name, error=str(exc))
                    run.errors.append(f"{active.name}:{name}: {exc}")
                self.observer.object_finished(active.name, name)
            reports.append(run.actions.report(run.errors, dry_run=dry_run))
        return merge_reports(reports, dry_run=dry_run)

    def _connector(self, system: str) -> Connector:
        if system not in self.connectors:
            raise StoreError(f"no connection for system {system!r}: add one to the config")
        return self.connectors[system]

    async def _sync_object(self, run: MappingRun, mapper: ObjectMapper) -> None:
        pipeline = ObjectPipeline(run, mapper)
        if not run.dry_run:
            await self._retry_parked(run, mapper, pipeline)
        await self._apply_resolutions(run, mapper, pipeline)
        for side in read_sides(mapper):
            await self._read_changes(run, mapper, pipeline, side)

    async def _read_changes(
        self, run: MappingRun, mapper: ObjectMapper, pipeline: ObjectPipeline, side: Side
    ) -> None:
        """Changed records of one side in batches; the cursor moves only after each batch is committed."""
        connector = run.connector(side)
        obj = side_object(mapper, side)
        key = cursor_key(run.name, mapper, side)
        stored = await run.stores.cursors.get(connector.name, key)
        since = datetime.fromisoformat(stored) if stored else None
        deletions: Sequence[Deletion] | None = None
        swept_lately = False
        if since is not None:
            # Deletions and merges first, so a merge survivor is found linked instead of looking new.
            started = utcnow()
            sweep_since = await sweep_from(run.stores.cursors, connector.name, key, since, self.deletion_sweep,
                                           started)
            swept_lately = sweep_since is None
            if sweep_since is not None:
                deletions = await connector.deletions(obj, sweep_since - self.overlap)
                removed = [
                    Record(connector.system, d.object, d.id, {}, d.deleted_at, True, d.merged_into)
                    for d in deletions or ()
                ]
                if removed:
                    await self._sync_batch(pipeline, side, removed)
                if deletions is not None and not run.dry_run:
                    await record_sweep(run.stores.cursors, connector.name, key, Sweep(started, since))
        expected = 0
        if since is not None:
            # The records syncd saw lately on this side are in the window: a hint the connector may page by.
            expected = await run.stores.links.count_seen_since(
                run.name, mapper.name, side, run.system(side), since - self.overlap
            )
        pages: AsyncIterator[Page] = connector.changes(obj, since, self.overlap, expected)
        if since is None and mapper.match_keys:
            pages = await self._first_read(run, mapper, side)
        async for page in pages:
            records = list(page.records)
            self.observer.records_read(run.name, mapper.name, len(records))
            # Records deleted or merged away that come with the changes (a merge survivor names those it
            # absorbed) go first, in batches of their own: the survivor's link has moved when it is planned.
            removed = [r for r in records if r.deleted or r.merged_into is not None]
            kept = [r for r in records if not (r.deleted or r.merged_into is not None)] if removed else records
            for group in (removed, kept):
                for start in range(0, len(group), self.batch_size):
                    await self._sync_batch(pipeline, side, group[start : start + self.batch_size])
            if not run.dry_run:
                await run.stores.cursors.set(connector.name, key, page.cursor.isoformat())
        if since is not None and deletions is None and not swept_lately:
            # The system lists no deletions: check the linked records whose referenced records changed.
            vanished = await find_vanished(run, mapper, side)
            if vanished:
                await self._sync_batch(pipeline, side, vanished)

    async def _first_read(self, run: MappingRun, mapper: ObjectMapper, side: Side) -> AsyncIterator[Page]:
        """A side read for the first time, whole, with both sides indexed by match key: first-time linking
        then compares in memory instead of looking each record up (the other side's read is kept for its own
        first read in this pass, so each side is read once). The side's own index is lean (ids by key) and
        holds only the keys the other side holds (it is asked only who else holds those): its records wait
        packed in the read until synced."""
        own = run.full_reads.pop((mapper.name, side), None)
        if own is None:
            own = await self._read_whole(run, mapper, side)
        there = other(side)
        if (mapper.name, there) not in run.match_indexes:
            whole = await self._read_whole(run, mapper, there)
            run.match_indexes[(mapper.name, there)] = MatchIndex.of(mapper, there, whole.records)
            run.full_reads[(mapper.name, there)] = whole
        run.match_indexes[(mapper.name, side)] = MatchIndex.of(
            mapper, side, own.records, lean=True, among=run.match_indexes[(mapper.name, there)]
        )
        self._estimate_creates(run, mapper, side)

        async def pages() -> AsyncIterator[Page]:
            while (page := own.pop()) is not None:
                yield page  # and let it go once synced

        return pages()

    @staticmethod
    def _estimate_creates(run: MappingRun, mapper: ObjectMapper, side: Side) -> None:
        """Say up front whether the creates a first sync needs on the other side fit that connection's budget
        today (its rate limiter logs the estimate: a warning, with the days it takes, when they do not)."""
        there = other(side)
        if not mapper.create.may_create_on(there):
            return
        unmatched = run.match_indexes[(mapper.name, side)].unmatched_in(run.match_indexes[(mapper.name, there)])
        connector = run.connector(there)
        estimate = getattr(getattr(connector, "limiter", None), "estimate", None)
        per_call = getattr(connector, "create_batch", 1)
        if unmatched and callable(estimate) and isinstance(per_call, int):
            estimate(math.ceil(unmatched / per_call))

    async def _read_whole(self, run: MappingRun, mapper: ObjectMapper, side: Side) -> FullRead:
        """Every record of one side of an object, as a first read pages through them."""
        whole = FullRead()
        async for page in run.connector(side).changes(side_object(mapper, side), None, self.overlap):
            whole.add(page)
        return whole

    async def _retry_parked(self, run: MappingRun, mapper: ObjectMapper, pipeline: ObjectPipeline) -> None:
        """Records parked with a retry time that has come: read them again and run them through."""
        due = [
            d
            for d in await run.stores.dead_letters.due(limit=1000)
            if d.mapping == run.name and d.object == mapper.name
        ]
        for side in ("crm", "accounting"):
            ids = [d.record_id for d in due if d.side == side]
            if not ids:
                continue
            found = await run.connector(side).get_many(side_object(mapper, side), ids)
            for missing in set(ids) - set(found):
                await run.stores.dead_letters.clear(run.name, mapper.name, side, missing)
            if found:
                await self._sync_batch(pipeline, side, list(found.values()), why="announced")

    async def _apply_resolutions(
        self, run: MappingRun, mapper: ObjectMapper, pipeline: ObjectPipeline
    ) -> None:
        """Links with a resolved conflict not yet written: re-read them so the pipeline applies the value."""
        if run.dry_run:
            return
        for conflict in await run.stores.conflicts.resolved_unapplied():
            link = await run.stores.links.get(conflict.link_id)
            if link.mapping != run.name or link.object != mapper.name:
                continue
            side: Side = "crm" if link.crm_id is not None else "accounting"
            record_id = side_id(link, side)
            assert record_id is not None
            found = await run.connector(side).get_many(side_object(mapper, side), [record_id])
            if record_id in found:
                await self._sync_batch(pipeline, side, [found[record_id]], why="resolution")

    async def _recover_pending(self, run: MappingRun) -> None:
        """Pending creates from an interrupted pass: bind each to the record its reference finds, if any. The
        references of one object and target are looked up together (one pass over the target at most)."""
        groups: dict[tuple[str, Side], list[Link]] = {}
        for link in await run.stores.links.pending():
            if link.mapping != run.name or link.object not in run.mapping.objects:
                continue
            target: Side = "accounting" if link.acc_id is None else "crm"
            if run.mapping.objects[link.object].create.ref_field(target) is not None:
                groups.setdefault((link.object, target), []).append(link)
        for (name, target), links in groups.items():
            mapper = run.mapping.objects[name]
            ref_field = mapper.create.ref_field(target)
            assert ref_field is not None
            obj = side_object(mapper, target)
            try:
                found = await run.connector(target).find_by_field(obj, ref_field, [k.reference for k in links])
            except SkippableError:
                continue
            matches = {
                k.reference: only[0]
                for k in links
                if len(only := [r for r in found.get(k.reference, []) if not r.deleted]) == 1
            }  # none: not created after all; the source record's next read creates it, same reference
            # A lookup answers list rows: what the base needs and they lack is read, in one call.
            reads = mapper.read_fields(target)
            partial = [r.id for r in matches.values() if r.missing and not r.missing.isdisjoint(reads)]
            full = await run.connector(target).get_many(obj, partial) if partial else {}
            for link in links:
                if link.reference in matches:
                    record = full.get(matches[link.reference].id, matches[link.reference])
                    await self._recover_one(run, mapper, target, link, record)

    async def _recover_one(self, run: MappingRun, mapper: ObjectMapper, target: Side, link: Link, record: Record
                           ) -> None:
        """Bind one pending create to the record its reference found, with the audit row the lost pass owed."""
        canonical = mapper.to_canonical(target, record)
        # The base the create would have committed (kept on its intent): what it wrote, so that a value the
        # target filled in itself (a due date from payment terms) reads as the target's change, as after any
        # create. Intents written before they kept it fall back to what the target holds.
        base = decode_base(link.base) if link.base else {
            n: v
            for n, v in canonical.items()
            if writes_to(mapper.fields[n].direction, target) and not mapper.fields[n].create_only
        }
        crm_id, acc_id = (record.id, None) if target == "crm" else (None, record.id)
        source = (
            f"{run.system(other(target))} {side_object(mapper, other(target))} "
            f"{side_id(link, other(target))}"
        )
        # The create happened in the interrupted pass, which died before its audit row: written now,
        # with the bind, saying it was recovered, and with what the record holds as its `after`.
        written = mapper.read_fields(target)
        after = {k: jsonable(v) for k, v in record.fields.items() if k in written}
        cause = (
            f"{run.name}:{mapper.name}: created from {source} "
            f"(recovered an interrupted create by its reference {link.reference})"
        )
        try:
            async with run.stores.db.transaction() as session:
                # Read now, in full: its stamp may stand for this content, as for any read (see `settled_read`).
                seen = settled_read(record.modified_at, run.stamp_resolution(target), run.read_from(target))
                await run.stores.links.bind(
                    link.id, crm_id=crm_id, acc_id=acc_id, base=encode_base(base), seen={target: seen},
                    session=session,
                )
                await run.stores.audit.record(
                    run.system(target), side_object(mapper, target), record.id, {}, after, cause,
                    status="recovered", session=session,
                )
        except StoreConflictError:
            # What the reference found already belongs to another link: drop this intent; the source
            # record's next read plans it afresh (and parks it as a duplicate if it still is one).
            await run.stores.links.unbind(link.id)
            log.warning("pending create is a duplicate", mapping=run.name, object=link.object,
                        reference=link.reference, record=record.id)
            return
        run.actions.append(
            PlannedAction(
                "link",
                run.name,
                mapper.name,
                source,
                describe(record),
                reason=f"recovered an interrupted create by its reference {link.reference}",
            )
        )

    # --- entry points for the daemon: one object on its own schedule, or named records from webhooks ---
    def _mapping_run(self, mapping_name: str) -> MappingRun:
        """A fresh (non-dry) run over one active mapping, as a pass would start it."""
        for active in self.mappings:
            if active.name == mapping_name:
                return MappingRun(
                    active.name,
                    active.mapping,
                    self._connector(active.mapping.crm_system),
                    self._connector(active.mapping.acc_system),
                    Stores.on(self.db),
                    hooks=self.hooks,
                    target_locks=self.targets,
                    policy=self.policy,
                    retry_after=self.retry_after,
                    recheck_after=self.recheck_after,
                    actions=ActionLog(self.kept_actions),
                )
        raise StoreError(f"no active mapping named {mapping_name!r}")

    async def run_object(
        self, mapping_name: str, object_name: str, sides: Sequence[Side] | None = None
    ) -> SyncReport:
        """One object of one mapping as a pass runs it (interrupted creates recovered, parked records and
        resolutions retried), reading changes only from `sides` (default: every side it copies from)."""
        run = self._mapping_run(mapping_name)
        mapper = run.mapping.objects[object_name]
        pipeline = ObjectPipeline(run, mapper)
        try:
            await activate(run)
            await self._recover_pending(run)
            await recover_writes(run)
            await self._retry_parked(run, mapper, pipeline)
            await self._apply_resolutions(run, mapper, pipeline)
            for side in read_sides(mapper):
                if sides is None or side in sides:
                    await self._read_changes(run, mapper, pipeline, side)
        except (ConnectorError, StoreError) as exc:
            # As in a pass: the cursor stays where it was, and the next run reads the same changes again.
            log.warning("object sync failed", mapping=mapping_name, object=object_name, error=str(exc))
            run.errors.append(f"{mapping_name}:{object_name}: {exc}")
        return run.actions.report(run.errors, dry_run=False)

    async def sync_records(
        self, mapping_name: str, system: str, object: str, changes: Sequence[ChangeEvent]
    ) -> SyncReport:
        """The records that webhook `changes` name, fetched fresh (an event is never trusted as content) and
        run through every object of the mapping that reads `system`'s `object`; a record no longer found
        becomes a deletion (or a merge, if its event said so). Connector and store errors propagate, so
        the caller keeps the events to try again."""
        run = self._mapping_run(mapping_name)
        await recover_writes(run)  # a change announced may concern a write its predecessor left pending
        latest: dict[str, ChangeEvent] = {}
        for change in sorted(changes, key=lambda c: c.occurred_at):
            latest[change.record_id] = change
        for name in run.mapping.order:
            mapper = run.mapping.objects[name]
            for side in read_sides(mapper):
                if run.system(side) != system or side_object(mapper, side) != object or not latest:
                    continue
                found = await run.connector(side).get_many(object, list(latest))
                records = [
                    found.get(record_id)
                    or Record(system, object, record_id, {}, change.occurred_at, True, change.merged_into)
                    for record_id, change in latest.items()
                ]
                pipeline = ObjectPipeline(run, mapper)
                for start in range(0, len(records), self.batch_size):
                    batch = records[start : start + self.batch_size]
                    await self._sync_batch(pipeline, side, batch, why="announced")
        return run.actions.report(run.errors, dry_run=False)
