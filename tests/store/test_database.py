"""Opening the store: user-facing URLs become async ones, SQLite gets WAL and foreign keys, bad URLs are clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from syncd.store.database import SQLITE_BUSY_TIMEOUT_MS, Database, normalise_url
from syncd.store.errors import StoreError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///{tmp}/a.db", "sqlite+aiosqlite:///{tmp}/a.db"),
        ("sqlite+aiosqlite:///{tmp}/a.db", "sqlite+aiosqlite:///{tmp}/a.db"),
        ("postgresql://syncd@db.internal:5433/syncd", "postgresql+psycopg://syncd@db.internal:5433/syncd"),
        ("postgres://syncd@db.internal/syncd", "postgresql+psycopg://syncd@db.internal/syncd"),
        ("postgresql+psycopg2://syncd@db/syncd", "postgresql+psycopg://syncd@db/syncd"),
        ("postgresql+psycopg://syncd@db/syncd", "postgresql+psycopg://syncd@db/syncd"),
    ],
)
def test_user_urls_get_an_async_driver(given: str, expected: str, tmp_path: Path) -> None:
    url = normalise_url(given.format(tmp=tmp_path))
    assert url.render_as_string(hide_password=False) == expected.format(tmp=tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///:memory:", "needs a SQLite file"),
        ("sqlite://", "needs a SQLite file"),
        ("mysql://root@localhost/syncd", "unsupported database 'mysql'"),
        ("not a url", "is not a database URL"),
        ("sqlite:////no/such/directory/syncd.db", "directory '/no/such/directory'"),
    ],
)
def test_unusable_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        normalise_url(url)


def test_password_never_shown_in_errors() -> None:
    with pytest.raises(StoreError) as caught:
        normalise_url("mysql://root:hunter2@localhost/syncd")
    assert "hunter2" not in str(caught.value)


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == SQLITE_BUSY_TIMEOUT_MS
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
        assert (tmp_path / "syncd.db").exists()
    finally:
        await db.close()


async def test_unreachable_postgres_is_a_store_error_without_password() -> None:
    # Port 1 on loopback refuses at once; no network beyond loopback is touched.
    with pytest.raises(StoreError, match="cannot open the store") as caught:
        await Database.open("postgresql://syncd:s3cret@127.0.0.1:1/syncd?connect_timeout=2")
    assert "s3cret" not in str(caught.value)
