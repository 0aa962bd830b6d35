"""First sight of a record without a link: the document the other side already holds is linked, not created again
(an invoice made by hand for a deal won last year, a payment recorded before syncd), and the past is left alone:
a record dated before its object's `sync_from` is linked when it matches and otherwise never copied."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from syncd.connectors.base import Record
from syncd.engine.context import MappingRun, describe, other, side_object
from syncd.engine.matching import AmbiguousMatchError, find_match
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import NEW, WaitingError
from syncd.errors import SkippableError
from syncd.mapping.compiled import DocumentMatch, writes_to
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue
from syncd.store.columns import utcnow

#: The other side's ids of what a record refers to (its customer), syncing a missing one first.
ResolveReferences = Callable[[], Awaitable[Mapping[str, str]]]


class AmbiguousDocumentError(AmbiguousMatchError):
    """More than one document fits a record (or one document fits several records): a person picks."""


@dataclass(frozen=True)
class FirstSight:
    """What history says about a record without a link: the other side's document it is (with the base that
    adopts that document as it stands), that it is history left alone (already reported), or neither."""

    counterpart: Record | None = None
    base: Mapping[str, CanonicalValue] = field(default_factory=dict)
    left_alone: bool = False


async def activate(run: MappingRun) -> date | datetime:
    """The moment the run's mapping was first activated, recorded now if it never was (read only in a dry run)."""
    activations = run.stores.activations
    if run.dry_run:
        return await activations.get(run.name) or utcnow()
    return await activations.activate(run.name)


class History:
    """One object's history rules within a pass: its document match and its `sync_from` cut-off."""

    def __init__(self, scope: ObjectRun) -> None:
        self.scope = scope
        self._activated: date | datetime | None = None
        # The other side's documents by (field, value) as read this pass: several records of one customer
        # need that customer's documents read once.
        self._read: dict[tuple[Side, str, str], list[Record]] = {}
        # Documents matched this pass, by id → the record that took them: a second taker makes both ambiguous.
        self._taken: dict[str, str] = {}

    async def first_sight(
        self, side: Side, record: Record, resolve: ResolveReferences, *, attached: bool
    ) -> FirstSight:
        """A record read from `side` that no link holds: its matching document, or history left alone, or
        nothing to say (the pipeline goes on to its match keys and creates). `resolve` gives the other side's
        ids of what the record refers to; history never waits for them: what cannot be matched is left alone."""
        mapper = self.scope.mapper
        cut_off = await self._cut_off()
        dated = mapper.to_canonical(side, record).get(mapper.sync_from.field) if mapper.sync_from else None
        past = cut_off is not None and mapper.sync_from is not None and mapper.sync_from.is_before(dated, cut_off)
        if not attached and mapper.match is not None and mapper.create.may_create_on(other(side)):
            try:
                references: Mapping[str, str] | None = await resolve()
            except WaitingError:
                if not past:
                    raise
                references = None  # its customer is not linked: nothing to match it with
            found = await self._document(side, record, references) if references is not None else None
            if found is not None:
                return FirstSight(found, self._adopted_base(side, record))
        if not past or mapper.sync_from is None or cut_off is None:
            return FirstSight()
        if mapper.match_keys and not attached:
            # The past may still match on the object's keys (checked here, since it is not created after).
            matched = await find_match(self.scope, side, record)
            if matched is not None:
                return FirstSight(matched)
        self.scope.skip(
            record,
            f"{mapper.sync_from.field} {_text(dated)} is before sync_from {_text(cut_off)}: history, "
            "matched nothing, left alone",
        )
        return FirstSight(left_alone=True)

    async def _cut_off(self) -> date | datetime | None:
        """The object's cut-off; the mapping's activation is recorded on first sight of any record, so that
        even a mapping that has nothing to date yet starts its history now."""
        if self._activated is None:
            self._activated = await activate(self.scope.run)
        rule = self.scope.mapper.sync_from
        if rule is None:
            return None
        return rule.since if rule.since is not None else self._activated

    # --- the document match ---------------------------------------------------------------------------
    async def _document(self, side: Side, record: Record, references: Mapping[str, str]) -> Record | None:
        """The other side's one unlinked document that fits `record`: its reference, else its customer with
        amount and date within tolerance; several fitting are reported, never guessed."""
        rule = self.scope.mapper.match
        assert rule is not None
        target = other(side)
        fitting = await self._by_reference(rule, side, record)
        how = "reference"
        if fitting is None:
            fitting = await self._by_customer(rule, side, record, references)
            how = f"{rule.customer}, amount and date"
        free: list[Record] = []
        for candidate in fitting:
            taker = self._taken.get(candidate.id)
            if taker is not None and taker != record.id:
                raise AmbiguousDocumentError(
                    f"{describe(candidate)} fits this record and {taker} (matched on {how}): link one by hand"
                )
            if await self._free(target, candidate):
                free.append(candidate)
        if len(free) > 1:
            ids = ", ".join(sorted(c.id for c in free))
            raise AmbiguousDocumentError(
                f"ambiguous match on {how}: {side_object(self.scope.mapper, target)} {ids} all fit; link one by hand"
            )
        if not free:
            return None
        await self._check_rivals(rule, side, record, free[0], references, how)
        self._taken[free[0].id] = record.id
        return free[0]

    async def _by_reference(self, rule: DocumentMatch, side: Side, record: Record) -> list[Record] | None:
        """The documents carrying this record's reference; None when the rule or the record has none."""
        if rule.reference is None:
            return None
        value = rule.value(rule.reference, side, record)
        if value is None:
            return None
        target = other(side)
        found = await self._find(target, rule.reference.side_name(target), str(value))
        fitting = [c for c in found if rule.value(rule.reference, target, c) == value]
        # A reference nobody carries says nothing: the customer, amount and date may still find the document.
        return fitting or None

    async def _by_customer(
        self, rule: DocumentMatch, side: Side, record: Record, references: Mapping[str, str]
    ) -> list[Record]:
        """The documents of this record's (linked) customer whose amount and date are within tolerance."""
        if rule.customer is None:
            return []
        target = other(side)
        customer = references.get(rule.customer)
        field_name = self.scope.mapper.references[rule.customer].side_field(target)
        if customer is None or customer == NEW or field_name is None:
            return []  # a customer this pass creates has no documents yet
        found = await self._find(target, field_name, customer)
        return [c for c in found if rule.near(record, side, c, target)]

    async def _check_rivals(
        self, rule: DocumentMatch, side: Side, record: Record, document: Record, references: Mapping[str, str],
        how: str,
    ) -> None:
        """One document seen from here may be one of several records seen from there (two deals of one customer,
        one amount, a few days apart, and one invoice): pairing it with either would be a guess."""
        if rule.customer is None or how == "reference":
            return
        ref = self.scope.mapper.references[rule.customer]
        field_name = ref.side_field(side)
        own = references.get(rule.customer)
        # The customer as this side names it: the record's own field holds it.
        customer = record.fields.get(field_name) if field_name is not None else None
        if own is None or customer is None or customer == "":
            return
        try:
            found = await self._find(side, field_name or "", str(customer))
        except SkippableError:
            return  # this side cannot be searched by customer; records of this pass still meet in `_taken`
        rivals = []
        for other_record in found:
            if other_record.id == record.id or not rule.near(other_record, side, document, other(side)):
                continue
            if await self.scope.run.lookup(self.scope.obj, side, other_record.id) is None:
                rivals.append(other_record.id)
        if rivals:
            raise AmbiguousDocumentError(
                f"ambiguous match on {how}: {', '.join([record.id, *sorted(rivals)])} all fit "
                f"{describe(document)}; link one by hand"
            )

    async def _find(self, side: Side, field_name: str, value: str) -> Sequence[Record]:
        """Live records of `side` whose `field_name` is `value`, read once per pass."""
        key = (side, field_name, value)
        if key not in self._read:
            obj = side_object(self.scope.mapper, side)
            found = await self.scope.run.connector(side).find_by_field(obj, field_name, [value])
            self._read[key] = [r for r in found.get(value, []) if not r.deleted and self._accepted(side, r)]
        return self._read[key]

    def _accepted(self, side: Side, record: Record) -> bool:
        mapper = self.scope.mapper
        return mapper.accepts_crm(record) if side == "crm" else mapper.accepts_acc(record)

    async def _free(self, side: Side, candidate: Record) -> bool:
        """Whether no link (nor a link this pass plans) holds the document."""
        scope = self.scope
        if scope.run.link_planned(scope.obj, side, candidate.id):
            return False
        return await scope.run.lookup(scope.obj, side, candidate.id) is None

    def _adopted_base(self, side: Side, record: Record) -> dict[str, CanonicalValue]:
        """The base a matched document is linked with: the record's own values of the fields that only ever
        go to the document's side. The document already stands for the record (a paid invoice for the won
        deal), so lines worded differently are not an edit to push into it; later changes of the record are."""
        mapper = self.scope.mapper
        target = other(side)
        values = mapper.to_canonical(side, record)
        return {
            name: values.get(name)
            for name, mapped in mapper.fields.items()
            if not mapped.create_only and mapped.writes_to(target) and not writes_to(mapped.direction, side)
        }


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)
