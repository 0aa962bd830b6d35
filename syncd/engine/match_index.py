"""First sync without a lookup per record: every record of a side, read once, indexed by its match key."""

from __future__ import annotations

import pickle
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from syncd.connectors.base import Page, Record
from syncd.mapping.compiled import FieldConversionError, ObjectMapper
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalScalar
from syncd.textkeys import text_key

MatchKey = tuple[CanonicalScalar, ...]


#: What a lean index stands a record by: no field, stamped before anything (the full read's stamp wins).
_UNREAD_STAMP = datetime.min.replace(tzinfo=UTC)


@dataclass
class MatchIndex:
    """The live records of one side of one object by match key, from one full read of that side. A `lean`
    index keeps only ids (one, or a tuple of several, per key): a first sync of 50,000 records holds the ids,
    not the records."""

    by_key: dict[MatchKey, Record | str | tuple[Record | str, ...]] = field(default_factory=dict)
    # Records read but not indexed: deleted, merged, without a usable key, or not mappable at all.
    left_out: int = 0
    # Of a lean index: the system and object of its ids, and the fields a record found by id lacks.
    system: str = ""
    object: str = ""
    unread: frozenset[str] = frozenset()
    # The names held on this side where it keeps a name unique (an accounting system's display names), by
    # `text_key`: a create there picks a free one up front (see `taken_names`). None: no name is kept unique.
    held_names: set[str] | None = None
    # Names a create was given instead of a held one, and the held name each replaced (for a refusal after all).
    passed_over: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, mapper: ObjectMapper, side: Side, records: Iterable[Record], *, lean: bool = False) -> MatchIndex:
        """Index `records` of `side` on the mapper's match keys (records without a usable key are left out).
        A `lean` index keeps of each record only its id: enough for the side's own read (which asks only who
        else holds a key); found from the other side (a record its own side left unlinked), it stands as a
        list row lacking every field the mapping reads, and is read in full before it is paired."""
        rule = mapper.create.unique_name(side)
        index = cls(unread=mapper.read_fields(side) if lean else frozenset(),
                    held_names=set() if rule is not None else None)
        by_key = index.by_key
        for record in records:
            if record.deleted or record.merged_into is not None:
                index.left_out += 1
                continue
            if rule is not None and index.held_names is not None:
                name = text_key(str(record.fields.get(rule.field) or ""))
                if name:
                    index.held_names.add(name)
            try:
                key = mapper.match_key(side, record)
            except FieldConversionError:
                key = None  # it cannot be mapped at all; read as a change, it is parked with the reason
            if key is None:
                index.left_out += 1
                continue
            index.system, index.object = record.system, record.object
            kept: Record | str = record.id if lean else record
            held = by_key.get(key)
            by_key[key] = kept if held is None else (*held, kept) if isinstance(held, tuple) else (held, kept)
        return index

    def find(self, key: MatchKey) -> list[Record]:
        """The records holding `key`."""
        held = self.by_key.get(key)
        if held is None:
            return []
        return [self._record(entry) for entry in (held if isinstance(held, tuple) else (held,))]

    def _record(self, entry: Record | str) -> Record:
        if isinstance(entry, Record):
            return entry
        return Record(self.system, self.object, entry, {}, _UNREAD_STAMP, missing=self.unread)

    def unmatched_in(self, there: MatchIndex) -> int:
        """How many records read here no record of `there` matches (those left out of the index included)."""
        return self.left_out + sum(len(held) if isinstance(held, tuple) else 1
                                   for key, held in self.by_key.items() if key not in there.by_key)


class FullRead:
    """Every record of one side of one object as one read found them, in its pages with the cursor each may
    commit (so a first sync stopped half-way, by a spent budget say, resumes after the last page done). The
    pages wait packed (pickled and compressed: a tenth of their size as objects) until they are synced, so
    a first sync of 50,000 records does not hold them all at once."""

    def __init__(self) -> None:
        self._packed: deque[tuple[bytes, datetime]] = deque()

    def add(self, page: Page) -> None:
        """Keep one more page, packed."""
        self._packed.append((zlib.compress(pickle.dumps(tuple(page.records), pickle.HIGHEST_PROTOCOL), 1),
                             page.cursor))

    def pop(self) -> Page | None:
        """The first page not yet taken, unpacked (None when none is left); this read no longer holds it."""
        if not self._packed:
            return None
        packed, cursor = self._packed.popleft()
        return Page(_unpack(packed), cursor)

    @property
    def records(self) -> Iterator[Record]:
        """Every record not yet taken, in page order, unpacked one page at a time."""
        for packed, _ in self._packed:
            yield from _unpack(packed)


def _unpack(packed: bytes) -> tuple[Record, ...]:
    records: tuple[Record, ...] = pickle.loads(zlib.decompress(packed))  # packed by this process, above
    return records
