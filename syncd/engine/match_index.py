"""First sync without a lookup per record: every record of a side, read once, indexed by its match key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from syncd.connectors.base import Page, Record
from syncd.mapping.compiled import FieldConversionError, ObjectMapper
from syncd.mapping.spec import Side
from syncd.mapping.values import CanonicalScalar
from syncd.textkeys import text_key

MatchKey = tuple[CanonicalScalar, ...]


@dataclass
class MatchIndex:
    """The live records of one side of one object by match key, from one full read of that side."""

    by_key: dict[MatchKey, list[Record]] = field(default_factory=dict)
    # The names held on this side where it keeps a name unique (Zoho Books display names), by `text_key`:
    # a create there picks a free one up front (see `taken_names`). None: the side keeps no name unique.
    held_names: set[str] | None = None
    # Names a create was given instead of a held one, and the held name each replaced (for a refusal after all).
    passed_over: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, mapper: ObjectMapper, side: Side, records: Iterable[Record]) -> MatchIndex:
        """Index `records` of `side` on the mapper's match keys (records without a usable key are left out)."""
        rule = mapper.create.unique_name(side)
        index = cls(held_names=set() if rule is not None else None)
        for record in records:
            if record.deleted or record.merged_into is not None:
                continue
            if rule is not None and index.held_names is not None:
                name = text_key(str(record.fields.get(rule.field) or ""))
                if name:
                    index.held_names.add(name)
            try:
                key = mapper.match_key(side, record)
            except FieldConversionError:
                continue  # it cannot be mapped at all; read as a change, it is parked with the reason
            if key is not None:
                index.by_key.setdefault(key, []).append(record)
        return index

    def find(self, key: MatchKey) -> list[Record]:
        """The records holding `key`."""
        return list(self.by_key.get(key, ()))


@dataclass(frozen=True)
class FullRead:
    """Every record of one side of one object as one read found them, in its pages with the cursor each may
    commit (so a first sync stopped half-way, by a spent budget say, resumes after the last page done)."""

    pages: list[Page]

    @property
    def records(self) -> list[Record]:
        """Every record read, in page order."""
        return [r for page in self.pages for r in page.records]
