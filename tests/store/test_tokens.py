"""Tokens are encrypted at rest, never shown in a repr, and a missing or wrong key is a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from syncd.store import Database, StoredToken, StoreKeyError, TokenVault

ACCESS = "pat-na1-ACCESS-5f0e2d7c-1111-4e2a-9c77-a1b2c3d4e5f6"
REFRESH = "na1-REFRESH-0b8c6a52-2222-4f1d-8e33-f6e5d4c3b2a1"
EXPIRES = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


async def test_saved_tokens_load_back_decrypted(database: Database) -> None:
    vault = TokenVault(database, TokenVault.generate_key())
    token = StoredToken(ACCESS, EXPIRES, REFRESH, {"api_domain": "https://www.zohoapis.eu"})
    await vault.save("zoho", token)
    assert await vault.load("zoho") == token
    assert await vault.load("hubspot") is None


async def test_refresh_without_new_refresh_token_keeps_the_old_one(database: Database) -> None:
    vault = TokenVault(database, TokenVault.generate_key())
    await vault.save("zoho", StoredToken(ACCESS, EXPIRES, REFRESH))
    await vault.save("zoho", StoredToken("second-access", None, None))
    loaded = await vault.load("zoho")
    assert loaded == StoredToken("second-access", None, REFRESH)


async def test_clear_forgets_the_tokens(database: Database) -> None:
    vault = TokenVault(database, TokenVault.generate_key())
    await vault.save("hubspot", StoredToken(ACCESS, EXPIRES, REFRESH))
    assert await vault.clear("hubspot") is True
    assert await vault.load("hubspot") is None
    assert await vault.clear("hubspot") is False


async def test_columns_hold_only_ciphertext(database: Database) -> None:
    await TokenVault(database, TokenVault.generate_key()).save("hubspot", StoredToken(ACCESS, EXPIRES, REFRESH))
    async with database.engine.connect() as conn:
        row = (await conn.execute(text("SELECT access_token_enc, refresh_token_enc FROM oauth_token"))).one()
    stored = " ".join(row)
    assert ACCESS not in stored and REFRESH not in stored


async def test_sqlite_file_and_wal_contain_no_token_bytes(tmp_path: Path) -> None:
    from syncd.store import upgrade_database

    path = tmp_path / "syncd.db"
    db = await Database.open(f"sqlite:///{path}")
    try:
        await upgrade_database(db)
        await TokenVault(db, TokenVault.generate_key()).save("hubspot", StoredToken(ACCESS, EXPIRES, REFRESH))
        # Read while the engine is still open, so recent pages are still in the -wal file too.
        files = [p for p in (path, tmp_path / "syncd.db-wal") if p.exists()]
        raw = b"".join(p.read_bytes() for p in files)
    finally:
        await db.close()
    raw += path.read_bytes()  # after close the WAL is checkpointed into the main file
    assert len(raw) > 0
    for secret in (ACCESS, REFRESH, "ACCESS-5f0e2d7c", "REFRESH-0b8c6a52"):
        assert secret.encode() not in raw


def test_repr_and_str_hide_the_tokens() -> None:
    token = StoredToken(ACCESS, EXPIRES, REFRESH, {"instance_url": "https://acme.my.salesforce.com"})
    for shown in (repr(token), str(token), f"{token}"):
        assert ACCESS not in shown and REFRESH not in shown
        assert "acme.my.salesforce.com" in shown


@pytest.mark.parametrize("key", [None, b"", ""])
async def test_missing_key_says_what_to_set(database: Database, key: bytes | str | None) -> None:
    with pytest.raises(StoreKeyError, match=r"no token encryption key is configured: set security\.token_key"):
        TokenVault(database, key)


async def test_malformed_key_is_refused_without_echoing_it(database: Database) -> None:
    with pytest.raises(StoreKeyError, match="not a valid Fernet key") as caught:
        TokenVault(database, "my-secret-password")
    assert "my-secret-password" not in str(caught.value)


async def test_wrong_key_cannot_read_tokens_and_says_so(database: Database) -> None:
    await TokenVault(database, Fernet.generate_key()).save("zoho", StoredToken(ACCESS, EXPIRES, REFRESH))
    other = TokenVault(database, Fernet.generate_key())
    with pytest.raises(StoreKeyError, match="'zoho' cannot be decrypted with the configured key") as caught:
        await other.load("zoho")
    assert ACCESS not in str(caught.value)
