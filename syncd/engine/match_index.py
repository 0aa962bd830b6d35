"""First sync without a lookup per record: every record of a side, read once, indexed by its match key."""

from __future__ import annotations

import pickle
import tempfile
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from syncd.connectors.base import Page, Record
from syncd.engine.held_names import HeldNames
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
    not the records. A lean index built `among` the other side's index keeps only the keys that side holds
    (the only ones it is asked about while that side's read stands): 50,000 new records into an empty system
    hold nothing; asked about any other key, it does not know (`find` answers None)."""

    by_key: dict[MatchKey, Record | str | tuple[Record | str, ...]] = field(default_factory=dict)
    # Records read but not indexed: deleted, merged, without a usable key, or not mappable at all.
    left_out: int = 0
    # Of an index built `among` another: the keys it was asked to know (the other side's), and how many
    # records it read held another key (counted, not kept). None: it knows every key its side held.
    among: frozenset[MatchKey] | None = None
    outside: int = 0
    # Of a lean index: the system and object of its ids, and the fields a record found by id lacks.
    system: str = ""
    object: str = ""
    unread: frozenset[str] = frozenset()
    # The names held on this side where it keeps a name unique (an accounting system's display names), by
    # `text_key`: a create there picks a free one up front (see `taken_names`). None: no name is kept unique.
    held_names: HeldNames | None = None
    # Names a create was given instead of a held one, and the held name each replaced (for a refusal after all).
    passed_over: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, mapper: ObjectMapper, side: Side, records: Iterable[Record], *, lean: bool = False,
           among: MatchIndex | None = None) -> MatchIndex:
        """Index `records` of `side` on the mapper's match keys (records without a usable key are left out).
        A `lean` index keeps of each record only its id: enough for the side's own read (which asks only who
        else holds a key); found from the other side (a record its own side left unlinked), it stands as a
        list row lacking every field the mapping reads, and is read in full before it is paired. Built
        `among` the other side's index, it keeps only the keys that one holds."""
        rule = mapper.create.unique_name(side)
        index = cls(unread=mapper.read_fields(side) if lean else frozenset(),
                    held_names=HeldNames() if rule is not None else None,
                    among=frozenset(among.by_key) if among is not None else None)
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
            if index.among is not None and key not in index.among:
                index.outside += 1
                continue
            kept: Record | str = record.id if lean else record
            held = by_key.get(key)
            by_key[key] = kept if held is None else (*held, kept) if isinstance(held, tuple) else (held, kept)
        return index

    def find(self, key: MatchKey) -> list[Record] | None:
        """The records holding `key`; None if this index does not know (a key outside those it was built
        among: only a lookup tells)."""
        if self.among is not None and key not in self.among:
            return None
        held = self.by_key.get(key)
        if held is None:
            return []
        return [self._record(entry) for entry in (held if isinstance(held, tuple) else (held,))]

    def _record(self, entry: Record | str) -> Record:
        if isinstance(entry, Record):
            return entry
        return Record(self.system, self.object, entry, {}, _UNREAD_STAMP, missing=self.unread)

    def unmatched_in(self, there: MatchIndex) -> int:
        """How many records read here no record of `there` matches (those left out of the index, and those
        counted outside the keys it was built among, included)."""
        return self.left_out + self.outside + sum(len(held) if isinstance(held, tuple) else 1
                                   for key, held in self.by_key.items() if key not in there.by_key)


class FullRead:
    """Every record of one side of one object as one read found them, in its pages with the cursor each may
    commit (so a first sync stopped half-way, by a spent budget say, resumes after the last page done). The
    pages wait packed (pickled and compressed: a tenth of their size as objects) in a temporary file, which
    nothing else can open and which goes when the read is done with, until they are synced: a first sync of
    50,000 records holds one page at a time, not all of them (freed, packed pages kept the process's peak
    growing with the read: the heap they were on is not handed back)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._closer: Callable[[], object] | None = None
        self._end = 0
        # Where each page not yet taken is in the file (offset, length), and its cursor.
        self._pages: deque[tuple[int, int, datetime]] = deque()

    def add(self, page: Page) -> None:
        """Keep one more page, packed."""
        packed = zlib.compress(pickle.dumps(tuple(page.records), pickle.HIGHEST_PROTOCOL), 1)
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 -- kept open until the read is done with (`close`)
            # A read never synced to its end (an object stopped by an error, a side no pass reads) closes it
            # when it goes.
            self._closer = weakref.finalize(self, self._file.close)
        self._file.seek(self._end)
        self._file.write(packed)
        self._pages.append((self._end, len(packed), page.cursor))
        self._end += len(packed)

    def pop(self) -> Page | None:
        """The first page not yet taken, unpacked (None when none is left); this read no longer holds it."""
        if not self._pages:
            self.close()
            return None
        offset, length, cursor = self._pages.popleft()
        return Page(self._unpack(offset, length), cursor)

    @property
    def records(self) -> Iterator[Record]:
        """Every record not yet taken, in page order, unpacked one page at a time."""
        for offset, length, _ in list(self._pages):
            yield from self._unpack(offset, length)

    def close(self) -> None:
        """Let the packed pages go (the temporary file is removed)."""
        if self._closer is not None:
            self._closer()
            self._file = None
        self._pages.clear()

    def _unpack(self, offset: int, length: int) -> tuple[Record, ...]:
        assert self._file is not None
        self._file.seek(offset)
        records: tuple[Record, ...] = pickle.loads(zlib.decompress(self._file.read(length)))  # packed by `add`
        return records
