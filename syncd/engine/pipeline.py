"""The fixed per-record pipeline: skip? → link lookup → up to date? → dependencies → map → write → bind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import replace
from functools import partial

from syncd.connectors.base import Record
from syncd.engine import lifecycle
from syncd.engine.context import MappingRun, create_reference, describe, other, side_id, side_object
from syncd.engine.creates import plan_create
from syncd.engine.failures import held_back
from syncd.engine.fields import plan_fields
from syncd.engine.history import History
from syncd.engine.matching import AmbiguousMatchError, find_match
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import NEW, SIDES, Batch, PairWork, ReadCause, WaitingError
from syncd.engine.pass_records import HANDLED, READ
from syncd.engine.plan import FieldChange
from syncd.engine.recheck import moved, stale_targets
from syncd.engine.references import CrmReference, References
from syncd.engine.removal import plan_removal, plan_void
from syncd.engine.snapshot import decode_base, decode_value, encode_value
from syncd.engine.unchanged import in_step, needs_detail, seen_unchanged
from syncd.engine.writer import BatchWriter
from syncd.mapping.compiled import FieldConversionError, ObjectMapper, writes_to
from syncd.mapping.filters import FilterError
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue
from syncd.store import Conflict, Link
from syncd.store.columns import utcnow


class ObjectPipeline:
    """Runs batches of changed records of one mapped object through the pipeline."""

    def __init__(self, run: MappingRun, mapper: ObjectMapper) -> None:
        self.run = run
        self.mapper = mapper
        self.obj = mapper.name
        self.scope = ObjectRun(run, mapper)
        self.references = References(self.scope, self._sync_dependency)
        self.writer = BatchWriter(self.scope)
        # What the mapping reads on each side: a list answer lacking any of it is completed before planning.
        self._reads = {side: mapper.read_fields(side) for side in SIDES}
        self.history = History(self.scope)

    async def _sync_dependency(self, mapper: ObjectMapper, side: Side, record: Record) -> None:
        """A record another one refers to, run through its own object's pipeline before the referring one."""
        await ObjectPipeline(self.run, mapper).sync(side, [record], why="announced")

    async def _parked_for_good(self, side: Side, records: Mapping[str, Record]) -> dict[str, str]:
        """Why records of this batch are held back by their dead letters, by record id: until they (or the
        mapping) change, or until a back-off the system asked for has passed; a deleted record is free to go."""
        ids = [record_id for record_id, record in records.items() if not record.deleted]
        letters = await self.run.stores.dead_letters.of_records(self.run.name, self.obj, side, ids)
        return held_back(letters, records, self.scope.fingerprint, utcnow())

    # --- the pipeline --------------------------------------------------------------------------------
    async def sync(self, side: Side, records: Sequence[Record], *, why: ReadCause = "poll") -> None:
        """Plan, write and commit one batch of records read from `side`."""
        batch = Batch()
        latest: dict[str, Record] = {}
        marks = self.run.records
        for record in records:
            latest[record.id] = record  # the overlap window can repeat a record; the last read wins
            if not record.deleted and record.merged_into is None:
                marks.mark(self.obj, side, record.id, READ)
        parked = await self._parked_for_good(side, latest)
        links = await self.run.stores.links.lookup_many(
            self.run.name, self.obj, side, self.run.system(side), list(latest)
        )
        todo: list[Record] = []
        for record in latest.values():
            if not marks.mark(self.obj, side, record.id, HANDLED):
                continue
            held = parked.get(record.id)
            if held is not None:
                # Re-read only because of the overlap window: planning it again would repeat what failed.
                self.scope.skip(record, held)
                continue
            link = links.get(record.id)
            if why == "poll" and link is not None and link.state == "linked" and seen_unchanged(link, side, record):
                continue  # re-read at the stamp it was last in step at (the overlap window): nothing changed
            todo.append(record)
        linked: list[tuple[Record, Link]] = []
        matched: list[tuple[Record, Record]] = []
        for record in await self._completed(side, todo, batch):
            await self._guarded(
                side, record, self._plan(side, record, links.get(record.id), batch, linked, matched, why)
            )
        if linked or matched:
            # The counterparts and matches of the whole batch, read in one call per side and batch size.
            counterparts = await self._counterparts(side, [link for _, link in linked], batch)
            complete = {m.id: m for m in await self._completed(other(side), [m for _, m in matched], batch)}
            for record, link in linked:
                await self._guarded(side, record, self._plan_linked(batch, side, record, link, counterparts))
            for record, match in matched:
                full = complete.get(match.id)
                if full is None:
                    await self.scope.park(side, record, f"its match {match.id} is gone", retry=True)
                    continue
                pair = (record, full) if side == "crm" else (full, record)
                await self._guarded(side, record, self._plan_pair(batch, None, *pair, source=side))
        if not self.run.dry_run:
            if self.run.hooks.before_write is not None:
                await self.run.hooks.before_write(self._targets(batch))
            await self._recheck(batch)
            await self.writer.write(batch)

    def _targets(self, batch: Batch) -> dict[str, list[str]]:
        """The records `batch` is about to update, by system."""
        targets: dict[str, list[str]] = {}
        for work in batch.pairs:
            for side in work.writes:
                targets.setdefault(self.run.system(side), []).append(work.record(side).id)
        return targets

    async def _recheck(self, batch: Batch) -> None:
        """Before writing (syncd/engine/recheck.py): targets read longer ago than the run's bound are read
        again, in one call per side; a pair whose target moved since is planned again from what it holds now,
        so an edit landing after the planning read is compared three-way (a `manual` field becomes a conflict)
        instead of being overwritten, and the audit row's `before` is what the target held."""
        clock = asyncio.get_running_loop()
        # Every record read again here, by (side, id): a pair is planned again from the latest read of both its
        # records, so a pair planned again because one side moved still gets the other side's fresh read.
        fresh: dict[tuple[Side, str], Record] = {}
        while True:
            # A pair planned again may write a side it did not before: that target is checked in the next round.
            rounds = [
                (side, [w for w in stale_targets(batch, side, self.run.recheck_after, clock.time())
                        if (side, w.record(side).id) not in batch.checked])
                for side in SIDES
            ]  # fmt: skip
            if not any(stale for _, stale in rounds):
                return
            for side, stale in rounds:
                if not stale:
                    continue
                ids = [work.record(side).id for work in stale]
                now_there = self._as_planned(side, await self._read_fresh(side, ids, batch))
                batch.checked.update((side, i) for i in ids)
                # A record gone meanwhile keeps its planning read: its write is refused as for any vanished one.
                fresh.update(((side, i), r) for i, r in now_there.items())
            for work in list(batch.pairs):
                crm, acc = (fresh.get((side, work.record(side).id), work.record(side)) for side in SIDES)
                if crm is not work.crm or acc is not work.acc:
                    source = work.record(work.source_side)
                    await self._guarded(work.source_side, source, self._replan_moved(batch, work, crm, acc))

    async def _replan_moved(self, batch: Batch, work: PairWork, crm: Record, acc: Record) -> None:
        """`work` planned again from `crm` and `acc` (read again), if either moved since it was planned; what
        was reported for it is withdrawn first (a failing plan leaves the pair out of the batch, parked)."""
        crm_moved = moved(self.mapper, "crm", work.crm, crm)
        if not (crm_moved or moved(self.mapper, "accounting", work.acc, acc)):
            return
        for action in work.reported.values():
            self.run.settle(action, None)
        batch.pairs[:] = [p for p in batch.pairs if p is not work]
        crm_refs = work.crm_refs
        if crm_moved and crm_refs is not None:
            crm_refs = await self.references.crm_references(crm, wait=work.source_side == "crm")
        await self._plan_pair(
            batch, work.link, crm, acc, source=work.source_side, crm_id=work.crm_id, acc_id=work.acc_id,
            crm_refs=crm_refs, first_base=work.first_base,
        )  # fmt: skip

    async def _guarded(self, side: Side, record: Record, step: Awaitable[None]) -> None:
        """Run one record's planning step; what stops the record parks it, with the reason, instead."""
        try:
            await step
        except AmbiguousMatchError as exc:
            await self.scope.park(side, record, str(exc), retry=False)
        except WaitingError as exc:
            await self.scope.park(side, record, str(exc), retry=True)
        except (FieldConversionError, FilterError) as exc:
            await self.scope.park(side, record, f"cannot map this record: {exc}", retry=False)

    async def _completed(self, side: Side, records: Sequence[Record], batch: Batch) -> list[Record]:
        """`records` with what their list answer left out read in one call, where the mapping needs it; a
        record gone meanwhile is dropped (its deletion is read as such). The reads are noted in `batch`."""
        wanted = [
            r.id for r in records
            if not r.deleted and r.merged_into is None and needs_detail(self._reads[side], r)
        ]
        if not wanted:
            return list(records)
        found = await self._read_fresh(side, wanted, batch)
        out: list[Record] = []
        for record in records:
            if record.id not in wanted:
                out.append(record)
            elif (full := found.get(record.id)) is not None:
                # A stamp raised by the connector (a deal whose lines changed) stays as it was handed out.
                out.append(replace(full, modified_at=max(full.modified_at, record.modified_at)))
        return out

    async def _counterparts(self, side: Side, links: Sequence[Link], batch: Batch) -> dict[str, Record]:
        """The other side's records of `links`, read fresh in one call, as a pair is planned from them."""
        target = other(side)
        ids = [i for link in links if (i := side_id(link, target)) is not None]
        return self._as_planned(target, await self._read_fresh(target, ids, batch)) if ids else {}

    async def _read_fresh(self, side: Side, ids: Sequence[str], batch: Batch) -> Mapping[str, Record]:
        """Records of `side` by id in one call, noted in `batch` as read when the call was asked (what the
        check before writing trusts)."""
        asked = asyncio.get_running_loop().time()
        found = await self.run.connector(side).get_many(side_object(self.mapper, side), ids)
        for record_id in found:
            batch.read_at[(side, record_id)] = asked
        return found

    def _as_planned(self, side: Side, records: Mapping[str, Record]) -> dict[str, Record]:
        """Records as a linked pair is planned from them: a CRM deal with its amount line."""
        if side == "crm":
            return {i: lifecycle.with_amount_line(self.mapper, r) for i, r in records.items()}
        return dict(records)

    async def _plan(
        self,
        side: Side,
        record: Record,
        link: Link | None,
        batch: Batch,
        linked: list[tuple[Record, Link]],
        matched: list[tuple[Record, Record]],
        why: ReadCause,
    ) -> None:
        """One record: removal, filter, then a linked pair (its counterpart read with the batch's), an attached
        pair, a match or a create."""
        mapper = self.mapper
        if record.merged_into is not None or record.deleted:
            await plan_removal(self.scope, side, record)
            return
        if link is not None and link.state == "deleted":
            self.scope.skip(record, "its counterpart was deleted; the link is closed")
            return
        if side == "crm":
            record = lifecycle.with_amount_line(mapper, record)
        accepted = mapper.accepts_crm(record) if side == "crm" else mapper.accepts_acc(record)
        if not accepted:
            await self._filtered_out(side, record, link)
            return
        attached = mapper.attach is not None and mapper.attach.side == other(side)
        if link is not None and link.state == "linked" and not attached:
            if why != "resolution" and in_step(mapper, side, record, link.base):
                # This side changed nothing mapped: a change over there is planned when that side is read.
                batch.seen.append((link.id, side, record.modified_at))
                return
            linked.append((record, link))
            return
        if link is None:
            # History (syncd/engine/history.py): link the document the other side already holds; leave the past alone.
            resolve = partial(self.references.resolve, side, record)
            seen = await self.history.first_sight(side, record, resolve, attached=attached)
            if seen.counterpart is not None:
                # A lookup answers list rows: what they lack is read before the document is adopted.
                completed = await self._completed(other(side), [seen.counterpart], batch)
                if not completed:
                    raise WaitingError(f"its matching document {seen.counterpart.id} is gone")
                counterpart = completed[0]
                pair = (record, counterpart) if side == "crm" else (counterpart, record)
                await self._plan_pair(batch, None, *pair, source=side, first_base=seen.base)
                return
            if seen.left_alone:
                return
        references = await self.references.resolve(side, record)
        if attached:
            await self._plan_attached(batch, side, record, link, references)
            return
        if link is None or link.state == "pending":
            # A pending link here is an intent never carried out (its reference found nothing when this run
            # began): the person may have been made on the other side since, by another mapping or process,
            # so they are matched again before anything is created.
            match = await find_match(self.scope, side, record)
            if match is not None:
                if link is not None and not self.run.dry_run:
                    await self.run.stores.links.unbind(link.id)
                matched.append((record, match))
                return
        await plan_create(self.scope, batch, side, record, link, references)

    # --- planning steps ------------------------------------------------------------------------------
    async def _filtered_out(self, side: Side, record: Record, link: Link | None) -> None:
        """A record the mapping's filter refuses: a linked won deal that is lost voids its invoice."""
        if link is not None and link.state == "linked" and side == "crm" and lifecycle.is_invoice(self.mapper):
            await plan_void(self.scope, record, link)
        elif link is None:
            self.scope.skip(record, "filtered out by the mapping")

    async def _plan_linked(
        self, batch: Batch, side: Side, record: Record, link: Link, counterparts: Mapping[str, Record]
    ) -> None:
        """A linked record and its counterpart (read with the batch's): bring the pair in step."""
        counterpart_id = side_id(link, other(side))
        counterpart = counterparts.get(counterpart_id) if counterpart_id is not None else None
        if counterpart is None:
            self.scope.skip(record, f"its counterpart {side_id(link, other(side))} no longer exists")
            return
        pair = (record, counterpart) if side == "crm" else (counterpart, record)
        # Read from either side, the pair is planned whole: a move of the deal is carried from here too.
        crm_refs = await self.references.crm_references(pair[0], wait=side == "crm")
        await self._plan_pair(batch, link, *pair, source=side, crm_refs=crm_refs)

    async def _plan_attached(
        self, batch: Batch, side: Side, record: Record, link: Link | None, references: Mapping[str, str]
    ) -> None:
        """An object without a record of its own on the other side: compare with the record it attaches to."""
        mapper, run = self.mapper, self.run
        assert mapper.attach is not None
        target = other(side)
        target_id = references[mapper.attach.reference]
        if target_id == NEW:
            self.scope.skip(record, f"waits for its {mapper.attach.reference}, which this run would create")
            return
        found = await self._read_fresh(target, [target_id], batch)
        if target_id not in found:
            raise WaitingError(f"{mapper.attach.reference} {target_id} is not readable yet")
        counterpart = found[target_id]
        stores_target = mapper.direction == "both" or writes_to(mapper.direction, side)
        kept = target_id if stores_target else None
        pair = (record, counterpart) if side == "crm" else (counterpart, record)
        ids = (record.id, kept) if side == "crm" else (kept, record.id)
        if link is None and kept is not None:
            holder = await run.lookup(self.obj, target, kept)
            if holder is not None:
                self.scope.skip(record, f"{describe(counterpart)} is already attached to {side_id(holder, side)}")
                return
        await self._plan_pair(batch, link, *pair, source=side, crm_id=ids[0], acc_id=ids[1])

    async def _plan_pair(
        self,
        batch: Batch,
        link: Link | None,
        crm: Record,
        acc: Record,
        *,
        source: Side,
        crm_id: str | None = None,
        acc_id: str | None = None,
        crm_refs: Mapping[str, CrmReference] | None = None,
        first_base: Mapping[str, CanonicalValue] | None = None,
    ) -> None:
        """Bring a pair in step: its fields three-way, then its references; report it and add it to `batch`.
        `first_base` is what a first link starts from (a matched document adopted as it stands)."""
        run = self.run
        # The pair is brought in step as a whole: reading the other record later in this pass adds nothing.
        run.records.mark(self.obj, "crm", crm.id, HANDLED)
        run.records.mark(self.obj, "accounting", acc.id, HANDLED)
        base = decode_base(link.base) if link is not None else dict(first_base or {})
        resolved, reference_resolutions, applied = await self._resolutions(link)
        fields = plan_fields(self.mapper, run.policy, crm, acc, base, resolved)
        references = await self.references.plan(acc, base, crm_refs, reference_resolutions)
        writes = fields.writes
        if references.writes:
            writes.setdefault("accounting", {}).update(references.writes)
        fields.changes["accounting"].extend(references.changes)
        acc_as_written = {**acc.fields, **writes.get("accounting", {})}
        new_base = {**fields.base, **references.marks(self.mapper, crm, acc_as_written)}
        # A first link records both ids, except the attached side of an object that only writes there.
        ids = (crm_id, acc_id) if crm_id is not None or acc_id is not None else (crm.id, acc.id)
        source_record = crm if source == "crm" else acc
        work = PairWork(
            link,
            link.reference if link else create_reference(run.name, self.obj, source, source_record.id),
            crm,
            acc,
            ids[0],
            ids[1],
            writes,
            {s: tuple(c) for s, c in fields.changes.items()},
            new_base,
            (*fields.conflicts, *references.conflicts),
            (*applied, *references.applied),
            tuple(references.reopened),
            source=describe(source_record),
            source_side=source,
            first_base=first_base,
            crm_refs=crm_refs,
        )
        if link is None:
            run.plan_link(self.obj, "crm", crm.id, acc.id)
            run.plan_link(self.obj, "accounting", acc.id, crm.id)
        await self._report_pair(work)
        batch.pairs.append(work)

    async def _resolutions(
        self, link: Link | None
    ) -> tuple[dict[str, CanonicalValue], dict[str, list[Conflict]], list[int]]:
        """The link's resolved conflicts not yet applied: field values to write (with their conflict ids),
        and reference decisions, which the reference plan applies."""
        resolved: dict[str, CanonicalValue] = {}
        reference_resolutions: dict[str, list[Conflict]] = {}
        applied: list[int] = []
        if link is None or self.run.dry_run:
            return resolved, reference_resolutions, applied
        for conflict in await self.run.stores.conflicts.resolved_unapplied(link.id):
            if conflict.field in self.mapper.references:
                # Marked applied by the reference plan, only once it carries the resolution out.
                reference_resolutions.setdefault(conflict.field, []).append(conflict)
                continue
            resolved[conflict.field] = decode_value(conflict.resolved_value)
            applied.append(conflict.id)
        return resolved, reference_resolutions, applied

    # --- reporting -----------------------------------------------------------------------------------
    async def _report_pair(self, work: PairWork) -> None:
        """Report a planned pair: a first link, each side's update, each conflict not reported before."""
        mapper = self.mapper
        counterpart = work.record(other(work.source_side))
        if work.link is None:
            reason = (
                "attached to its linked record" if mapper.attach
                else "matched on " + ", ".join(mapper.match_keys) if mapper.match_keys
                else "matched the document already there"
            )  # fmt: skip
            work.reported["link"] = self.scope.action("link", work.source, describe(counterpart), reason=reason)
        for side in SIDES:
            if side in work.writes:
                work.reported[side] = self.scope.action(
                    "update", work.source, describe(work.record(side)), changes=work.changes[side]
                )
        await self._report_conflicts(work)

    async def _report_conflicts(self, work: PairWork) -> None:
        """Report the pair's conflicts, except those still open from an earlier pass with the same values."""
        already_open = {}
        if work.conflicts and work.link is not None:
            already_open = {c.field: c for c in await self.run.stores.conflicts.list("open", work.link.id)}
        for note in work.conflicts:
            known = already_open.get(note.field)
            if known is not None and (known.crm_value, known.acc_value) == (
                encode_value(note.crm), encode_value(note.acc)
            ):
                # Reported when it arose; re-reading the record (the overlap window) does not make it new.
                self.scope.skip(work.record(work.source_side),
                                f"{note.field}: conflict {known.id} is still open, waiting for a person")
                continue
            self.scope.action(
                "conflict",
                work.source,
                describe(work.record(other(work.source_side))),
                changes=(FieldChange(note.field, note.crm, note.acc),),
                reason=note.reason,
            )
