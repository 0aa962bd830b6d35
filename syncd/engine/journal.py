"""The write journal, engine side: each write of a batch (updates, the status action that marks a new invoice
sent) and each delete-policy action is journalled (a pending audit row) before it is sent, and a pass resolves
what a writer that is gone (a process that died, a batch that failed between sending and committing) left
pending. A row names its writer (its owner), held while the writer runs: rows of a live writer, in this process
or another, are never resolved.

A pending row names the link and the base fields its write carries ({field: [base before, value written]}),
reference marks included (a reference written is confirmed by the target holding the referenced id). On the
next pass (or start) the targets concerned are read, one batch read per object and side, and for each field the
target still holds the value written (on every side the batch wrote it to), the link's base moves to it: a later
one-sided edit is then a one-sided edit, not a disagreement for a rule to decide. The row is marked
`recovered`; a write whose values the target no longer holds is marked `unconfirmed` and the base stays."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from syncd.connectors.base import Record
from syncd.engine import lifecycle
from syncd.engine.context import MappingRun, jsonable, side_object
from syncd.engine.object_run import ObjectRun
from syncd.engine.pairs import SIDES, PairWork
from syncd.engine.snapshot import decode_base, decode_value, encode_base, encode_value
from syncd.engine.vanished import MARK_PREFIX, reference_mark, reference_marks
from syncd.errors import ConnectorError, SkippableError
from syncd.logs import get_logger
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue
from syncd.store import JournalEntry, JournalOwner, Link, PendingWrite, StaleVersionError

log = get_logger(__name__)

#: Why a pending row became `recovered` / `unconfirmed`, as its cause says.
RECOVERED = "written by a process that stopped before recording it; recovered: the target holds it"
UNCONFIRMED = "sent by a process that stopped before recording it; not confirmed: the target does not hold it"

#: The `after` of a delete's audit row.
DELETED = {"deleted": True}

#: A batch's journalled writes: (id of the pair, side written) → the pending audit row.
Journalled = dict[tuple[int, Side], int]


def update_entries(scope: ObjectRun, pairs: Sequence[PairWork]) -> list[tuple[tuple[int, Side], JournalEntry]]:
    """The journal rows of the updates `pairs` are about to send, one per pair and side written."""
    out: list[tuple[tuple[int, Side], JournalEntry]] = []
    for pair in pairs:
        old = decode_base(pair.link.base) if pair.link is not None else {}
        for side in SIDES:
            fields = pair.writes.get(side)
            if not fields:
                continue
            target = pair.record(side)
            changed = {c.field for c in pair.changes.get(side, ())}
            carried = {f for f in changed if f in pair.base}
            # A reference written (a moved deal's customer) carries both its marks: the id written here and the
            # other side's id it stands for, confirmed together by the target holding the id written.
            for name in sorted(changed & scope.mapper.references.keys()):
                carried |= {m for s in SIDES if (m := reference_mark(s, name)) in pair.base}
            change = {f: [encode_value(old.get(f)), encode_value(pair.base[f])] for f in sorted(carried)}
            out.append((
                (id(pair), side),
                JournalEntry(
                    target.system, target.object, target.id,
                    {k: jsonable(target.fields.get(k)) for k in fields}, jsonable(fields),
                    scope.cause(f"from {pair.source}"), pair.link.id if pair.link is not None else None, change,
                ),
            ))  # fmt: skip
    return out


async def journal_updates(scope: ObjectRun, pairs: Sequence[PairWork], owner: JournalOwner) -> Journalled:
    """Journal the updates of `pairs` before they are sent, in one store statement; their pending rows."""
    entries = update_entries(scope, pairs)
    ids = await scope.run.stores.journal.open_many([entry for _, entry in entries], owner=owner)
    return {key: row_id for (key, _), row_id in zip(entries, ids, strict=True)}


def status_entry(
    scope: ObjectRun, target: Side, record_id: str, field: str, initial: str, status: str, source: str,
    link_id: int | None,
) -> JournalEntry:
    """The journal row of the action moving a record just created on `target` from its `initial` status to
    `status` (a new invoice marked sent, as the mapping's `mark_sent` says)."""
    return JournalEntry(
        scope.run.system(target), side_object(scope.mapper, target), record_id, {field: initial}, {field: status},
        scope.cause(f"created from {source}, marked {status}"), link_id,
    )  # fmt: skip


@asynccontextmanager
async def journalled(scope: ObjectRun, entry: JournalEntry) -> AsyncIterator[None]:
    """One action on one record (a void, a delete) journalled around it: pending before it is sent, done once
    answered, dropped when the system refused it; any other failure leaves it for a later pass to resolve."""
    journal = scope.run.stores.journal
    async with journal.owning() as owner:
        [row] = await journal.open_many([entry], owner=owner)
        try:
            yield
        except SkippableError:
            await journal.discard([row])
            raise
        if scope.run.hooks.before_commit is not None:
            scope.run.hooks.before_commit(scope.obj)
        await journal.complete([row])


def _mapper_of(run: MappingRun, write: PendingWrite) -> tuple[ObjectMapper, Side] | None:
    """The object mapper and side a pending row was written by (its cause names the object: ObjectRun.cause)."""
    name = write.entry.cause.removeprefix(f"{run.name}:").split(":", 1)[0]
    mapper = run.mapping.objects.get(name)
    if mapper is None:
        return None
    for side in SIDES:
        if run.system(side) == write.entry.system and side_object(mapper, side) == write.entry.object:
            return mapper, side
    return None


def _holds(mapper: ObjectMapper, side: Side, write: PendingWrite, record: Record | None) -> dict[str, bool]:
    """For each base field the write carries, whether the target holds the value written (canonically); for a
    reference's marks, whether it holds the id written (which the other side's mark stands for)."""
    change = write.entry.base_change
    if record is None or record.deleted:
        return dict.fromkeys(change, False)
    now = mapper.to_canonical(side, record)
    marks = reference_marks(mapper, side, record.fields)
    held: dict[str, bool] = {}
    for f, (_, written) in change.items():
        if f.startswith(MARK_PREFIX):
            here = reference_mark(side, f.removeprefix(MARK_PREFIX).partition(":")[2])
            held[f] = here in change and marks.get(here) == decode_value(change[here][1])
        else:
            held[f] = f in now and now[f] == decode_value(written)
    return held


def _held_raw(mapper: ObjectMapper, write: PendingWrite, record: Record | None) -> bool:
    """For a write carrying no base field (a void, a delete, a status action): whether the target holds each
    field as written (a void: the invoice is void, in any of its system's words for it; marked sent: the invoice
    shows that status or one after it), or, for a delete, is gone."""
    words = mapper.invoice
    after = write.entry.fields_after
    if words is not None and after == {words.status_field: words.void_status}:
        # Some systems delete a draft where they would void a sent invoice: gone counts as void too.
        return record is None or record.deleted or lifecycle.is_void(mapper, record)
    if words is not None and len(after) == 1 and isinstance(moved := after.get(words.status_field), str):
        # Marked sent: the invoice may have moved on since (viewed, overdue, paid) but never back to an
        # editable status; a void one cannot tell whether it was sent first, so it confirms nothing.
        if record is None or record.deleted or lifecycle.is_void(mapper, record):
            return False
        status = lifecycle.invoice_status(mapper, record)
        return status == moved.lower() or (status != "" and status not in words.editable)
    if after == DELETED:
        return record is None or record.deleted
    return record is not None and all(
        _same(jsonable(record.fields.get(k)), v) for k, v in write.entry.fields_after.items()
    )


def _same(held: object, written: object) -> bool:
    """Whether a target holds a value as written; status words compare regardless of case (a registration names
    them lower-cased, a system may show them in capitals)."""
    if isinstance(held, str) and isinstance(written, str):
        return held.lower() == written.lower()
    return held == written


async def recover_writes(run: MappingRun) -> None:
    """Resolve the writes `run`'s mapping left pending by writers that are gone (a process died, or a batch
    failed, between sending and committing them): the targets are read in one batch read per object and side;
    nothing is read when nothing is pending. Rows of a writer still running are left to it."""
    pending = await run.stores.journal.orphaned(run.name)
    if not pending:
        return
    groups: dict[tuple[str, Side], list[PendingWrite]] = {}
    unknown: list[PendingWrite] = []
    for write in pending:
        found = _mapper_of(run, write)
        if found is None:
            unknown.append(write)  # its object left the mapping: nothing to move, nobody to read
        else:
            groups.setdefault((found[0].name, found[1]), []).append(write)
    held: dict[int, dict[str, bool]] = {}
    confirmed: dict[int, bool] = {}
    for (name, side), writes in groups.items():
        mapper = run.mapping.objects[name]
        try:
            records = await run.connector(side).get_many(
                side_object(mapper, side), sorted({w.entry.record_id for w in writes})
            )
        except ConnectorError as exc:
            log.warning("pending writes left for the next pass", mapping=run.name, object=name, error=str(exc))
            continue
        for write in writes:
            record = records.get(write.entry.record_id)
            held[write.id] = _holds(mapper, side, write, record)
            fields = held[write.id]
            confirmed[write.id] = any(fields.values()) if fields else _held_raw(mapper, write, record)
    by_link: dict[int | None, list[PendingWrite]] = {}
    for write in pending:
        if write.id in confirmed:
            by_link.setdefault(write.entry.link_id, []).append(write)
    for link_id, writes in by_link.items():
        await _resolve(run, link_id, writes, held, confirmed)
    for write in unknown:
        await run.stores.journal.resolve(write.id, "unconfirmed", UNCONFIRMED)


async def _resolve(
    run: MappingRun,
    link_id: int | None,
    writes: Sequence[PendingWrite],
    held: Mapping[int, Mapping[str, bool]],
    confirmed: Mapping[int, bool],
) -> None:
    """One link's pending rows resolved, and its base moved field by field where every side written holds the
    value, in one transaction; a field the link's base has moved on from since is left as it is. Rows are
    resolved first, each only if still pending, and only those resolved here move the base (a writer that
    committed a row meanwhile moved the base itself)."""
    stores = run.stores
    resolved: list[PendingWrite] = []
    try:
        async with stores.db.transaction() as session:
            for write in writes:
                ok = confirmed[write.id]
                if await stores.journal.resolve(write.id, "recovered" if ok else "unconfirmed",
                                                RECOVERED if ok else UNCONFIRMED, session=session):
                    resolved.append(write)
            link: Link | None = None
            if link_id is not None and resolved:
                links = await stores.links.get_many([link_id], session=session)
                link = links.get(link_id)
            if link is not None and link.state == "linked":
                base = decode_base(link.base)
                moves: dict[str, CanonicalValue] = {}
                blocked: set[str] = set()
                for write in resolved:
                    for f, (was, written) in write.entry.base_change.items():
                        if not held[write.id].get(f) or f in blocked or encode_value(base.get(f)) != was:
                            blocked.add(f)
                            moves.pop(f, None)
                        else:
                            moves[f] = decode_value(written)
                if moves:
                    await stores.links.update_base(
                        link.id, encode_base({**base, **moves}), link.version, session=session
                    )
    except StaleVersionError:
        return  # another writer moved the link meanwhile: rolled back, the rows wait for the next pass
    for write in resolved:
        log.warning("write left pending by a stopped writer", mapping=run.name, record=write.entry.record_id,
                    status="recovered" if confirmed[write.id] else "unconfirmed")
