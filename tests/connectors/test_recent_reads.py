"""RecentReads: a record just read stands in for a writer's own read only within its window, and never when a
write of the record overlapped the read."""

from __future__ import annotations

from datetime import timedelta

from syncd.connectors.recent_reads import FRESH_FOR_S, RecentReads
from syncd.engine.context import RECHECK_AFTER


class Clock:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_read_stands_once_and_only_within_its_window() -> None:
    clock = Clock()
    reads = RecentReads(1.0, clock)
    reads.keep("c1", {"v": 1}, reads.now())
    reads.keep("c2", {"v": 2}, reads.now())
    clock.now += 0.5
    assert reads.take("c1") == {"v": 1}
    assert reads.take("c1") is None  # taken: a failed write leaves nothing behind
    clock.now += 0.5
    assert reads.take("c2") is None  # a second old: read again


def test_a_read_overlapping_a_write_is_not_kept() -> None:
    clock = Clock()
    reads = RecentReads(1.0, clock)
    sent = reads.now()  # a read goes out...
    with reads.writing("c1"):  # ...a write of the same record starts
        reads.keep("c1", {"v": "before the write?"}, sent)  # answered while the write is under way
        clock.now += 0.1
    assert reads.take("c1") is None
    reads.keep("c1", {"v": "maybe before"}, sent)  # answered after the write, but sent before it ended
    assert reads.take("c1") is None
    reads.keep("c1", {"v": "after"}, reads.now())  # sent after the write's answer: stands
    assert reads.take("c1") == {"v": "after"}


def test_a_write_drops_what_was_kept_and_old_entries_go() -> None:
    clock = Clock()
    reads = RecentReads(1.0, clock)
    reads.keep("c1", {"v": 1}, reads.now())
    reads.wrote("c1")  # an upsert that found the record
    assert reads.take("c1") is None
    for n in range(100):
        reads.keep(f"r{n}", {}, reads.now())
        clock.now += 0.05
    assert len(reads) <= 21  # only the last second's reads are held


def test_a_read_stands_as_long_as_the_engine_trusts_its_check() -> None:
    # The window is the engine's default bound for its check before writing: the check's read is what a write
    # building a nested entry stands on, so a longer window would use reads the engine itself calls stale.
    assert timedelta(seconds=FRESH_FOR_S) == RECHECK_AFTER
