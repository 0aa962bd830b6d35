"""The pure three-way field decision: base snapshot, CRM value and accounting value in, one action out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from syncd.mapping.compiled import writes_to
from syncd.mapping.spec import ConflictRule, Direction
from syncd.mapping.values import CanonicalValue

#: keep: nothing to write, base unchanged; settle: both sides agree, only base moves; to_crm/to_acc: write the
#: winning value onto that side and move base to it; conflict: park the field for a person, base unchanged.
Action = Literal["keep", "settle", "to_crm", "to_acc", "conflict"]
Winner = Literal["crm", "accounting"]


@dataclass(frozen=True)
class FieldInput:
    """What is known about one canonical field of one linked record pair."""

    base: CanonicalValue
    has_base: bool
    crm: CanonicalValue
    acc: CanonicalValue


@dataclass(frozen=True)
class FieldDecision:
    """What to do with one field; `value` is the base the field holds once the action is applied."""

    field: str
    action: Action
    value: CanonicalValue
    reason: str = ""

    @property
    def writes(self) -> bool:
        """Whether this decision writes to a system."""
        return self.action in ("to_crm", "to_acc")


def _latest(crm_modified: datetime | None, acc_modified: datetime | None) -> Winner:
    # An unknown time never beats a known one; a tie goes to the CRM, where the edit usually starts.
    if acc_modified is not None and (crm_modified is None or acc_modified > crm_modified):
        return "accounting"
    return "crm"


def decide_field(
    name: str,
    state: FieldInput,
    *,
    direction: Direction,
    rule: ConflictRule,
    crm_modified: datetime | None = None,
    acc_modified: datetime | None = None,
) -> FieldDecision:
    """Decide one field per DESIGN.md: one side changed → copy; both the same → settle; both differ → rule."""
    crm, acc, base = state.crm, state.acc, state.base
    if crm == acc:
        if state.has_base and base == crm:
            return FieldDecision(name, "keep", base)
        return FieldDecision(name, "settle", crm, "both sides hold the same value")
    crm_changed = not state.has_base or crm != base
    acc_changed = not state.has_base or acc != base
    winner: Winner | None
    why: str
    if not state.has_base and (crm is None or acc is None):
        # First linking: an empty side has nothing to say, so the side holding a value fills it.
        if crm is None:
            winner, why = "accounting", "only accounting has a value"
        else:
            winner, why = "crm", "only CRM has a value"
    elif crm_changed and not acc_changed:
        winner, why = "crm", "changed in CRM"
    elif acc_changed and not crm_changed:
        winner, why = "accounting", "changed in accounting"
    elif direction == "crm_to_accounting":
        winner, why = "crm", "both changed; field is CRM → accounting"
    elif direction == "accounting_to_crm":
        winner, why = "accounting", "both changed; field is accounting → CRM"
    elif rule == "crm":
        winner, why = "crm", "both changed; rule: crm wins"
    elif rule == "accounting":
        winner, why = "accounting", "both changed; rule: accounting wins"
    elif rule == "latest":
        winner = _latest(crm_modified, acc_modified)
        why = f"both changed; rule: latest ({'CRM' if winner == 'crm' else 'accounting'} is newer)"
    else:
        winner, why = None, "both changed differently; rule: manual"
    if winner is None:
        return FieldDecision(name, "conflict", base, why)
    target: Winner = "accounting" if winner == "crm" else "crm"
    if not writes_to(direction, target):
        # The winning side may not be copied over (one-way field): leave both as they are.
        held = base if state.has_base else (crm if direction == "crm_to_accounting" else acc)
        return FieldDecision(name, "keep", held, f"{why}; not copied: field is {direction}")
    value = crm if winner == "crm" else acc
    return FieldDecision(name, "to_acc" if winner == "crm" else "to_crm", value, why)
