"""What one pass over one mapping file shares: connectors, stores, the dry-run switch and test hooks."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from syncd.connectors.base import Connector, FieldValue, Record, WriteOutcome
from syncd.engine.action_log import ActionLog
from syncd.engine.match_index import FullRead, MatchIndex
from syncd.engine.pass_records import LINKED, PassRecords
from syncd.engine.plan import PlannedAction
from syncd.mapping.compiled import CompiledMapping, ObjectMapper
from syncd.mapping.spec import Side
from syncd.store import (
    ActivationStore,
    AuditLog,
    ConflictStore,
    CursorStore,
    Database,
    DeadLetterStore,
    Link,
    LinkStore,
    WriteJournal,
)

#: How old the read a write was planned from may be before the target is read again to check it did not move:
#: systems without a conditional batch update leave this (plus one round trip) as the window in which an
#: edit landing after syncd's read can still be overwritten.
RECHECK_AFTER = timedelta(seconds=1)

if TYPE_CHECKING:
    from syncd.engine.targets import TargetLocks

#: Called right after a connector's create returned and before the links are committed; a test raises here
#: to show that a crash at the worst moment is repaired by the reference lookup, not by creating again.
AfterCreateHook = Callable[[str, str, Sequence[WriteOutcome]], None]
#: Awaited once a batch is planned, before its targets are checked and written, with the ids it is about to
#: update per system; a test edits a target here to land an edit between syncd's read and its write.
BeforeWriteHook = Callable[[Mapping[str, Sequence[str]]], Awaitable[None]]
#: Called with the mapping object's name once writes were sent and answered, just before they are recorded (a
#: batch's commit, a void's journal row completed); a test raises here to stand for a process killed between
#: its writes and their commit (the journal then tells the next pass).
BeforeCommitHook = Callable[[str], None]


@dataclass(frozen=True)
class PipelineHooks:
    """Points where tests (and only tests) may interrupt the pipeline."""

    after_create: AfterCreateHook | None = None
    before_write: BeforeWriteHook | None = None
    before_commit: BeforeCommitHook | None = None


@dataclass(frozen=True)
class LifecyclePolicy:
    """Engine rules for the deal → invoice lifecycle that mapping files do not (yet) express."""

    void_lost_invoices: bool = True
    # Statuses (lower-cased) in which an invoice may still be edited, after which edits become conflicts; None
    # keeps each accounting system's own (its registration's `InvoiceLifecycle.editable`).
    editable_invoice_statuses: frozenset[str] | None = None


@dataclass(frozen=True)
class Stores:
    """The repositories the engine writes through."""

    db: Database
    links: LinkStore
    conflicts: ConflictStore
    dead_letters: DeadLetterStore
    audit: AuditLog
    cursors: CursorStore
    activations: ActivationStore
    journal: WriteJournal

    @classmethod
    def on(cls, db: Database) -> Stores:
        """Every repository over one open database."""
        return cls(
            db, LinkStore(db), ConflictStore(db), DeadLetterStore(db), AuditLog(db), CursorStore(db),
            ActivationStore(db), WriteJournal(db),
        )  # fmt: skip


def other(side: Side) -> Side:
    """The opposite side."""
    return "accounting" if side == "crm" else "crm"


def side_object(mapper: ObjectMapper, side: Side) -> str:
    """The system object an object mapper reads and writes on `side`."""
    return mapper.crm_object if side == "crm" else mapper.acc_object


def side_id(link: Link, side: Side) -> str | None:
    """The record id a link holds on `side`."""
    return link.crm_id if side == "crm" else link.acc_id


def create_reference(mapping: str, obj: str, side: Side, source_id: str) -> str:
    """The deterministic reference stored on a record syncd creates: the same source always gives the same."""
    digest = hashlib.sha256(f"{mapping}\x1f{obj}\x1f{side}\x1f{source_id}".encode()).hexdigest()
    return f"syncd-{digest[:20]}"


def describe(record: Record) -> str:
    """How a record is named in reports: `system object id`."""
    return f"{record.system} {record.object} {record.id}"


def jsonable(value: FieldValue | object) -> Any:
    """A side's field value as JSON for the audit log and dead letters."""
    if isinstance(value, Decimal | date | datetime):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


@dataclass
class MappingRun:
    """One pass over one mapping file; holds what its object pipelines share, including the report."""

    name: str
    mapping: CompiledMapping
    crm: Connector
    acc: Connector
    stores: Stores
    dry_run: bool = False
    hooks: PipelineHooks = field(default_factory=PipelineHooks)
    policy: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    # How long a parked record (failed write, missing dependency) waits before it is tried again.
    retry_after: timedelta = timedelta(seconds=60)
    # A target read longer ago than this is read again just before it is written (see `recheck`).
    recheck_after: timedelta = RECHECK_AFTER
    actions: ActionLog = field(default_factory=ActionLog)
    errors: list[str] = field(default_factory=list)
    # The records this pass read (a record some linked record refers to that changed is a reason to check that
    # the linked record still exists: see `vanished`), handled (so a dependency synced on demand is not planned
    # twice) and gave a first link (no other record may take them), in one compact map by (object, side).
    records: PassRecords = field(default_factory=PassRecords)
    # Dry run only (nothing is stored to look up): links the plan would make, (object, side, id) → the other
    # side's id (or "(new)").
    planned_links: dict[tuple[str, Side, str], str] = field(default_factory=dict)
    # First sync: each side of an object read whole once, indexed by match key, so first-time linking needs
    # no lookup per record; a side read whole for the index is handed to that side's own read too.
    match_indexes: dict[tuple[str, Side], MatchIndex] = field(default_factory=dict)
    # Who else matches and creates on the same targets in this process (set by the reconciler).
    target_locks: TargetLocks | None = None
    full_reads: dict[tuple[str, Side], FullRead] = field(default_factory=dict)
    # Every read of this run happens after this moment (what a record's stamp is trusted against).
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def match_index(self, obj: str, side: Side, system_object: str) -> MatchIndex | None:
        """The first sync's index of `side`, unless another mapping may have created there since it was read
        (two CRMs into one organisation): then it is dropped, and matching looks each record up."""
        index = self.match_indexes.get((obj, side))
        locks = self.target_locks
        if index is not None and locks is not None and locks.written_by_others((self.system(side), system_object),
                                                                               self.name):
            del self.match_indexes[(obj, side)]
            return None
        return index

    def plan_link(self, obj: str, side: Side, record_id: str, other_id: str) -> None:
        """Note that this pass's plan gives `record_id` (of `obj` on `side`) a first link, to `other_id`."""
        self.records.mark(obj, side, record_id, LINKED)
        if self.dry_run:
            self.planned_links[(obj, side, record_id)] = other_id

    def link_planned(self, obj: str, side: Side, record_id: str) -> bool:
        """Whether this pass's plan already gives `record_id` (of `obj` on `side`) a first link."""
        return self.records.has(obj, side, record_id, LINKED)

    def settle(self, planned: PlannedAction, outcome: PlannedAction | None) -> None:
        """Replace an action reported when it was planned by what came of it (a refused write becomes an
        error), or drop it (None) when it did not happen; the report then says what was done."""
        self.actions.settle(planned, outcome)

    def connector(self, side: Side) -> Connector:
        """The connector of `side`."""
        return self.crm if side == "crm" else self.acc

    def read_from(self, side: Side) -> datetime:
        """This run's start by `side`'s own clock (the one its stamps are on), as far as its answers tell."""
        offset = getattr(self.connector(side), "clock_offset", None)
        return self.started + offset if isinstance(offset, timedelta) else self.started

    def stamp_resolution(self, side: Side) -> timedelta:
        """How finely `side`'s system stamps modifications (whole seconds unless its connector says finer)."""
        resolution = getattr(self.connector(side), "stamp_resolution", None)
        return resolution if isinstance(resolution, timedelta) else timedelta(seconds=1)

    def system(self, side: Side) -> str:
        """The system name of `side` as links record it."""
        return self.mapping.crm_system if side == "crm" else self.mapping.acc_system

    async def lookup(self, obj: str, side: Side, record_id: str) -> Link | None:
        """The link of `obj` holding `record_id` on `side`."""
        links = self.stores.links
        find = links.lookup_crm if side == "crm" else links.lookup_acc
        return await find(self.name, obj, self.system(side), record_id)
