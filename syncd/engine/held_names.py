"""The names a side keeps unique (an accounting system's display names) as one first sync knows them: those its
whole read found and those the pass's creates were given. They wait in a private temporary SQLite database,
not in a set: a first sync of 50,000 new customers would otherwise hold 50,000 names until it ends."""

from __future__ import annotations

import sqlite3
import weakref

# The database's page cache, in KiB: what it holds in memory however many names it keeps.
_CACHE_KIB = 256


class HeldNames:
    """A set of names (by `text_key`, compared exactly) kept on disk: `add` and `in`, nothing else."""

    def __init__(self) -> None:
        # "": a temporary database of this connection's own, removed when it is closed. Nothing of it has to
        # survive a crash, so it keeps no journal and never waits for the disk.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._closer = weakref.finalize(self, self._db.close)
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE held (name TEXT PRIMARY KEY) WITHOUT ROWID")
        self._count = 0

    def add(self, name: str) -> None:
        """Hold `name` (again: nothing changes)."""
        self._count += self._db.execute("INSERT OR IGNORE INTO held (name) VALUES (?)", (name,)).rowcount

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self._db.execute("SELECT 1 FROM held WHERE name = ?", (name,)).fetchone() is not None

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Let the names go (the database is removed)."""
        self._closer()
