"""The async engine: URL normalisation, SQLite pragmas, sessions and the unit-of-work scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from syncd.store.errors import StoreConflictError, StoreError

# Long enough to ride out another writer's commit (a WAL checkpoint can take a while on slow disks).
SQLITE_BUSY_TIMEOUT_MS = 10_000

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "psycopg"}


def normalise_url(url: str) -> URL:
    """Turn a user-facing URL (`sqlite:///file.db`, `postgresql://...`) into one for an async driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store url {url!r} is not a database URL ({exc})") from exc
    # Split by hand: SQLAlchemy's own accessors load the dialect, which fails for `postgres://`.
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":  # the scheme Heroku and others hand out
        backend = "postgresql"
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise StoreError(
                f"store url {parsed.render_as_string(hide_password=True)!r}: syncd needs a SQLite file, "
                "e.g. sqlite:///var/lib/syncd/syncd.db"
            )
        parent = Path(database).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreError(f"store url: the directory {str(parent)!r} for the SQLite file does not exist")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        # asyncpg is async already; anything else (psycopg2, bare scheme) becomes psycopg 3 in async mode.
        keep = driver if driver in ("psycopg", "asyncpg") else "psycopg"
        return parsed.set(drivername=f"postgresql+{keep}")
    raise StoreError(
        f"store url {parsed.render_as_string(hide_password=True)!r}: unsupported database "
        f"{backend!r}; use sqlite:///path.db or postgresql://user@host:port/db"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Set WAL, busy timeout and foreign keys on every new SQLite connection (they are per connection)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL is still crash-safe for the database; it only may lose the last commits on
        # power loss, which the replayed overlap window covers.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class Database:
    """An open store: one async engine plus a session factory; open with `await Database.open(url)`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect_name: str = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str, **engine_options: Any) -> Database:
        """Build the engine for `url` (SQLite file or PostgreSQL) and check a connection can be made."""
        async_url = normalise_url(url)
        engine = create_async_engine(async_url, **engine_options)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        db = cls(engine)
        try:
            async with engine.connect():
                pass
        except Exception as exc:
            await engine.dispose()
            shown = async_url.render_as_string(hide_password=True)
            raise StoreError(f"cannot open the store at {shown}: {exc}") from exc
        return db

    @property
    def url(self) -> str:
        """The engine URL with any password hidden, safe to print."""
        return self.engine.url.render_as_string(hide_password=True)

    def session(self) -> AsyncSession:
        """A new session; use as `async with db.session() as s:` and commit yourself."""
        return self._sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on exit and rolls back on error; unique violations are typed."""
        async with self._sessions() as session:
            try:
                yield session
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise StoreConflictError(_integrity_message(exc)) from exc
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def scope(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """Use the caller's session (its transaction, its commit) or a fresh committed transaction.

        After a `StoreConflictError` in a caller's session, that session must be rolled back before reuse.
        """
        if session is None:
            async with self.transaction() as own:
                yield own
            return
        try:
            yield session
        except IntegrityError as exc:
            raise StoreConflictError(_integrity_message(exc)) from exc

    def insert(self, table: Any) -> sqlite.Insert | postgresql.Insert:
        """An INSERT for this dialect, so repositories can add ON CONFLICT clauses."""
        if self.dialect_name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _integrity_message(exc: IntegrityError) -> str:
    """The driver's own words about the broken constraint, without the SQL and parameters."""
    return f"unique or integrity rule broken: {exc.orig}"
