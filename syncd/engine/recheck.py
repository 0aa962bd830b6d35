"""The compare step before a write: which planned targets must be read again, and whether one moved since the
read its write was planned from (then the pair is planned again, three-way, from what the target holds now).

No system the engine writes to offers a conditional batch update, so the check is a read: one batch read per
side, only of targets read longer ago than the run's bound (`MappingRun.recheck_after`). What is left is the
bound plus one round trip, the time in which an edit landing after the check can still be overwritten."""

from __future__ import annotations

from datetime import timedelta

from syncd.connectors.base import Record
from syncd.engine.pairs import Batch, PairWork
from syncd.engine.vanished import reference_marks
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.spec import Side


def stale_targets(batch: Batch, side: Side, bound: timedelta, now: float) -> list[PairWork]:
    """The pairs of `batch` writing to `side` whose target was read longer ago than `bound` (event-loop clock
    `now`), or at a time the batch does not know (a poll's page, a match index): those are read again."""
    stale = []
    for work in batch.pairs:
        if side not in work.writes:
            continue
        read_at = batch.read_at.get((side, work.record(side).id))
        if read_at is None or now - read_at >= bound.total_seconds():
            stale.append(work)
    return stale


def moved(mapper: ObjectMapper, side: Side, planned: Record, fresh: Record) -> bool:
    """Whether `fresh` differs from the record a write was planned from: a later stamp, or (stamps being whole
    seconds on some systems, so an edit in the same second keeps the stamp) a mapped value or reference."""
    if fresh.modified_at > planned.modified_at:
        return True
    if mapper.to_canonical(side, fresh) != mapper.to_canonical(side, planned):
        return True
    return reference_marks(mapper, side, fresh.fields) != reference_marks(mapper, side, planned.fields)
