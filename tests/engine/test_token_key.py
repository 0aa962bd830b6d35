"""A token key that cannot read the store is refused before anything is written; `syncd keys rotate` changes the
key in one go; `sync --once` leaves a connection needing re-authorisation alone, as `run` does."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w
from cryptography.fernet import Fernet
from sqlalchemy import text

from syncd.sandbox.runner import Sandbox
from syncd.store import ConnectionStore, Database
from syncd.store.schema import upgrade
from tests.engine.test_command import syncd, write_config


def with_key(config: Path, key: str) -> None:
    """Set the config's token key."""
    data = tomllib.loads(config.read_text())
    data["security"]["token_key"] = key
    config.write_bytes(tomli_w.dumps(data).encode())


async def store_rows(db_path: Path) -> tuple[list[Any], list[Any]]:
    """The stored (sealed) tokens and the connections' states, exactly as they are in the file."""
    db = await Database.open(f"sqlite:///{db_path}")
    try:
        async with db.engine.connect() as conn:
            tokens = list((await conn.execute(text(
                "SELECT connection, access_token_enc, refresh_token_enc, updated_at FROM oauth_token "
                "ORDER BY connection"))).all())
            states = list((await conn.execute(text(
                "SELECT name, status, last_error, updated_at FROM connection ORDER BY name"))).all())
        return tokens, states
    finally:
        await db.close()


async def api_calls(sandbox: Sandbox) -> dict[str, int]:
    """Requests each simulator has served (control-plane requests left out)."""
    counts: dict[str, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), trust_env=False) as http:
        for system in ("hubspot", "zohobooks"):
            async with http.get(f"{sandbox.control_url(system)}/_sandbox/stats") as response:
                requests: dict[str, int] = (await response.json())["requests"]
            counts[system] = sum(n for route, n in requests.items() if "/_sandbox/" not in route)
    return counts


async def test_a_wrong_key_is_refused_unchanged_and_rotate_changes_the_key(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path / "sandbox", systems=("hubspot", "zohobooks")) as sandbox:
        config = write_config(tmp_path, sandbox)
        right = tomllib.loads(config.read_text())["security"]["token_key"]
        db_path = tmp_path / "syncd.db"
        await upgrade(f"sqlite:///{db_path}")
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 0, err + out
        before = await store_rows(db_path)
        assert [row.connection for row in before[0]] == ["books", "hub"]

        # A well-formed key that is not the one the tokens were saved with: every command that opens the vault
        # refuses with exit 2, naming the connections, and neither the tokens nor any status is touched.
        wrong = Fernet.generate_key().decode()
        with_key(config, wrong)
        calls = await api_calls(sandbox)
        for command in (("sync", "--once"), ("run",), ("auth", "hub", "--timeout", "1")):
            code, out, err = await syncd(*command, "--config", str(config))
            assert code == 2, (command, out, err)
            assert "cannot decrypt the stored tokens of 'books', 'hub'" in err, err
            assert "nothing was changed" in err
            assert await store_rows(db_path) == before
        assert await api_calls(sandbox) == calls

        # Rotation refuses when the configured key cannot read the tokens, and changes nothing.
        code, out, err = await syncd("keys", "rotate", "--new-key", Fernet.generate_key().decode(),
                                     "--config", str(config))
        assert code == 2 and "cannot decrypt" in err, out + err
        assert await store_rows(db_path) == before

        # The right key back: the store was kept as it was, so it simply works again.
        with_key(config, right)
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 0, err + out

        # Rotate to a new key (from a file): afterwards only the new key opens the store.
        new = Fernet.generate_key()
        key_file = tmp_path / "new.key"
        key_file.write_bytes(new + b"\n")
        code, out, err = await syncd("keys", "rotate", "--new-key-file", str(key_file), "--config", str(config))
        assert code == 0, out + err
        assert "Re-encrypted the tokens of 2 connections" in out
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 2 and "cannot decrypt" in err, out + err
        with_key(config, new.decode())
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 0, err + out


async def test_sync_once_leaves_a_connection_needing_reauthorisation_alone(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path / "sandbox", systems=("hubspot", "zohobooks")) as sandbox:
        config = write_config(tmp_path, sandbox)
        db_path = tmp_path / "syncd.db"
        await upgrade(f"sqlite:///{db_path}")
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 0, err + out
        # The daemon found the HubSpot grant revoked (as `run` records it) and paused the connection.
        db = await Database.open(f"sqlite:///{db_path}")
        try:
            await ConnectionStore(db).set_status("hub", "needs_reauth", "refresh token revoked: run `syncd auth hub`")
        finally:
            await db.close()
        calls = await api_calls(sandbox)
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 1, err + out
        assert "refresh token revoked: run `syncd auth hub`" in out + err
        after = await api_calls(sandbox)
        assert after["hubspot"] == calls["hubspot"]  # not a single call, not even a token refresh
        _, states = await store_rows(db_path)
        assert {row.name: row.status for row in states} == {"books": "ok", "hub": "needs_reauth"}
