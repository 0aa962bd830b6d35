"""Property tests of the three-way field rule: no echo, no silent overwrite, idempotence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from syncd.engine.rules import FieldDecision, FieldInput, decide_field
from syncd.mapping.spec import ConflictRule, Direction

VALUES = st.sampled_from([None, "a", "b", "c"])
RULES = st.sampled_from(["latest", "crm", "accounting", "manual"])
DIRECTIONS = st.sampled_from(["both", "crm_to_accounting", "accounting_to_crm"])
T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMES = st.one_of(st.none(), st.integers(0, 3).map(lambda s: T0 + timedelta(seconds=s)))


def apply(state: FieldInput, decision: FieldDecision) -> FieldInput:
    """The state after the decision's writes (and base move) were carried out."""
    if decision.action == "to_acc":
        return FieldInput(decision.value, True, state.crm, decision.value)
    if decision.action == "to_crm":
        return FieldInput(decision.value, True, decision.value, state.acc)
    if decision.action == "settle":
        return FieldInput(decision.value, True, state.crm, state.acc)
    if decision.action == "keep":
        return FieldInput(decision.value, True, state.crm, state.acc)
    return state  # a conflict changes nothing until someone resolves it


@given(
    base=VALUES,
    has_base=st.booleans(),
    crm=VALUES,
    acc=VALUES,
    rule=RULES,
    direction=DIRECTIONS,
    crm_at=TIMES,
    acc_at=TIMES,
)
def test_the_field_rule_obeys_the_invariants(
    base: str | None,
    has_base: bool,
    crm: str | None,
    acc: str | None,
    rule: ConflictRule,
    direction: Direction,
    crm_at: datetime | None,
    acc_at: datetime | None,
) -> None:
    state = FieldInput(base if has_base else None, has_base, crm, acc)
    decision = decide_field(
        "f", state, direction=direction, rule=rule, crm_modified=crm_at, acc_modified=acc_at
    )
    crm_changed = not has_base or crm != state.base
    acc_changed = not has_base or acc != state.base

    # No echo: a field both sides hold at base writes nothing.
    if has_base and crm == acc == base:
        assert decision.action == "keep"
    # Agreement is never written, only remembered.
    if crm == acc:
        assert not decision.writes
    # Writes only go where the direction allows.
    if decision.action == "to_crm":
        assert direction != "crm_to_accounting"
    if decision.action == "to_acc":
        assert direction != "accounting_to_crm"
    # No silent overwrite: an edited value is replaced only when the rule (or direction) says its side loses.
    if decision.action == "to_acc" and acc_changed and acc is not None:
        assert crm_changed
        assert (
            direction == "crm_to_accounting"
            or rule == "crm"
            or (rule == "latest" and not (acc_at is not None and (crm_at is None or acc_at > crm_at)))
        )
    if decision.action == "to_crm" and crm_changed and crm is not None:
        assert acc_changed
        assert (
            direction == "accounting_to_crm"
            or rule == "accounting"
            or (rule == "latest" and acc_at is not None and (crm_at is None or acc_at > crm_at))
        )
    # manual on a two-way field with both sides edited differently: parked, nothing written.
    if rule == "manual" and direction == "both" and has_base and crm_changed and acc_changed and crm != acc:
        assert decision.action == "conflict"
    # Idempotence: carrying the decision out and deciding again plans no write.
    again = decide_field(
        "f", apply(state, decision), direction=direction, rule=rule, crm_modified=crm_at, acc_modified=acc_at
    )
    assert not again.writes
    assert again.action in ("keep", "conflict")
    if decision.action != "conflict":
        assert again.action == "keep"


def test_examples_read_as_documented() -> None:
    base = FieldInput("a", True, "b", "a")
    assert decide_field("f", base, direction="both", rule="manual").action == "to_acc"
    both = FieldInput("a", True, "b", "c")
    assert decide_field("f", both, direction="both", rule="manual").action == "conflict"
    later = decide_field(
        "f", both, direction="both", rule="latest", crm_modified=T0, acc_modified=T0 + timedelta(seconds=1)
    )
    assert (later.action, later.value) == ("to_crm", "c")
    same = decide_field("f", FieldInput("a", True, "b", "b"), direction="both", rule="manual")
    assert (same.action, same.value) == ("settle", "b")
