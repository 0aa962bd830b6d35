"""The fixed per-record pipeline: skip? → link lookup → up to date? → dependencies → map → write → bind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from syncd.connectors.base import Create, FieldValue, Record, Update, WriteOutcome
from syncd.engine import lifecycle
from syncd.engine.context import MappingRun, create_reference, describe, jsonable, other, side_id, side_object
from syncd.engine.plan import ActionKind, FieldChange, PlannedAction
from syncd.engine.rules import FieldDecision, FieldInput, decide_field
from syncd.engine.snapshot import decode_base, decode_value, encode_base, encode_value
from syncd.engine.vanished import reference_mark, reference_marks
from syncd.errors import DuplicateError, SkippableError
from syncd.mapping.compiled import FieldConversionError, ObjectMapper, writes_to
from syncd.mapping.filters import FilterError
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue, lookup
from syncd.store import Conflict, DeadLetter, Link, StoreConflictError
from syncd.store.columns import utcnow

NEW = "(new)"


class WaitingError(Exception):
    """The record cannot be synced yet (a dependency is missing); it is parked and retried later."""


@dataclass(frozen=True)
class ConflictNote:
    """A field the rules (or an invoice already sent) park for a person."""

    field: str
    base: CanonicalValue
    crm: CanonicalValue
    acc: CanonicalValue
    reason: str


@dataclass(frozen=True)
class CrmReference:
    """What a linked CRM record refers to through one reference: the CRM id, and its linked accounting id."""

    crm_id: str
    acc_id: str


@dataclass
class ReferencePlan:
    """What a linked pair's references need on the accounting side, decided three-way against base."""

    writes: dict[str, FieldValue] = field(default_factory=dict)  # accounting field → id to write
    changes: list[FieldChange] = field(default_factory=list)
    conflicts: list[ConflictNote] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)  # resolved conflicts this plan carries out
    held: set[str] = field(default_factory=set)  # references whose CRM mark stays at base (move undecided)


@dataclass(frozen=True)
class PairWork:
    """A linked (or just matched) pair and what to write on each side to bring it in step."""

    link: Link | None  # None: a first-time link, made at commit with `reference`
    reference: str
    crm: Record
    acc: Record
    crm_id: str | None  # the ids the link stores (None on an attached side it does not record)
    acc_id: str | None
    writes: Mapping[Side, Mapping[str, FieldValue]]
    changes: Mapping[Side, tuple[FieldChange, ...]]
    base: Mapping[str, CanonicalValue]
    conflicts: tuple[ConflictNote, ...] = ()
    applied_conflicts: tuple[int, ...] = ()
    source: str = ""
    source_side: Side = "crm"


@dataclass(frozen=True)
class CreateWork:
    """A record to create on `target` for a source record without a counterpart."""

    link: Link | None  # the pending intent (None in a dry run)
    source: Record
    target: Side
    reference: str
    fields: Mapping[str, FieldValue]
    base: Mapping[str, CanonicalValue]
    changes: tuple[FieldChange, ...]
    after_status: str | None = None  # invoice status to reach by an action after the create


@dataclass
class Batch:
    """The work planned for one batch of records, executed together and committed together."""

    pairs: list[PairWork] = field(default_factory=list)
    creates: list[CreateWork] = field(default_factory=list)


class ObjectPipeline:
    """Runs batches of changed records of one mapped object through the pipeline."""

    def __init__(self, run: MappingRun, mapper: ObjectMapper) -> None:
        self.run = run
        self.mapper = mapper
        self.obj = mapper.name
        self._held: dict[tuple[str, str], DeadLetter] | None = None

    async def _parked_for_good(self, side: Side, record: Record) -> DeadLetter | None:
        """The dead letter holding this record back until it changes (a duplicate, an ambiguous match)."""
        if self._held is None:
            letters = await self.run.stores.dead_letters.list(self.run.name, self.obj, limit=100_000)
            self._held = {(d.side, d.record_id): d for d in letters if d.next_attempt_at is None}
        letter = self._held.get((side, record.id))
        return letter if letter is not None and record.modified_at <= letter.updated_at else None

    # --- the pipeline --------------------------------------------------------------------------------
    async def sync(self, side: Side, records: Sequence[Record]) -> None:
        """Plan, write and commit one batch of records read from `side`."""
        batch = Batch()
        latest: dict[str, Record] = {}
        read = self.run.read.setdefault((self.obj, side), set())
        for record in records:
            latest[record.id] = record  # the overlap window can repeat a record; the last read wins
            if not record.deleted and record.merged_into is None:
                read.add(record.id)
        for record in latest.values():
            key = (self.obj, side, record.id)
            if key in self.run.handled:
                continue
            self.run.handled.add(key)
            held = None if record.deleted else await self._parked_for_good(side, record)
            if held is not None:
                # Re-read only because of the overlap window: planning it again would repeat what failed.
                self._skip(record, f"parked until it changes: {held.error}")
                continue
            try:
                await self._plan(side, record, batch)
            except _Ambiguous as exc:
                await self._park(side, record, str(exc), retry=False)
            except WaitingError as exc:
                await self._park(side, record, str(exc), retry=True)
            except (FieldConversionError, FilterError) as exc:
                await self._park(side, record, f"cannot map this record: {exc}", retry=False)
        if not self.run.dry_run:
            await self._execute(batch)

    async def _plan(self, side: Side, record: Record, batch: Batch) -> None:
        mapper, run = self.mapper, self.run
        if record.merged_into is not None or record.deleted:
            await self._plan_removal(side, record)
            return
        link = await run.lookup(self.obj, side, record.id)
        if link is not None and link.state == "deleted":
            self._skip(record, "its counterpart was deleted; the link is closed")
            return
        if side == "crm":
            record = lifecycle.with_amount_line(mapper, record)
        accepted = mapper.accepts_crm(record) if side == "crm" else mapper.accepts_acc(record)
        if not accepted:
            if link is not None and link.state == "linked" and side == "crm" and lifecycle.is_invoice(mapper):
                await self._plan_void(record, link)
            elif link is None:
                self._skip(record, "filtered out by the mapping")
            return
        attached = mapper.attach is not None and mapper.attach.side == other(side)
        if link is not None and link.state == "linked" and not attached:
            counterpart = await self._counterpart(link, other(side))
            if counterpart is None:
                self._skip(record, f"its counterpart {side_id(link, other(side))} no longer exists")
                return
            pair = (record, counterpart) if side == "crm" else (counterpart, record)
            # Read from either side, the pair is planned whole: a move of the deal is carried from here too.
            crm_refs = await self._crm_references(pair[0], wait=side == "crm")
            await self._plan_pair(batch, link, *pair, source=side, crm_refs=crm_refs)
            return
        references = await self._references(side, record)
        if attached:
            await self._plan_attached(batch, side, record, link, references)
            return
        if link is None:
            match = await self._match(side, record)
            if match is not None:
                pair = (record, match) if side == "crm" else (match, record)
                await self._plan_pair(batch, None, *pair, source=side)
                return
        await self._plan_create(batch, side, record, link, references)

    # --- planning steps ------------------------------------------------------------------------------
    def _canonical(self, side: Side, record: Record) -> dict[str, CanonicalValue]:
        return self.mapper.to_canonical(side, record)

    async def _counterpart(self, link: Link, side: Side) -> Record | None:
        record_id = side_id(link, side)
        if record_id is None:
            return None
        found = await self.run.connector(side).get_many(side_object(self.mapper, side), [record_id])
        record = found.get(record_id)
        if record is not None and side == "crm":
            record = lifecycle.with_amount_line(self.mapper, record)
        return record

    async def _references(self, side: Side, record: Record) -> dict[str, str]:
        """The other side's ids of every record this one refers to, syncing a missing dependency first."""
        resolved: dict[str, str] = {}
        for name, ref in self.mapper.references.items():
            field_name = ref.side_field(side)
            if field_name is None:
                # Attached on this side: the record refers to itself (a Zoho contact is its own customer).
                source_id: str | None = record.id
            else:
                raw = lookup(record.fields, field_name)
                source_id = None if raw is None or raw == "" else str(raw)
            if source_id is None:
                raise WaitingError(f"it has no {name} yet")
            found = await self._dependency(ref.target, side, source_id)
            if found is None:
                raise WaitingError(f"waiting for {ref.target} {source_id} to be linked")
            resolved[name] = found
        return resolved

    async def _crm_references(self, crm: Record, *, wait: bool) -> dict[str, CrmReference] | None:
        """What a linked CRM record refers to through each reference carried to accounting, with the
        accounting id each target has; None when this object carries no reference CRM → accounting.

        Only CRM → accounting: a CRM reference (a HubSpot association) is not a field that one write replaces.
        A target not linked yet is synced first; if it cannot be, the record waits (`wait`, a CRM read) or
        the reference is left out (an accounting read, which must not be held back by the deal's contact).
        """
        mapper = self.mapper
        if mapper.attach is not None or not writes_to(mapper.direction, "accounting"):
            return None
        found: dict[str, CrmReference] = {}
        for name, ref in mapper.references.items():
            if ref.crm_field is None or ref.acc_field is None:
                continue
            raw = lookup(crm.fields, ref.crm_field)
            if raw is None or raw == "":
                continue
            wanted = await self._dependency(ref.target, "crm", str(raw))
            if wanted is None and wait:
                raise WaitingError(f"waiting for {ref.target} {raw} to be linked")
            if wanted is not None and wanted != NEW:
                found[name] = CrmReference(str(raw), wanted)
        return found

    async def _dependency(self, obj: str, side: Side, source_id: str) -> str | None:
        """The other side's id of a record of `obj`, syncing it first when it is not linked yet."""
        run = self.run
        target = other(side)
        for attempt in range(2):
            planned = run.planned_links.get((obj, side, source_id)) if run.dry_run else None
            if planned is not None:
                return planned
            link = await run.lookup(obj, side, source_id)
            if link is not None and link.state == "linked" and side_id(link, target) is not None:
                return side_id(link, target)
            if attempt == 1 or obj not in run.mapping.objects:
                return None
            dep_mapper = run.mapping.objects[obj]
            found = await run.connector(side).get_many(side_object(dep_mapper, side), [source_id])
            if source_id not in found:
                return None
            await ObjectPipeline(run, dep_mapper).sync(side, [found[source_id]])
        return None

    async def _match(self, side: Side, record: Record) -> Record | None:
        """The other side's record with the same match keys, or None; an ambiguous match stops the record."""
        mapper, run = self.mapper, self.run
        key = mapper.match_key(side, record)
        if key is None or len(mapper.match_keys) != 1:
            return None
        target = other(side)
        field_name = mapper.fields[mapper.match_keys[0]].scalar.side_name(target)
        raw = record.fields.get(mapper.fields[mapper.match_keys[0]].scalar.side_name(side))
        values = sorted({str(key[0]), *([raw.strip()] if isinstance(raw, str) and raw.strip() else [])})
        found = await run.connector(target).find_by_field(side_object(mapper, target), field_name, values)
        candidates: dict[str, Record] = {}
        for records in found.values():
            for candidate in records:
                if not candidate.deleted and mapper.match_key(target, candidate) == key:
                    candidates[candidate.id] = candidate
        free = [
            c
            for c in candidates.values()
            if await run.lookup(self.obj, target, c.id) is None
            and (self.obj, target, c.id) not in run.planned_links
        ]
        if len(free) > 1:
            ids = ", ".join(sorted(c.id for c in free))
            raise _Ambiguous(f"ambiguous match on {', '.join(mapper.match_keys)}: {ids}")
        if not free:
            return None
        # One match seen from here can still be one of several seen from there (two customers keyed in twice
        # for one contact): pairing it with either would be a guess.
        own_field = mapper.fields[mapper.match_keys[0]].scalar.side_name(side)
        back = await run.connector(side).find_by_field(side_object(mapper, side), own_field, values)
        rivals = {
            r.id
            for records in back.values()
            for r in records
            if not r.deleted and mapper.match_key(side, r) == key and await run.lookup(self.obj, side, r.id) is None
        }
        if len(rivals - {record.id}) > 0:
            ids = ", ".join(sorted(rivals | {record.id}))
            raise _Ambiguous(f"ambiguous match on {', '.join(mapper.match_keys)}: {ids} all match {free[0].id}")
        return free[0]

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
        reference: str | None = None,
        crm_refs: Mapping[str, CrmReference] | None = None,
    ) -> None:
        mapper, run = self.mapper, self.run
        # The pair is brought in step as a whole: reading the other record later in this pass adds nothing.
        run.handled.add((self.obj, "crm", crm.id))
        run.handled.add((self.obj, "accounting", acc.id))
        crm_values, acc_values = self._canonical("crm", crm), self._canonical("accounting", acc)
        base = decode_base(link.base) if link is not None else {}
        resolved: dict[str, CanonicalValue] = {}
        reference_resolutions: dict[str, list[Conflict]] = {}
        applied: list[int] = []
        if link is not None and not run.dry_run:
            for conflict in await run.stores.conflicts.resolved_unapplied(link.id):
                if conflict.field in mapper.references:
                    # Marked applied by the reference plan, only once it carries the resolution out.
                    reference_resolutions.setdefault(conflict.field, []).append(conflict)
                    continue
                resolved[conflict.field] = decode_value(conflict.resolved_value)
                applied.append(conflict.id)
        decisions: list[FieldDecision] = []
        new_base = dict(base)
        conflicts: list[ConflictNote] = []
        for name, mapped in mapper.fields.items():
            if mapped.create_only:
                continue
            crm_v, acc_v = crm_values.get(name), acc_values.get(name)
            has_base = name in base
            if mapped.items is not None:
                # Absent line items mean "not read", never "none": keep what is known.
                crm_v = base.get(name) if crm_v is None and has_base else crm_v
                acc_v = base.get(name) if acc_v is None and has_base else acc_v
            if name in resolved:
                decisions.extend(self._apply_resolution(name, resolved[name], crm_v, acc_v, mapped.direction))
                new_base[name] = resolved[name]
                continue
            decision = decide_field(
                name,
                FieldInput(base.get(name), has_base, crm_v, acc_v),
                direction=mapped.direction,
                rule=mapped.conflict,
                crm_modified=crm.modified_at,
                acc_modified=acc.modified_at,
            )
            if decision.action == "conflict":
                conflicts.append(ConflictNote(name, base.get(name), crm_v, acc_v, decision.reason))
                continue
            if (
                decision.action == "to_acc"
                and lifecycle.is_invoice(mapper)
                and lifecycle.invoice_status(acc) not in run.policy.editable_invoice_statuses
            ):
                why = f"invoice is {lifecycle.invoice_status(acc) or 'not a draft'}; not edited after sending"
                conflicts.append(ConflictNote(name, base.get(name), crm_v, acc_v, why))
                continue
            decisions.append(decision)
            if decision.action != "keep" or has_base:
                new_base[name] = decision.value
        writes: dict[Side, dict[str, CanonicalValue]] = {"crm": {}, "accounting": {}}
        changes: dict[Side, list[FieldChange]] = {"crm": [], "accounting": []}
        for d in decisions:
            if d.action in ("to_crm", "to_acc"):
                target: Side = "crm" if d.action == "to_crm" else "accounting"
                writes[target][d.field] = d.value
                before = crm_values.get(d.field) if target == "crm" else acc_values.get(d.field)
                changes[target].append(FieldChange(d.field, before, d.value))
        side_writes = {s: dict(mapper.canonical_to_side(s, w)) for s, w in writes.items() if w}
        references = await self._plan_references(acc, base, crm_refs, reference_resolutions)
        if references.writes:
            side_writes.setdefault("accounting", {}).update(references.writes)
        changes["accounting"].extend(references.changes)
        conflicts.extend(references.conflicts)
        applied.extend(references.applied)
        # What each side refers to, so a referring record can be checked when its referenced one changes, and
        # a later move of the CRM record told from a change made in accounting alone. A move still undecided
        # keeps its CRM mark at base, so that it is seen again (and a resolution can settle it).
        held = {reference_mark("crm", name) for name in references.held}
        new_base.update({k: v for k, v in reference_marks(mapper, "crm", crm.fields).items() if k not in held})
        new_base.update(reference_marks(mapper, "accounting", {**acc.fields, **side_writes.get("accounting", {})}))
        first = link is None
        # A first link records both ids, except the attached side of an object that only writes there.
        ids = (crm_id, acc_id) if crm_id is not None or acc_id is not None else (crm.id, acc.id)
        ref = reference or (
            link.reference
            if link
            else create_reference(run.name, self.obj, source, crm.id if source == "crm" else acc.id)
        )
        work = PairWork(
            link,
            ref,
            crm,
            acc,
            ids[0],
            ids[1],
            side_writes,
            {s: tuple(c) for s, c in changes.items()},
            new_base,
            tuple(conflicts),
            tuple(applied),
            source=describe(crm if source == "crm" else acc),
            source_side=source,
        )
        if first:
            run.planned_links[(self.obj, "crm", crm.id)] = acc.id
            run.planned_links[(self.obj, "accounting", acc.id)] = crm.id
            reason = (
                "matched on " + ", ".join(mapper.match_keys)
                if mapper.match_keys and not mapper.attach
                else "attached to its linked record"
            )
            self._action("link", work.source, describe(acc if source == "crm" else crm), reason=reason)
        for s in ("crm", "accounting"):
            side: Side = "crm" if s == "crm" else "accounting"
            if side in side_writes:
                target_record = crm if side == "crm" else acc
                self._action("update", work.source, describe(target_record), changes=work.changes[side])
        already_open = {}
        if conflicts and link is not None:
            already_open = {c.field: c for c in await run.stores.conflicts.list("open", link.id)}
        for note in conflicts:
            known = already_open.get(note.field)
            if known is not None and (known.crm_value, known.acc_value) == (
                encode_value(note.crm), encode_value(note.acc)
            ):
                # Reported when it arose; re-reading the record (the overlap window) does not make it new.
                self._skip(crm if source == "crm" else acc,
                           f"{note.field}: conflict {known.id} is still open, waiting for a person")
                continue
            self._action(
                "conflict",
                work.source,
                describe(acc if source == "crm" else crm),
                changes=(FieldChange(note.field, note.crm, note.acc),),
                reason=note.reason,
            )
        batch.pairs.append(work)

    @staticmethod
    def _apply_resolution(
        name: str, value: CanonicalValue, crm_v: CanonicalValue, acc_v: CanonicalValue, direction: str
    ) -> list[FieldDecision]:
        out = []
        if crm_v != value and writes_to(direction, "crm"):  # type: ignore[arg-type]
            out.append(FieldDecision(name, "to_crm", value, "conflict resolved"))
        if acc_v != value and writes_to(direction, "accounting"):  # type: ignore[arg-type]
            out.append(FieldDecision(name, "to_acc", value, "conflict resolved"))
        return out

    async def _plan_references(
        self,
        acc: Record,
        base: Mapping[str, CanonicalValue],
        crm_refs: Mapping[str, CrmReference] | None,
        resolutions: Mapping[str, Sequence[Conflict]],
    ) -> ReferencePlan:
        """Carry the CRM record's moved references to the accounting record, and apply resolved reference
        conflicts.

        Three-way: a move is a CRM reference that changed since base (its `@crm:` mark); a link older than the
        marks compares with the accounting value only, as before. References go CRM → accounting only, so one
        changed in accounting alone is left as it is (its `@accounting:` mark follows it). A move onto an
        invoice already sent is a conflict; resolved `crm`, the CRM's value is written anyway (a person
        decided); resolved `accounting`, nothing is written; either way the move is settled and not raised
        again. A resolution is marked applied only when this plan carries it out.
        """
        mapper, run = self.mapper, self.run
        plan = ReferencePlan()
        status = lifecycle.invoice_status(acc)
        locked = lifecycle.is_invoice(mapper) and status not in run.policy.editable_invoice_statuses
        for name, ref in mapper.references.items():
            acc_field = ref.acc_field
            if acc_field is None or ref.crm_field is None:
                continue
            raw = lookup(acc.fields, acc_field)
            current = None if raw is None or raw == "" else str(raw)
            now = crm_refs.get(name) if crm_refs is not None else None
            if crm_refs is not None and now is None:
                # Nothing to compare yet (no CRM reference, or its target not linkable): keep the mark for later.
                plan.held.add(name)
            mark = base.get(reference_mark("crm", name))
            crm_moved = now is not None and (mark is None or mark != now.crm_id)
            decisions = resolutions.get(name, ())
            if decisions:
                latest = decisions[-1]  # oldest first: the latest decision supersedes earlier ones
                chosen, refusal = await self._resolved_reference(ref.target, latest, current)
                if refusal is not None:
                    # Not applied: the move stays undecided below, so it is raised again for a person.
                    run.errors.append(f"{describe(acc)}: conflict {latest.id} ({name}) not applied: {refusal}")
                else:
                    if chosen != current:
                        plan.writes[acc_field] = chosen
                        plan.changes.append(FieldChange(name, current, chosen))
                        current = chosen
                    plan.applied.extend(c.id for c in decisions)
                    if now is not None and decode_value(latest.crm_value) == now.acc_id:
                        crm_moved = False  # the decision was about what the CRM refers to now: settled
            if not crm_moved or now is None or now.acc_id == current:
                continue
            if locked:
                why = f"invoice is {status or 'not a draft'}; not edited after sending"
                base_id = base.get(reference_mark("accounting", name))
                plan.conflicts.append(ConflictNote(name, base_id, now.acc_id, current, why))
                plan.held.add(name)
                continue
            plan.writes[acc_field] = now.acc_id
            plan.changes.append(FieldChange(name, current, now.acc_id))
        return plan

    async def _resolved_reference(
        self, target: str, conflict: Conflict, current: str | None
    ) -> tuple[str | None, str | None]:
        """The accounting id a resolved reference conflict settles on, or why it cannot (chosen, refusal).

        `accounting` keeps what accounting holds now; `crm` and a given value must name a record of `target`
        that accounting has (linked, or found there and accepted by the mapping): an invoice never gets a
        customer id its system would refuse, nor loses its customer.
        """
        if conflict.resolution == "accounting":
            return current, None
        try:
            value = decode_value(conflict.resolved_value)
        except ValueError:
            return None, f"{conflict.resolved_value!r} is not a {target} id"
        if value is None or value == "":
            return (None, None) if current is None else (None, f"it would leave the record without a {target}")
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None, f"{value!r} is not a {target} id"
        chosen = str(value)
        run = self.run
        if chosen == current:
            return chosen, None
        link = await run.lookup(target, "accounting", chosen)
        if link is not None and link.state == "linked":
            return chosen, None
        dependency = run.mapping.objects.get(target)
        if dependency is not None:
            found = (await run.acc.get_many(side_object(dependency, "accounting"), [chosen])).get(chosen)
            if found is not None and not found.deleted and dependency.accepts_acc(found):
                return chosen, None
        return None, f"{run.acc.system} has no {target} {chosen}"

    async def _plan_attached(
        self, batch: Batch, side: Side, record: Record, link: Link | None, references: Mapping[str, str]
    ) -> None:
        """An object without a record of its own on the other side: compare with the record it attaches to."""
        mapper, run = self.mapper, self.run
        assert mapper.attach is not None
        target = other(side)
        target_id = references[mapper.attach.reference]
        if target_id == NEW:
            self._skip(record, f"waits for its {mapper.attach.reference}, which this run would create")
            return
        found = await run.connector(target).get_many(side_object(mapper, target), [target_id])
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
                self._skip(record, f"{describe(counterpart)} is already attached to {side_id(holder, side)}")
                return
        await self._plan_pair(batch, link, *pair, source=side, crm_id=ids[0], acc_id=ids[1])

    async def _plan_create(
        self, batch: Batch, side: Side, record: Record, link: Link | None, references: Mapping[str, str]
    ) -> None:
        mapper, run = self.mapper, self.run
        target = other(side)
        ref_field = mapper.create.ref_field(target)
        if not mapper.create.may_create_on(target) or ref_field is None:
            self._skip(record, f"no linked {side_object(mapper, target)} record, and creating one is off")
            return
        reference = (
            link.reference if link is not None else create_reference(run.name, self.obj, side, record.id)
        )
        canonical = self._canonical(side, record)
        values = {n: v for n, v in canonical.items() if mapper.fields[n].writes_to(target)}
        fields = dict(mapper.canonical_to_side(target, values, creating=True))
        for name, ref in mapper.references.items():
            if (target_field := ref.side_field(target)) is not None:
                fields[target_field] = references[name]
        fields[ref_field] = reference
        after_status: str | None = None
        if target == "accounting" and lifecycle.is_invoice(mapper):
            status = fields.pop(lifecycle.STATUS_FIELD, None)
            after_status = status if isinstance(status, str) and status != "draft" else None
        base: dict[str, CanonicalValue] = {
            n: v for n, v in canonical.items() if n in values and not mapper.fields[n].create_only
        }
        base.update(reference_marks(mapper, side, record.fields))
        changes = tuple(FieldChange(n, None, v) for n, v in values.items() if v is not None)
        pending = link
        if not run.dry_run and pending is None:
            ids = (record.id, None) if side == "crm" else (None, record.id)
            try:
                pending = await run.stores.links.intend(
                    run.name,
                    self.obj,
                    run.mapping.crm_system,
                    ids[0],
                    run.mapping.acc_system,
                    ids[1],
                    reference,
                )
            except StoreConflictError:
                self._skip(record, "another link already holds this record")
                return
        run.planned_links[(self.obj, side, record.id)] = NEW
        batch.creates.append(
            CreateWork(pending, record, target, reference, fields, base, changes, after_status)
        )
        self._action(
            "create",
            describe(record),
            f"{run.system(target)} {side_object(mapper, target)} {NEW}",
            changes=changes,
            reason=f"reference {reference}",
        )

    async def _plan_void(self, record: Record, link: Link) -> None:
        run = self.run
        if not run.policy.void_lost_invoices or link.acc_id is None:
            return
        invoice = await self._counterpart(link, "accounting")
        if invoice is None or lifecycle.invoice_status(invoice) == "void":
            return
        self._action("void", describe(record), describe(invoice), reason="deal left its won stage")
        if run.dry_run:
            return
        await run.acc.act(self.mapper.acc_object, invoice.id, "void")
        await run.stores.audit.record(
            run.acc.system,
            self.mapper.acc_object,
            invoice.id,
            {"status": lifecycle.invoice_status(invoice)},
            {"status": "void"},
            f"{run.name}:{self.obj}: {describe(record)} left its won stage",
        )

    async def _plan_removal(self, side: Side, record: Record) -> None:
        """A record deleted or merged away on `side`: move the link to the survivor, or apply the policy."""
        mapper, run = self.mapper, self.run
        link = await run.lookup(self.obj, side, record.id)
        if link is None or link.state == "deleted":
            return
        if record.merged_into is not None:
            self._action(
                "move",
                describe(record),
                f"{record.system} {record.object} {record.merged_into}",
                reason="merged; the link follows the surviving record",
            )
            if not run.dry_run:
                await run.stores.links.move(link.id, side, record.merged_into)
            return
        target = other(side)
        target_id = side_id(link, target)
        policy = mapper.delete_policy
        target_object = side_object(mapper, target)
        if target_id is None or policy == "ignore" or (mapper.attach is not None):
            self._action("skip", describe(record), "", reason=f"deleted; delete policy {policy}: link closed")
        elif policy == "delete":
            self._action(
                "delete",
                describe(record),
                f"{run.system(target)} {target_object} {target_id}",
                reason="deleted; delete policy: delete",
            )
        elif target == "accounting":
            self._action(
                "void" if lifecycle.is_invoice(mapper) else "update",
                describe(record),
                f"{run.system(target)} {target_object} {target_id}",
                reason="deleted; delete policy: deactivate",
            )
        else:
            self._action("skip", describe(record), "", reason="deleted; the CRM side cannot be deactivated")
        if run.dry_run:
            return
        connector = run.connector(target)
        if target_id is not None and policy == "delete" and mapper.attach is None:
            outcome = (await connector.delete_many(target_object, [target_id]))[0]
            if outcome.ok:
                await run.stores.audit.record(
                    connector.system,
                    target_object,
                    target_id,
                    {},
                    {"deleted": True},
                    f"{run.name}:{self.obj}: {describe(record)} was deleted",
                )
        elif (
            target_id is not None
            and policy == "deactivate"
            and target == "accounting"
            and mapper.attach is None
        ):
            action = "void" if lifecycle.is_invoice(mapper) else "inactive"
            await connector.act(target_object, target_id, action)
            await run.stores.audit.record(
                connector.system,
                target_object,
                target_id,
                {},
                {"action": action},
                f"{run.name}:{self.obj}: {describe(record)} was deleted",
            )
        await run.stores.links.mark_deleted(link.id)

    # --- write and bind ------------------------------------------------------------------------------
    async def _execute(self, batch: Batch) -> None:
        run = self.run
        created: list[tuple[CreateWork, WriteOutcome]] = []
        for target in ("crm", "accounting"):
            side: Side = "crm" if target == "crm" else "accounting"
            items = [w for w in batch.creates if w.target == side]
            if not items:
                continue
            connector = run.connector(side)
            obj = side_object(self.mapper, side)
            outcomes = await connector.create_many(obj, [Create(w.reference, w.fields) for w in items])
            if run.hooks.after_create is not None:
                run.hooks.after_create(connector.system, obj, outcomes)
            created.extend(zip(items, outcomes, strict=True))
        updated: list[tuple[PairWork, Side, WriteOutcome]] = []
        for target in ("crm", "accounting"):
            side = "crm" if target == "crm" else "accounting"
            pairs = [p for p in batch.pairs if side in p.writes]
            if not pairs:
                continue
            updates = [Update((p.crm if side == "crm" else p.acc).id, p.writes[side]) for p in pairs]
            outcomes = await run.connector(side).update_many(side_object(self.mapper, side), updates)
            updated.extend((p, side, o) for p, o in zip(pairs, outcomes, strict=True))
        for work, outcome in created:
            if (
                work.after_status
                and outcome.id is not None
                and (outcome.ok or isinstance(outcome.error, DuplicateError))
            ):
                await self._reach_status(work, outcome.id)
        await self._commit(batch, created, updated)

    async def _reach_status(self, work: CreateWork, record_id: str) -> None:
        assert work.after_status is not None
        try:
            await self.run.acc.act(self.mapper.acc_object, record_id, work.after_status)
        except SkippableError as exc:
            self.run.errors.append(
                f"{describe(work.source)}: could not mark invoice {work.after_status}: {exc}"
            )

    async def _commit(
        self,
        batch: Batch,
        created: Sequence[tuple[CreateWork, WriteOutcome]],
        updated: Sequence[tuple[PairWork, Side, WriteOutcome]],
    ) -> None:
        """Links, bases, conflicts, audit rows and dead letters of the batch, in one transaction."""
        run, stores = self.run, self.run.stores
        failed: dict[int, str] = {}
        for pair, side, outcome in updated:
            if not outcome.ok:
                failed[id(pair)] = f"writing {side_object(self.mapper, side)}: {outcome.error}"
        async with stores.db.transaction() as session:
            for work, outcome in created:
                target_id = outcome.id
                if not outcome.ok and isinstance(outcome.error, DuplicateError) and outcome.error.existing_id:
                    target_id = outcome.error.existing_id
                elif not outcome.ok or target_id is None:
                    await self._park_in(
                        session, other(work.target), work.source, str(outcome.error), retry=True
                    )
                    continue
                assert work.link is not None
                crm_id, acc_id = (target_id, None) if work.target == "crm" else (None, target_id)
                try:
                    async with session.begin_nested():
                        await stores.links.bind(
                            work.link.id, crm_id=crm_id, acc_id=acc_id, base=encode_base(work.base),
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
                    self._skip(work.source, reason)
                    await self._park_in(session, other(work.target), work.source, reason, retry=False)
                    continue
                await stores.audit.record(
                    run.system(work.target),
                    side_object(self.mapper, work.target),
                    target_id,
                    {},
                    jsonable(work.fields),
                    f"{run.name}:{self.obj}: created from {describe(work.source)}",
                    session=session,
                )
                await stores.dead_letters.clear(
                    run.name, self.obj, other(work.target), work.source.id, session=session
                )
            for pair in batch.pairs:
                source_side = pair.source_side
                source_record = pair.crm if source_side == "crm" else pair.acc
                if id(pair) in failed:
                    await self._park_in(session, source_side, source_record, failed[id(pair)], retry=True)
                    continue
                link = pair.link
                if link is None:
                    try:
                        async with session.begin_nested():
                            link = await stores.links.intend(
                                run.name,
                                self.obj,
                                run.mapping.crm_system,
                                pair.crm_id,
                                run.mapping.acc_system,
                                pair.acc_id,
                                pair.reference,
                                session=session,
                            )
                            link = await stores.links.bind(link.id, base=encode_base(pair.base), session=session)
                    except StoreConflictError:
                        # The match is already linked to another record of ours: duplicates, not a pair.
                        match = pair.crm_id if source_side == "accounting" else pair.acc_id
                        reason = (
                            f"its match {match} is already linked to another record: merge the duplicates, "
                            "then it links"
                        )
                        self._skip(source_record, reason)
                        await self._park_in(session, source_side, source_record, reason, retry=False)
                        continue
                elif dict(pair.base) != decode_base(link.base) or pair.writes:
                    link = await stores.links.update_base(
                        link.id, encode_base(pair.base), link.version, session=session
                    )
                for note in pair.conflicts:
                    await stores.conflicts.open_conflict(
                        link.id,
                        note.field,
                        encode_value(note.base),
                        encode_value(note.crm),
                        encode_value(note.acc),
                        session=session,
                    )
                await stores.conflicts.mark_applied(pair.applied_conflicts, session=session)
                for side, fields in pair.writes.items():
                    target_record = pair.crm if side == "crm" else pair.acc
                    before = {k: jsonable(target_record.fields.get(k)) for k in fields}
                    await stores.audit.record(
                        target_record.system,
                        target_record.object,
                        target_record.id,
                        before,
                        jsonable(fields),
                        f"{run.name}:{self.obj}: from {pair.source}",
                        session=session,
                    )
                await stores.dead_letters.clear(
                    run.name, self.obj, source_side, source_record.id, session=session
                )

    # --- reporting and parking -----------------------------------------------------------------------
    def _action(
        self,
        kind: ActionKind,
        source: str,
        target: str,
        *,
        changes: Sequence[FieldChange] = (),
        reason: str = "",
    ) -> None:
        self.run.actions.append(
            PlannedAction(kind, self.run.name, self.obj, source, target, tuple(changes), reason)
        )

    def _skip(self, record: Record, reason: str) -> None:
        self._action("skip", describe(record), "", reason=reason)

    async def _park(self, side: Side, record: Record, reason: str, *, retry: bool) -> None:
        self._skip(record, reason)
        if self.run.dry_run:
            return
        async with self.run.stores.db.transaction() as session:
            await self._park_in(session, side, record, reason, retry=retry)

    async def _park_in(
        self, session: object, side: Side, record: Record, reason: str, *, retry: bool
    ) -> None:
        run = self.run
        await run.stores.dead_letters.park(
            run.connector(side).name,
            run.name,
            self.obj,
            side,
            record.id,
            reason,
            next_attempt_at=utcnow() + run.retry_after if retry else None,
            payload={"object": record.object},
            session=session,  # type: ignore[arg-type]
        )


class _Ambiguous(WaitingError):
    """More than one record on the other side has the same match keys; a person must decide."""
