"""Alembic glue: upgrade a database to this syncd's schema, and refuse to start on an outdated one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from syncd.logs import get_logger
from syncd.store.database import Database
from syncd.store.errors import SchemaOutdatedError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration this syncd ships. Every start checks the store against it; naming it here spares each
# start (and each admin health check) loading Alembic and its scripts, a tenth of a second. A test holds it to
# Alembic's own head (`head_revision`), so a new migration cannot be forgotten here.
HEAD_REVISION = "0007_journal_owner"
# Where Alembic stamps the revision a database is at (its default table, which env.py keeps).
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class SchemaState:
    """Which revision the database is at and which one this syncd expects."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        """True when nothing needs migrating."""
        return self.current == self.head


def alembic_config() -> Config:
    """An Alembic config built in code, so no alembic.ini has to ship or be found at run time."""
    from alembic.config import Config  # only migrating loads Alembic (see HEAD_REVISION)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration this syncd ships, as Alembic's scripts say (what `HEAD_REVISION` must name)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "syncd ships at least one migration"
    return head


def _current(connection: Connection) -> str | None:
    """The revision stamped in the version table, or None on an empty database (syncd's history is linear: one
    row at most)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


async def schema_state(db: Database) -> SchemaState:
    """The database's revision against the shipped head."""
    async with db.engine.connect() as conn:
        current = await conn.run_sync(_current)
    return SchemaState(current=current, head=HEAD_REVISION)


async def check_schema(db: Database) -> SchemaState:
    """Raise `SchemaOutdatedError` unless the database is exactly at the shipped head (called at start)."""
    state = await schema_state(db)
    if state.up_to_date:
        return state
    from alembic.script import ScriptDirectory

    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if state.current is None:
        # Only a fresh SQLite file is created on first use (`prepare_schema`); a shared database is changed only
        # when an operator asks.
        who = " (syncd creates a new SQLite store by itself, a PostgreSQL database only when asked)" \
            if db.dialect_name == "postgresql" else ""
        raise SchemaOutdatedError(
            f"the store at {db.url} has no syncd schema yet: run `syncd db upgrade` to create it{who}"
        )
    if state.current not in known:
        raise SchemaOutdatedError(
            f"the store at {db.url} is at revision {state.current}, which this syncd does not know "
            f"(a newer syncd migrated it); upgrade syncd, or restore a backup"
        )
    raise SchemaOutdatedError(
        f"the store at {db.url} is at revision {state.current} but this syncd needs {state.head}: "
        "run `syncd db upgrade`"
    )


def _has_tables(connection: Connection) -> bool:
    return bool(inspect(connection).get_table_names())


async def prepare_schema(db: Database) -> SchemaState:
    """Check the schema before using the store (as `check_schema`), but first create it in a fresh SQLite store
    (one without any table: the embedded default needs no setup step). PostgreSQL, and any SQLite file that holds
    tables already, is only checked: migrating existing data, or a shared database, is the operator's call
    (`syncd db upgrade`)."""
    state = await schema_state(db)
    if state.current is not None or db.dialect_name != "sqlite":
        return await check_schema(db)
    async with db.engine.connect() as conn:
        if await conn.run_sync(_has_tables):
            return await check_schema(db)
    try:
        state = await upgrade_database(db)
    except DBAPIError as exc:
        # Another syncd process creating the same fresh file at the same moment: fine if it got there.
        if not (await schema_state(db)).up_to_date:
            raise StoreError(f"cannot create the schema of the new store at {db.url}: {exc.orig}") from exc
        return await check_schema(db)
    log.info("store created", store=db.url, revision=state.current)
    return state


async def upgrade_database(db: Database, revision: str = "head") -> SchemaState:
    """Create or upgrade the schema in one transaction (both SQLite and PostgreSQL have transactional DDL)."""

    from alembic import command

    def run(connection: Connection) -> None:
        config = alembic_config()
        # env.py picks this connection up instead of building its own engine.
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
    return await schema_state(db)


async def upgrade(url: str) -> SchemaState:
    """Open the store at `url`, bring its schema to head, and close it."""
    db = await Database.open(url)
    try:
        return await upgrade_database(db)
    finally:
        await db.close()
