"""Store fixtures: every store test runs on a real SQLite file and, when configured, on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from syncd.store.database import Database
from syncd.store.schema import upgrade_database

POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"


def _postgres_dsn(url: str) -> str:
    """The libpq form of an SQLAlchemy URL, for setting up and dropping test schemas."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty store: a fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'syncd.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    schema = f"t_{uuid.uuid4().hex}"
    dsn = _postgres_dsn(base)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    # Every pooled connection gets the test schema first on its search path, so tests cannot collide.
    yield make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[Database]:
    """An open store with no schema at all."""
    db = await Database.open(database_url)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def database(empty_database: Database) -> Database:
    """An open store migrated to head, as `syncd db upgrade` leaves it."""
    await upgrade_database(empty_database)
    return empty_database
