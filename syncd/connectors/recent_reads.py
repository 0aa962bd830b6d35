"""Records just read in full, standing in for the read a write that sends a nested entry whole would make first."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: How long a read stands: the engine's default bound for its check before a write (RECHECK_AFTER), which
#: reads its targets at most this long before writing them.
FRESH_FOR_S = 1.0


class RecentReads(Generic[T]):
    """Records by id, each standing for `within_s` seconds from the moment its read was sent, taken once.

    A write that sends a nested entry whole (a contact's persons, an address entry) is built from a read of the
    record. The engine has usually read that record a moment before, checking the target before writing (a check at
    most its recheck bound old, one second by default): reading it again would spend a second call on the same
    content. What is left is the window the engine's check already leaves, the bound plus a round trip.

    A read is kept only if no write of the record overlapped it: one sent before a write's answer arrived may
    hold what the write replaced, and would put it back. A write's own answer is what the system holds after
    it, and is kept in its turn. Taking a record removes it, so a failed write leaves nothing behind.
    """

    def __init__(self, within_s: float = FRESH_FOR_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.within_s = within_s
        self._clock = clock
        self._kept: dict[str, tuple[float, T]] = {}  # by id: (read sent at, raw), roughly oldest first
        self._writing: dict[str, int] = {}  # writes under way, by record
        self._written: dict[str, float] = {}  # when each record's last write was answered, within the window

    def __len__(self) -> int:
        """How many reads are held."""
        return len(self._kept)

    def now(self) -> float:
        """The moment a read is sent, to be handed to `keep` with its answer."""
        return self._clock()

    def keep(self, record_id: str, record: T, sent_at: float) -> None:
        """Note `record`, read by a request sent at `sent_at`, as the record's content; ignored if a write of
        the record was under way or answered since then."""
        now = self._clock()
        self._expire(now)
        if record_id in self._writing or self._written.get(record_id, sent_at) > sent_at:
            return
        if now - sent_at >= self.within_s:
            return
        self._kept.pop(record_id, None)
        self._kept[record_id] = (sent_at, record)

    def take(self, record_id: str) -> T | None:
        """The record as read within the window (removed from here), or None: read it."""
        entry = self._kept.pop(record_id, None)
        if entry is None or self._clock() - entry[0] >= self.within_s:
            return None
        return entry[1]

    @contextlib.contextmanager
    def writing(self, *record_ids: str) -> Iterator[None]:
        """Around a write of the records (one call): what was kept of them goes, and no read overlapping the
        write is kept."""
        for record_id in record_ids:
            self._kept.pop(record_id, None)
            self._writing[record_id] = self._writing.get(record_id, 0) + 1
        try:
            yield
        finally:
            for record_id in record_ids:
                if (left := self._writing.pop(record_id) - 1) > 0:
                    self._writing[record_id] = left
                self.wrote(record_id)

    def wrote(self, record_id: str) -> None:
        """A write of the record was answered just now (one whose id was known only from its answer, a create
        that found the record there): what was kept of it, or is being read, no longer stands."""
        now = self._clock()
        self._expire(now)
        self._kept.pop(record_id, None)
        self._written.pop(record_id, None)
        self._written[record_id] = now

    def _expire(self, now: float) -> None:
        """Drop what can no longer matter: reads and write answers older than the window."""
        while self._kept and now - next(iter(self._kept.values()))[0] >= self.within_s:
            del self._kept[next(iter(self._kept))]
        while self._written and now - next(iter(self._written.values())) >= self.within_s:
            del self._written[next(iter(self._written))]
