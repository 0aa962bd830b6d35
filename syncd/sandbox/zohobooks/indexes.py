"""Lookups Zoho answers without a scan (records by e-mail, name, unique custom value, customer, invoice...).

An index is derived data: it is built from a module's records the first time it is asked, files records added
since then on each lookup (the ledger's dicts only ever grow, in creation order), and is told by `refile` when a
write changed a record's keys. A lookup hands back candidates in creation order; callers still apply their exact
test to each one, so a record filed under a key it no longer holds (deleted, or edited) is never wrongly matched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Generic, Protocol, TypeVar


class Filed(Protocol):
    """What every indexed record has."""

    deleted: bool


class Unique(Filed, Protocol):
    """A record with custom field values, some of them unique."""

    custom: dict[str, str]


R = TypeVar("R", bound=Filed)
KeysOf = Callable[[R], Iterable[str]]


class KeyIndex(Generic[R]):
    """Record IDs by each key `keys` derives from a record, and the keys each record is filed under."""

    def __init__(self, keys: KeysOf[R]) -> None:
        self._keys = keys
        self._ids: dict[str, set[str]] = {}
        self._filed: dict[str, tuple[str, ...]] = {}

    def file(self, record_id: str, record: R) -> None:
        """File (or move) one record under the keys it holds now."""
        new = tuple(dict.fromkeys(self._keys(record)))
        old = self._filed.get(record_id, ())
        if old == new:
            return
        for key in old:
            ids = self._ids[key]
            ids.discard(record_id)
            if not ids:
                del self._ids[key]
        for key in new:
            self._ids.setdefault(key, set()).add(record_id)
        self._filed[record_id] = new

    def ids(self, key: str) -> set[str]:
        """IDs filed under `key` (possibly stale: the caller checks)."""
        return self._ids.get(key, set())


class ModuleIndex(Generic[R]):
    """Every key index of one module's records (`records` is the ledger's dict, read, never written)."""

    def __init__(self, records: dict[str, R], keys: Mapping[str, KeysOf[R]]) -> None:
        self._records = records
        self._by = {name: KeyIndex(derive) for name, derive in keys.items()}
        self._rank: dict[str, int] = {}

    def _catch_up(self) -> None:
        # Records are only ever added, at the end: the unfiled ones are the last few, filed in creation order.
        missing = len(self._records) - len(self._rank)
        if missing > 0:
            tail = list(islice(reversed(self._records.items()), missing))
            for record_id, record in reversed(tail):
                self._rank[record_id] = len(self._rank)
                for index in self._by.values():
                    index.file(record_id, record)

    def refile(self, record_id: str, record: R) -> None:
        """A write may have changed this record's keys (a record not filed yet is filed on the next lookup)."""
        if record_id in self._rank:
            for index in self._by.values():
                index.file(record_id, record)

    def find(self, index: str, key: str) -> list[R]:
        """Live records filed under `key` in the named index, in creation order."""
        self._catch_up()
        ids = sorted(self._by[index].ids(key), key=self._rank.__getitem__)
        return [record for record in (self._records[i] for i in ids) if not record.deleted]
