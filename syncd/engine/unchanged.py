"""The pipeline's "up to date?" step: telling, without a call, that a record read again needs nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from syncd.connectors.base import Record
from syncd.engine.snapshot import decode_base
from syncd.engine.vanished import reference_mark, reference_marks
from syncd.mapping.compiled import ObjectMapper
from syncd.mapping.spec import Side
from syncd.store import Link

#: How far a system's clock may run behind ours: a stamp this close to a read is not yet trusted.
CLOCK_MARGIN = timedelta(seconds=2)
#: The stamp precision assumed for a connector that does not say (whole seconds, the coarsest in use).
COARSE = timedelta(seconds=1)


def settled_read(stamp: datetime, resolution: timedelta, read_from: datetime) -> datetime | None:
    """`stamp` as a seen stamp for a record read after `read_from`, or None while another edit could still
    carry the same stamp (one landing in the same second as the read, on a system stamping whole seconds):
    the record is then compared again the next time it is read, never skipped on its stamp."""
    return stamp if stamp + resolution + CLOCK_MARGIN <= read_from else None


def settled_write(stamp: datetime | None, resolution: timedelta) -> datetime | None:
    """A write answer's stamp as a seen stamp: only where stamps are fine enough (milliseconds) that an edit
    after ours cannot share it; a whole-second stamp leaves the echo to be compared once."""
    return stamp if resolution <= timedelta(milliseconds=1) else None


def settled_create(stamp: datetime | None, resolution: timedelta, existed: bool) -> datetime | None:
    """A create answer's stamp as a seen stamp, however coarse: nobody can have edited a record we created in
    the instant before its id was known outside the system; an edit in the same second by one who learnt it
    (a workflow on create, an integration answering the system's webhook) is the residual risk the README
    weighs. A create that found its record already there (an earlier attempt's) is a write like any other."""
    return settled_write(stamp, resolution) if existed else stamp


def seen_unchanged(link: Link, side: Side, record: Record) -> bool:
    """Whether `record` carries the stamp `link` last saw it at, in step with base: it did not change since."""
    seen = link.seen_at(side)
    return seen is not None and record.modified_at <= seen


def in_step(mapper: ObjectMapper, side: Side, record: Record, raw_base: Mapping[str, object]) -> bool:
    """Whether every mapped field and reference of `record` equals base: this side changed nothing, so the
    counterpart need not be read (a change over there is read, and planned, when that side is polled)."""
    base = decode_base(raw_base)
    values = mapper.to_canonical(side, record)
    for name, mapped in mapper.fields.items():
        if mapped.create_only:
            continue
        value = values.get(name)
        if mapped.items is not None and value is None:
            continue  # lines not read are unknown, never "none"
        if base.get(name) != value and (name in base or value is not None):
            return False
    marks = reference_marks(mapper, side, record.fields)
    prefix = reference_mark(side, "")
    held = {k: v for k, v in raw_base.items() if k.startswith(prefix)}
    return marks == held


def needs_detail(read_fields: frozenset[str], record: Record) -> bool:
    """Whether the list answer left out one of `read_fields` (what the mapping reads on the record's side)."""
    return bool(record.missing) and not record.missing.isdisjoint(read_fields)
