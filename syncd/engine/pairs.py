"""The work a batch plans, as values: pairs to bring in step, records to create, fields parked for a person."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from syncd.connectors.base import FieldValue, Record
from syncd.engine.plan import FieldChange, PlannedAction
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue
from syncd.store import Link

if TYPE_CHECKING:
    from syncd.engine.references import CrmReference

#: Stands for the other side's id of a record this run creates (or, in a dry run, would create).
NEW = "(new)"
#: Why records reach the pipeline: read by a poll (a stamp seen before means unchanged), fetched because
#: something announced a change (a webhook, a dependency, a retry: stamps are not trusted), or re-read to
#: carry out a resolved conflict (planned whole even when nothing changed).
ReadCause = Literal["poll", "announced", "resolution"]
#: Both sides, in the order the pipeline writes and reports them.
SIDES: tuple[Side, Side] = ("crm", "accounting")


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
    reopened_conflicts: tuple[int, ...] = ()  # resolved conflicts whose resolution cannot be carried out
    source: str = ""
    source_side: Side = "crm"
    # The actions reported for it ("link", and each side written), which the write's outcome settles.
    reported: dict[str, PlannedAction] = field(default_factory=dict, compare=False)
    # What it was planned with besides its records, so that a target found moved is planned again alike.
    first_base: Mapping[str, CanonicalValue] | None = None
    crm_refs: Mapping[str, CrmReference] | None = None

    def record(self, side: Side) -> Record:
        """The pair's record on `side`."""
        return self.crm if side == "crm" else self.acc


@dataclass(frozen=True)
class CreateWork:
    """A record to create on `target` for a source record without a counterpart."""

    link: Link | None  # the pending intent (None until the writer writes the batch's intents, and in a dry run)
    source: Record
    target: Side
    reference: str
    fields: Mapping[str, FieldValue]
    base: Mapping[str, CanonicalValue]
    changes: tuple[FieldChange, ...]
    after_status: str | None = None  # invoice status to reach by an action after the create
    reported: PlannedAction | None = None  # the "create" reported for it, which the outcome settles


@dataclass
class Batch:
    """The work planned for one batch of records, executed together and committed together."""

    pairs: list[PairWork] = field(default_factory=list)
    creates: list[CreateWork] = field(default_factory=list)
    # Linked records read again in step with base: (link id, side, stamp), remembered as seen.
    seen: list[tuple[int, Side, datetime]] = field(default_factory=list)
    # When this batch read records (event-loop clock, taken as each read was asked), by (side, id): a
    # record read here recently enough is written without reading it again (see `recheck`).
    read_at: dict[tuple[Side, str], float] = field(default_factory=dict)
    # Targets read again just before their write (see `recheck`); only their write answers' stamps are kept
    # as seen: any other target may have taken an edit between its read and our write, which our stamp
    # would cover, so its echo is compared once on its next read instead.
    checked: set[tuple[Side, str]] = field(default_factory=set)
