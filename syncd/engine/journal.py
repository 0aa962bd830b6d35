"""The write journal, engine side: each write of a batch is journalled (a pending audit row) before it is sent,
and a pass resolves what a process that died between sending and committing left pending.

A pending row names the link and the base fields its write carries ({field: [base before, value written]}).
On the next pass (or start) the targets concerned are read, one batch read per object and side, and for each
field the target still holds the value written (on every side the batch wrote it to), the link's base moves to
it: a later one-sided edit is then a one-sided edit, not a disagreement for a rule to decide. The row is marked
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
from syncd.errors import ConnectorError, SkippableError
from syncd.logs import get_logger
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalValue
from syncd.store import JournalEntry, Link, PendingWrite, StaleVersionError

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
            carried = {c.field for c in pair.changes.get(side, ()) if c.field in pair.base}
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


async def journal_updates(scope: ObjectRun, pairs: Sequence[PairWork]) -> Journalled:
    """Journal the updates of `pairs` before they are sent, in one store statement; their pending rows."""
    entries = update_entries(scope, pairs)
    ids = await scope.run.stores.journal.open_many([entry for _, entry in entries])
    return {key: row_id for (key, _), row_id in zip(entries, ids, strict=True)}


@asynccontextmanager
async def journalled(scope: ObjectRun, entry: JournalEntry) -> AsyncIterator[None]:
    """One action on one record (a void, a delete) journalled around it: pending before it is sent, done once
    answered, dropped when the system refused it; any other failure leaves it for the next pass to resolve."""
    journal = scope.run.stores.journal
    [row] = await journal.open_many([entry])
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
    """For each base field the write carries, whether the target holds the value written (canonically)."""
    if record is None:
        return dict.fromkeys(write.entry.base_change, False)
    now = mapper.to_canonical(side, record)
    return {
        f: f in now and now[f] == decode_value(written) for f, (_, written) in write.entry.base_change.items()
    }


def _held_raw(mapper: ObjectMapper, write: PendingWrite, record: Record | None) -> bool:
    """For a write carrying no base field (a void, a delete): whether the target holds each field as written
    (a void: the invoice is void, in any of its system's words for it), or, for a delete, is gone."""
    words = mapper.invoice
    if words is not None and write.entry.fields_after == {words.status_field: words.void_status}:
        # Some systems delete a draft where they would void a sent invoice: gone counts as void too.
        return record is None or record.deleted or lifecycle.is_void(mapper, record)
    if write.entry.fields_after == DELETED:
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
    """Resolve the writes `run`'s mapping left pending (a process died between sending and committing them):
    the targets are read in one batch read per object and side; nothing is read when nothing is pending."""
    pending = await run.stores.journal.pending(run.name)
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
    value, in one transaction; a field the link's base has moved on from since is left as it is."""
    stores = run.stores
    async with stores.db.transaction() as session:
        link: Link | None = None
        if link_id is not None:
            links = await stores.links.get_many([link_id], session=session)
            link = links.get(link_id)
        if link is not None and link.state == "linked":
            base = decode_base(link.base)
            moves: dict[str, CanonicalValue] = {}
            blocked: set[str] = set()
            for write in writes:
                for f, (was, written) in write.entry.base_change.items():
                    if not held[write.id].get(f) or f in blocked or encode_value(base.get(f)) != was:
                        blocked.add(f)
                        moves.pop(f, None)
                    else:
                        moves[f] = decode_value(written)
            if moves:
                try:
                    await stores.links.update_base(
                        link.id, encode_base({**base, **moves}), link.version, session=session
                    )
                except StaleVersionError:
                    return  # another writer moved the link meanwhile: the rows wait for the next pass
        for write in writes:
            ok = confirmed[write.id]
            await stores.journal.resolve(write.id, "recovered" if ok else "unconfirmed",
                                         RECOVERED if ok else UNCONFIRMED, session=session)
            log.warning("write left pending by a stopped process", mapping=run.name, record=write.entry.record_id,
                        status="recovered" if ok else "unconfirmed")
