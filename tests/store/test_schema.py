"""Migrations build the schema from nothing, match the models, and an outdated store refuses to start."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from syncd.store.database import Database
from syncd.store.errors import SchemaOutdatedError
from syncd.store.schema import (
    HEAD_REVISION,
    check_schema,
    head_revision,
    prepare_schema,
    schema_state,
    upgrade,
    upgrade_database,
)
from syncd.store.tables import SQLModel

EXPECTED_TABLES = {
    "alembic_version",
    "audit",
    "conflict",
    "connection",
    "cursor",
    "dead_letter",
    "inbox",
    "link",
    "mapping_activation",
    "oauth_token",
}


def _diff(connection: Connection) -> list[object]:
    """Alembic's own comparison of the live schema with the SQLModel metadata."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def test_the_head_a_start_checks_against_is_the_newest_migration() -> None:
    # A start compares the store with HEAD_REVISION without loading Alembic: a new migration must name it there.
    assert head_revision() == HEAD_REVISION


async def test_upgrade_from_empty_creates_every_table(empty_database: Database) -> None:
    state = await upgrade_database(empty_database)
    assert state.current == head_revision() and state.up_to_date
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == EXPECTED_TABLES


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_upgrade_twice_is_harmless(database: Database) -> None:
    state = await upgrade_database(database)
    assert state.up_to_date


async def test_upgrade_by_url_then_check_passes(database_url: str) -> None:
    state = await upgrade(database_url)
    assert state.up_to_date
    db = await Database.open(database_url)
    try:
        assert (await check_schema(db)).current == head_revision()
    finally:
        await db.close()


async def test_check_schema_on_empty_store_says_run_upgrade(empty_database: Database) -> None:
    with pytest.raises(SchemaOutdatedError, match="syncd db upgrade"):
        await check_schema(empty_database)


async def test_check_schema_on_store_from_newer_syncd_says_upgrade_syncd(database: Database) -> None:
    # A store migrated by a newer syncd carries a revision this one has never heard of.
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    assert not (await schema_state(database)).up_to_date
    with pytest.raises(SchemaOutdatedError, match="9999, which this syncd does not know"):
        await check_schema(database)


async def test_check_schema_on_downgraded_store_says_run_upgrade(database: Database) -> None:
    # A real downgrade to base leaves an empty store, as an operator restoring a fresh file would see.
    from alembic import command

    from syncd.store.schema import alembic_config

    def down(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with database.engine.begin() as conn:
        await conn.run_sync(down)
    with pytest.raises(SchemaOutdatedError, match="run `syncd db upgrade`"):
        await check_schema(database)
    await upgrade_database(database)
    assert (await check_schema(database)).up_to_date


# --- the embedded default: a fresh SQLite store is created on first use, nothing else is touched ---------------

async def test_a_fresh_sqlite_store_is_created_on_first_use(empty_database: Database) -> None:
    if empty_database.dialect_name != "sqlite":
        pytest.skip("the SQLite default only")
    state = await prepare_schema(empty_database)
    assert state.current == head_revision() and state.up_to_date
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == EXPECTED_TABLES
    assert (await prepare_schema(empty_database)).up_to_date  # and the next use just checks it


async def test_an_empty_postgres_database_is_left_to_syncd_db_upgrade(empty_database: Database) -> None:
    if empty_database.dialect_name != "postgresql":
        pytest.skip("PostgreSQL only")
    with pytest.raises(SchemaOutdatedError, match=r"run `syncd db upgrade` to create it.*PostgreSQL database only"):
        await prepare_schema(empty_database)
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()


async def test_a_sqlite_file_holding_other_tables_is_not_taken_over(empty_database: Database) -> None:
    # Someone else's database, or the config pointing at the wrong file: syncd adds nothing to it.
    async with empty_database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaOutdatedError, match="no syncd schema yet"):
        await prepare_schema(empty_database)
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == {"customers"}


async def test_an_outdated_store_is_not_upgraded_behind_the_operators_back(empty_database: Database) -> None:
    # Migrating data an older syncd left is the operator's call (after a backup): only `syncd db upgrade` does it.
    await upgrade_database(empty_database, "0001")
    with pytest.raises(SchemaOutdatedError, match=r"at revision 0001 but this syncd needs .*run `syncd db upgrade`"):
        await prepare_schema(empty_database)
    assert (await schema_state(empty_database)).current == "0001"
