"""Planning a create for a record without a counterpart: the fields to write, its deterministic reference, and
the pending link (the intent) written before the create so that a crash never creates it twice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from syncd.connectors.base import FieldValue, Record
from syncd.engine.context import create_reference, describe, other, side_object
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import NEW, Batch, CreateWork
from syncd.engine.plan import FieldChange
from syncd.engine.vanished import reference_marks
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue
from syncd.store import Link


@dataclass(frozen=True)
class _Copy:
    """A source record as the target sees it: the fields a create writes, the base it leaves, the changes shown."""

    fields: dict[str, FieldValue]
    base: dict[str, CanonicalValue]
    changes: tuple[FieldChange, ...]


async def plan_create(
    scope: ObjectRun, batch: Batch, side: Side, record: Record, link: Link | None, references: Mapping[str, str]
) -> None:
    """Add a create on the other side to `batch`, behind a pending link, if the mapping allows creating there."""
    mapper, run = scope.mapper, scope.run
    target = other(side)
    ref_field = mapper.create.ref_field(target)
    if not mapper.create.may_create_on(target) or ref_field is None:
        scope.skip(record, f"no linked {side_object(mapper, target)} record, and creating one is off")
        return
    reference = (
        link.reference if link is not None else create_reference(run.name, scope.obj, side, record.id)
    )
    copy = _copy(mapper, side, record, references)
    copy.fields[ref_field] = reference
    after_status = _after_status(scope, target, copy.fields)
    # A new create's pending link (its intent) is written by the writer with the batch's others, before any
    # of them is sent.
    pending = link
    run.plan_link(scope.obj, side, record.id, NEW)
    reported = scope.action(
        "create",
        describe(record),
        f"{run.system(target)} {side_object(mapper, target)} {NEW}",
        changes=copy.changes,
        reason=f"reference {reference}",
    )
    batch.creates.append(
        CreateWork(
            pending, record, target, reference, copy.fields, copy.base, copy.changes, after_status, reported
        )
    )


def _copy(mapper: ObjectMapper, side: Side, record: Record, references: Mapping[str, str]) -> _Copy:
    """The target's fields for a copy of `record` (references resolved), and the base the copy leaves."""
    target = other(side)
    canonical = mapper.to_canonical(side, record)
    values = {n: v for n, v in canonical.items() if mapper.fields[n].writes_to(target)}
    fields = dict(mapper.canonical_to_side(target, values, creating=True))
    for name, ref in mapper.references.items():
        if (target_field := ref.side_field(target)) is not None:
            fields[target_field] = references[name]
    base: dict[str, CanonicalValue] = {
        n: v for n, v in canonical.items() if n in values and not mapper.fields[n].create_only
    }
    base.update(reference_marks(mapper, side, record.fields))
    changes = tuple(FieldChange(n, None, v) for n, v in values.items() if v is not None)
    return _Copy(fields, base, changes)


def _after_status(scope: ObjectRun, target: Side, fields: dict[str, FieldValue]) -> str | None:
    """The status a record is created with, taken out of its fields when the target system moves it only by
    actions (the create makes its initial status, a draft); the status to reach afterwards only if the mapping
    says `mark_sent`, else None: a new invoice stays a draft for a person to send."""
    mapper = scope.mapper
    moved = scope.run.connector(target).action_fields.get(side_object(mapper, target))
    if moved is None:
        return None
    status = fields.pop(moved.field, None)
    if not mapper.create.mark_sent:
        return None
    return status if isinstance(status, str) and status != moved.initial else None
