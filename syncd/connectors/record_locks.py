"""One lock per record a connector rewrites from a read of it, so two writers in one process never interleave."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable


class RecordLocks:
    """Locks keyed by record, held from the read a write is built from to the write's answer.

    A write that carries a whole nested list (a contact's persons, an address entry) is built from a fresh read of the
    record: a second writer landing between that read and the write would be undone by it, fields it never meant
    to touch included. Two mappings share one connector per connection, so one lock per record here serialises
    them. A lock lives only while someone holds or waits for it.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of the record `key` for the duration of the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def hold_many(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold the locks of every record in `keys`, taken in sorted order so that two holders never deadlock."""
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self.hold(key))
            yield

    def __len__(self) -> int:
        return len(self._locks)
