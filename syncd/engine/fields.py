"""A linked pair's mapped fields decided three-way against base: what to write on each side, the new base, and
the fields parked for a person (a manual rule, an invoice already sent); resolved conflicts applied first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from syncd.connectors.base import FieldValue, Record
from syncd.engine import lifecycle
from syncd.engine.context import LifecyclePolicy
from syncd.engine.pairs import ConflictNote
from syncd.engine.plan import FieldChange
from syncd.engine.rules import FieldDecision, FieldInput, decide_field
from syncd.mapping.compiled import ObjectMapper, writes_to
from syncd.mapping.spec import Direction, Side
from syncd.mapping.values import CanonicalValue


@dataclass
class FieldPlan:
    """What the field rules decide for one pair: side values to write, the changes shown, base and conflicts."""

    base: dict[str, CanonicalValue]
    writes: dict[Side, dict[str, FieldValue]] = field(default_factory=dict)  # only sides with something to write
    changes: dict[Side, list[FieldChange]] = field(default_factory=lambda: {"crm": [], "accounting": []})
    conflicts: list[ConflictNote] = field(default_factory=list)


def plan_fields(
    mapper: ObjectMapper,
    policy: LifecyclePolicy,
    crm: Record,
    acc: Record,
    base: Mapping[str, CanonicalValue],
    resolved: Mapping[str, CanonicalValue],
) -> FieldPlan:
    """Each mapped field of a pair decided three-way against `base`, a `resolved` conflict's value first."""
    crm_values, acc_values = mapper.to_canonical("crm", crm), mapper.to_canonical("accounting", acc)
    sent_status = lifecycle.frozen_status(mapper, policy.editable_invoice_statuses, acc)
    plan = FieldPlan(dict(base))
    decisions: list[FieldDecision] = []
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
            decisions.extend(_apply_resolution(name, resolved[name], crm_v, acc_v, mapped.direction))
            plan.base[name] = resolved[name]
            continue
        if has_base and crm_v == acc_v and base[name] == crm_v:
            # In sync and unchanged since base (most fields of most pairs): decide_field's "keep", which
            # writes nothing, parks nothing and leaves base as it is, without building its input and decision.
            continue
        state = FieldInput(base.get(name), has_base, crm_v, acc_v)
        decision = decide_field(
            name,
            state,
            direction=mapped.direction,
            rule=mapped.conflict,
            crm_modified=crm.modified_at,
            acc_modified=acc.modified_at,
        )
        note = _parked(decision, state, sent_status)
        if note is not None:
            plan.conflicts.append(note)
            continue
        decisions.append(decision)
        if decision.action != "keep" or has_base:
            plan.base[name] = decision.value
    _add_writes(plan, mapper, decisions, {"crm": crm_values, "accounting": acc_values})
    return plan


def _parked(decision: FieldDecision, state: FieldInput, sent_status: str | None) -> ConflictNote | None:
    """The conflict a decision parks for a person: a manual rule, or an edit of an invoice already sent."""
    if decision.action == "conflict":
        return ConflictNote(decision.field, state.base, state.crm, state.acc, decision.reason)
    if decision.action == "to_acc" and sent_status is not None:
        return ConflictNote(decision.field, state.base, state.crm, state.acc, lifecycle.frozen_reason(sent_status))
    return None


def _add_writes(
    plan: FieldPlan,
    mapper: ObjectMapper,
    decisions: Sequence[FieldDecision],
    values: Mapping[Side, Mapping[str, CanonicalValue]],
) -> None:
    """The writes and the changes shown for the decisions that copy a value over."""
    writes: dict[Side, dict[str, CanonicalValue]] = {"crm": {}, "accounting": {}}
    for d in decisions:
        if d.action in ("to_crm", "to_acc"):
            target: Side = "crm" if d.action == "to_crm" else "accounting"
            writes[target][d.field] = d.value
            plan.changes[target].append(FieldChange(d.field, values[target].get(d.field), d.value))
    plan.writes = {s: dict(mapper.canonical_to_side(s, w)) for s, w in writes.items() if w}


def _apply_resolution(
    name: str, value: CanonicalValue, crm_v: CanonicalValue, acc_v: CanonicalValue, direction: Direction
) -> list[FieldDecision]:
    """The writes that carry a resolved conflict's value to each side that does not hold it yet."""
    out = []
    if crm_v != value and writes_to(direction, "crm"):
        out.append(FieldDecision(name, "to_crm", value, "conflict resolved"))
    if acc_v != value and writes_to(direction, "accounting"):
        out.append(FieldDecision(name, "to_acc", value, "conflict resolved"))
    return out
