"""What one pass knows of the records it met, by object and side: read, handled, linked by a plan. One compact
map per object and side (id → flags), not a set or dict per fact: a first sync of 50,000 records keeps 50,000
small entries, the decimal ids among them as ints."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.mapping.spec import Side

#: Read from its side in this pass (a record some linked record refers to changed: see `vanished`).
READ = 1
#: Planned (or left alone) in this pass: read again later in it, it is not planned twice.
HANDLED = 2
#: Given a first link by this pass's plan (a match or a create): no other record may take it.
LINKED = 4

IdKey = int | str

# Ids longer than this stay strings: an int that large would not be smaller.
_LONGEST_INT_ID = 18


def id_key(record_id: str) -> IdKey:
    """A record id as the pass keeps it: a decimal id without a leading zero as an int (half the size of its
    string; no other id turns into the same int), any other id as it is."""
    if (record_id.isascii() and record_id.isdecimal() and len(record_id) <= _LONGEST_INT_ID
            and (record_id[0] != "0" or len(record_id) == 1)):  # fmt: skip
        return int(record_id)
    return record_id


@dataclass(frozen=True)
class MarkedIds:
    """The ids of one object and side marked with a flag, for membership tests."""

    marks: dict[IdKey, int]
    flag: int

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and self.marks.get(id_key(record_id), 0) & self.flag != 0

    def __bool__(self) -> bool:
        return any(flags & self.flag for flags in self.marks.values())


@dataclass
class PassRecords:
    """The records one pass met, by (object, side), each with what the pass did with it (`READ`, `HANDLED`,
    `LINKED` flags)."""

    marks: dict[tuple[str, Side], dict[IdKey, int]] = field(default_factory=dict)

    def mark(self, obj: str, side: Side, record_id: str, flag: int) -> bool:
        """Mark one record with `flag`; whether it was not marked so before."""
        marks = self.marks.setdefault((obj, side), {})
        key = id_key(record_id)
        held = marks.get(key, 0)
        marks[key] = held | flag
        return held & flag == 0

    def has(self, obj: str, side: Side, record_id: str, flag: int) -> bool:
        """Whether one record is marked with `flag`."""
        marks = self.marks.get((obj, side))
        return marks is not None and marks.get(id_key(record_id), 0) & flag != 0

    def ids(self, obj: str, side: Side, flag: int) -> MarkedIds:
        """The ids of `obj` on `side` marked with `flag` (a live view)."""
        return MarkedIds(self.marks.setdefault((obj, side), {}), flag)
