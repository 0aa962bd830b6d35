"""Owners of pending journal rows and whether they are still alive, by a lock the operating system or the
database drops the moment its holder ends (a SIGKILL included), so that no lease needs waiting out:

- SQLite: a lock file per owner beside the store (`<store>-owners/<token>`) under `flock`. A SQLite store in
  WAL mode is only shared by processes of one host (WAL needs shared memory), so every process that can write
  to the store can test the lock. `flock` locks belong to an open file, not to a process, so a test from the
  owner's own process sees it held too (POSIX `fcntl` locks would not, and closing any descriptor would drop
  them).
- PostgreSQL: a session advisory lock per owner, held on one connection per store and process (the keeper)
  while any of the process's owners is in flight, and tested with `pg_try_advisory_xact_lock` from any session.

An owner is held from its first journalled row until its writes are committed or abandoned; a row whose owner
is not held (or that has none: written before owners existed) was left by a writer that is gone."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import os
import uuid
import weakref
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncd.logs import get_logger
from syncd.store.database import Database

log = get_logger(__name__)


def new_token() -> str:
    """A fresh owner token: unique, and safe in a file name."""
    return uuid.uuid4().hex


class OwnerLocks(Protocol):
    """Holding an owner's lock while it writes, and telling which owners are still held."""

    async def hold(self, token: str) -> bool:
        """Take `token`'s lock; False if someone holds it already (a token clash: pick another)."""
        ...

    async def release(self, token: str) -> None:
        """Drop `token`'s lock (its rows, if any are still pending, become resolvable)."""
        ...

    async def alive(self, tokens: Collection[str]) -> set[str]:
        """Those of `tokens` whose lock is held now, by this process or another."""
        ...


class FileLocks:
    """Owner locks as `flock`ed files in a directory beside a SQLite store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._held: dict[str, int] = {}

    def _path(self, token: str) -> Path:
        return self.directory / token

    async def hold(self, token: str) -> bool:
        """Create and lock `token`'s file (local file operations, microseconds: not worth a thread)."""
        self.directory.mkdir(exist_ok=True)
        fd = os.open(self._path(token), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        self._held[token] = fd
        return True

    async def release(self, token: str) -> None:
        """Remove the file, then drop the lock (a tester that opened it just before sees it free: gone)."""
        fd = self._held.pop(token, None)
        if fd is None:
            return
        try:
            self._path(token).unlink(missing_ok=True)
        finally:
            os.close(fd)

    async def alive(self, tokens: Collection[str]) -> set[str]:
        """Tokens whose file is locked; a file found unlocked is its dead owner's, and is removed."""
        held: set[str] = set()
        for token in tokens:
            if token in self._held:
                held.add(token)
                continue
            try:
                fd = os.open(self._path(token), os.O_RDWR)
            except FileNotFoundError:
                continue  # released, or cleared by an earlier test: gone
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                held.add(token)
            else:
                self._path(token).unlink(missing_ok=True)  # its owner died holding it: tidy up
            finally:
                os.close(fd)
        return held


def advisory_key(token: str) -> int:
    """The PostgreSQL advisory lock key of an owner: 64 bits of a hash of its token, signed as `bigint` is."""
    digest = hashlib.sha256(f"syncd journal owner {token}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLocks:
    """Owner locks as PostgreSQL session advisory locks, held on one keeper connection per process and store
    while any owner is in flight (returned to the pool, every lock dropped, when the last one ends)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._keeper: AsyncConnection | None = None
        self._held: set[int] = set()
        self._lock = asyncio.Lock()  # one statement at a time on the keeper
        self._releasing: set[asyncio.Task[None]] = set()

    async def hold(self, token: str) -> bool:
        """Take the owner's advisory lock on the keeper connection (opened for the first owner in flight)."""
        key = advisory_key(token)
        async with self._lock:
            if self._keeper is None:
                self._keeper = await self._engine.connect()
            try:
                got = bool((await self._keeper.execute(select(func.pg_try_advisory_lock(key)))).scalar_one())
                await self._keeper.commit()  # the lock is the session's: the connection idles, not in a transaction
            except Exception:
                # A broken keeper (the server restarted): its locks are gone already. Dropped, not pooled, so
                # that the next owner opens a sound one; this one's writer fails before journalling anything.
                keeper, self._keeper, self._held = self._keeper, None, set()
                await keeper.invalidate()
                raise
            if got:
                self._held.add(key)
            elif not self._held:
                await self._close()
            return got

    async def release(self, token: str) -> None:
        """Drop the owner's lock, even if the caller is cancelled meanwhile (a lock left held would keep its
        rows pending until the process ends)."""
        task = asyncio.create_task(self._release(advisory_key(token)))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        await asyncio.shield(task)

    async def _release(self, key: int) -> None:
        async with self._lock:
            if key not in self._held or self._keeper is None:
                return
            self._held.discard(key)
            try:
                if self._held:
                    await self._keeper.execute(select(func.pg_advisory_unlock(key)))
                    await self._keeper.commit()
                else:
                    await self._close()
            except Exception as exc:
                # The keeper is broken: its locks went with it. Never pool it; the next owner opens another.
                log.warning("journal owner locks lost with their connection", error=str(exc))
                keeper, self._keeper, self._held = self._keeper, None, set()
                if keeper is not None:
                    await keeper.invalidate()

    async def _close(self) -> None:
        """Return the keeper to the pool with no lock left on it."""
        keeper, self._keeper = self._keeper, None
        if keeper is None:
            return
        try:
            await keeper.execute(select(func.pg_advisory_unlock_all()))
            await keeper.commit()
        except Exception:
            await keeper.invalidate()  # closed, not pooled: its locks go with it
            raise
        finally:
            await keeper.close()

    async def alive(self, tokens: Collection[str]) -> set[str]:
        """Tokens whose lock someone holds: a transaction lock taken on one means nobody does (it goes with
        the transaction at once)."""
        if not tokens:
            return set()
        held: set[str] = set()
        async with self._engine.connect() as conn:
            for token in tokens:
                free = (await conn.execute(select(func.pg_try_advisory_xact_lock(advisory_key(token))))).scalar_one()
                if not free:
                    held.add(token)
            await conn.rollback()
        return held


_LOCKS: weakref.WeakKeyDictionary[Database, OwnerLocks] = weakref.WeakKeyDictionary()


def owner_locks(db: Database) -> OwnerLocks:
    """The owner locks of a store, one set per process and store (shared by every pass's journal)."""
    locks = _LOCKS.get(db)
    if locks is None:
        if db.dialect_name == "postgresql":
            locks = AdvisoryLocks(db.engine)
        else:
            database = db.engine.url.database
            assert database, "a SQLite store is a file (normalise_url refuses any other)"
            locks = FileLocks(Path(f"{database}-owners"))
        _LOCKS[db] = locks
    return locks
