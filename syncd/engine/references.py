"""Following a record's references (syncing a missing dependency first) and carrying moved references across
three-way, with resolved reference conflicts applied."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from syncd.connectors.base import FieldValue, Record
from syncd.engine import lifecycle
from syncd.engine.context import describe, other, side_id, side_object
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import NEW, ConflictNote, WaitingError
from syncd.engine.plan import FieldChange
from syncd.engine.snapshot import decode_value
from syncd.engine.vanished import reference_mark, reference_marks
from syncd.mapping.compiled import ObjectMapper, writes_to
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue, lookup
from syncd.store import Conflict

#: Runs one record of another mapped object through its own pipeline (a dependency synced on demand).
SyncDependency = Callable[[ObjectMapper, Side, Record], Awaitable[None]]


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
    reopened: list[int] = field(default_factory=list)  # resolved conflicts it cannot: back to a person
    held: set[str] = field(default_factory=set)  # references whose CRM mark stays at base (move undecided)

    def marks(self, mapper: ObjectMapper, crm: Record, acc_fields: Mapping[str, object]) -> dict[str, str]:
        """The reference marks a pair's new base keeps, `acc_fields` being the accounting record as written."""
        # What each side refers to, so a referring record can be checked when its referenced one changes, and
        # a later move of the CRM record told from a change made in accounting alone. A move still undecided
        # keeps its CRM mark at base, so that it is seen again (and a resolution can settle it).
        held = {reference_mark("crm", name) for name in self.held}
        marks = {k: v for k, v in reference_marks(mapper, "crm", crm.fields).items() if k not in held}
        marks.update(reference_marks(mapper, "accounting", acc_fields))
        return marks


class References:
    """Follows one object's references: the ids they resolve to on the other side, and moves to carry over."""

    def __init__(self, scope: ObjectRun, sync_dependency: SyncDependency) -> None:
        self.scope = scope
        self.run = scope.run
        self.mapper = scope.mapper
        self._sync_dependency = sync_dependency

    async def resolve(self, side: Side, record: Record) -> dict[str, str]:
        """The other side's ids of every record this one refers to, syncing a missing dependency first."""
        resolved: dict[str, str] = {}
        for name, ref in self.mapper.references.items():
            field_name = ref.side_field(side)
            if field_name is None:
                # Attached on this side: the record refers to itself (an accounting contact is its own customer).
                source_id: str | None = record.id
            else:
                raw = lookup(record.fields, field_name)
                source_id = None if raw is None or raw == "" else str(raw)
            if source_id is None:
                raise WaitingError(f"it has no {name} yet")
            found = await self.dependency(ref.target, side, source_id)
            if found is None:
                raise WaitingError(f"waiting for {ref.target} {source_id} to be linked")
            resolved[name] = found
        return resolved

    async def crm_references(self, crm: Record, *, wait: bool) -> dict[str, CrmReference] | None:
        """What a linked CRM record refers to through each reference carried to accounting, with the
        accounting id each target has; None when this object carries no reference CRM → accounting.

        Only CRM → accounting: a CRM reference (an association) is not a field that one write replaces.
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
            wanted = await self.dependency(ref.target, "crm", str(raw))
            if wanted is None and wait:
                raise WaitingError(f"waiting for {ref.target} {raw} to be linked")
            if wanted is not None and wanted != NEW:
                found[name] = CrmReference(str(raw), wanted)
        return found

    async def dependency(self, obj: str, side: Side, source_id: str) -> str | None:
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
            await self._sync_dependency(dep_mapper, side, found[source_id])
        return None

    async def plan(
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
        plan = ReferencePlan()
        sent_status = lifecycle.frozen_status(self.mapper, self.run.policy.editable_invoice_statuses, acc)
        for name, ref in self.mapper.references.items():
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
                current, settled = await self._apply_resolutions(
                    plan, name, ref.target, acc_field, acc, decisions, current, now
                )
                crm_moved = crm_moved and not settled
            if crm_moved and now is not None and now.acc_id != current:
                self._carry_move(plan, name, acc_field, now.acc_id, current, base, sent_status)
        return plan

    async def _apply_resolutions(
        self,
        plan: ReferencePlan,
        name: str,
        target: str,
        acc_field: str,
        acc: Record,
        decisions: Sequence[Conflict],
        current: str | None,
        now: CrmReference | None,
    ) -> tuple[str | None, bool]:
        """Apply the latest resolved conflict of one reference: the accounting id it holds afterwards, and
        whether the decision settles the CRM's current move."""
        latest = decisions[-1]  # oldest first: the latest decision supersedes earlier ones
        chosen, refusal = await self._resolved_reference(target, latest, current)
        if refusal is not None:
            # Not applied: the conflict goes back to a person (said once, not on every pass), and the move stays
            # undecided below, which refreshes the reopened conflict's values. Earlier decisions were overridden.
            self.run.errors.append(
                f"{describe(acc)}: conflict {latest.id} ({name}) not applied, reopened: {refusal}"
            )
            plan.reopened.append(latest.id)
            plan.applied.extend(c.id for c in decisions[:-1])
            return current, False
        if chosen != current:
            plan.writes[acc_field] = chosen
            plan.changes.append(FieldChange(name, current, chosen))
            current = chosen
        plan.applied.extend(c.id for c in decisions)
        # The decision was about what the CRM refers to now: settled.
        settled = now is not None and decode_value(latest.crm_value) == now.acc_id
        return current, settled

    @staticmethod
    def _carry_move(
        plan: ReferencePlan,
        name: str,
        acc_field: str,
        wanted: str,
        current: str | None,
        base: Mapping[str, CanonicalValue],
        sent_status: str | None,
    ) -> None:
        """Write the CRM's moved reference to accounting, or park it when the invoice was already sent."""
        if sent_status is not None:
            base_id = base.get(reference_mark("accounting", name))
            plan.conflicts.append(ConflictNote(name, base_id, wanted, current, lifecycle.frozen_reason(sent_status)))
            plan.held.add(name)
            return
        plan.writes[acc_field] = wanted
        plan.changes.append(FieldChange(name, current, wanted))

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
