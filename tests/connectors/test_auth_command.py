"""`syncd auth` end to end against the sandbox, an HTTP client playing the browser that follows the 302."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import click
import click.testing
import pytest
from cryptography.fernet import Fernet

from syncd.connectors.auth_command import (
    AuthFailed,
    AuthResult,
    RedirectListener,
    auth_command,
    authorise,
    run_auth,
)
from syncd.connectors.tokens import TokenStorage
from syncd.sandbox.runner import Sandbox
from syncd.settings import Settings, load_settings
from syncd.store import ConnectionStore, Database, TokenVault, upgrade
from tests.connectors.conftest import StoredTokens


def write_config(sandbox: Sandbox, folder: Path) -> Path:
    """A config with one connection per system, pointing at the sandbox."""
    d = sandbox.descriptor
    hs, sf, zb = d["hubspot"], d["salesforce"], d["zohobooks"]
    text = f"""
[security]
token_key = "{Fernet.generate_key().decode()}"

[connections.crm]
system = "hubspot"
client_id = "{hs["client_id"]}"
client_secret = "{hs["client_secret"]}"
base_url = "{hs["base_url"]}"
authorize_url = "{hs["base_url"]}/oauth/authorize"

[connections.sales]
system = "salesforce"
client_id = "{sf["client_id"]}"
client_secret = "{sf["client_secret"]}"
base_url = "{sf["base_url"]}"
ca_cert = "{sf["ca_cert"]}"

[connections.books]
system = "zohobooks"
client_id = "{zb["client_id"]}"
client_secret = "{zb["client_secret"]}"
base_url = "{zb["base_url"]}"
accounts_url = "{zb["accounts_url"]}"
organization_id = "{zb["organization_id"]}"
"""
    path = folder / "syncd.toml"
    path.write_text(text)
    return path


async def browse(url: str) -> int:
    """What a browser does with the consent URL: follow the redirect back to the listener."""
    connector = aiohttp.TCPConnector(ssl=False)
    async with (
        aiohttp.ClientSession(connector=connector, trust_env=False) as session,
        session.get(url, allow_redirects=True) as response,
    ):
        await response.read()
        return response.status


def consent_url(lines: list[str]) -> str:
    """The URL the command printed."""
    return next(
        part.strip() for line in lines for part in line.split("\n") if part.strip().startswith("http")
    )


async def run_flow(name: str, settings: Settings, storage: TokenStorage) -> tuple[AuthResult, list[str], int]:
    """Run `authorise` with the browser step done by `browse`."""
    lines: list[str] = []
    printed = asyncio.Event()

    def show(text: str) -> None:
        lines.append(text)
        printed.set()

    task = asyncio.ensure_future(authorise(name, settings, storage, timeout_s=20, show=show))
    await asyncio.wait_for(printed.wait(), 10)
    status = await browse(consent_url(lines))
    result = await asyncio.wait_for(task, 20)
    return result, lines, status


@pytest.mark.parametrize("name", ["books", "crm", "sales"])
async def test_code_flow_stores_a_grant_and_prints_no_token(
    name: str, reset_sandbox: Sandbox, tmp_path: Path, stored_tokens: StoredTokens
) -> None:
    settings = load_settings(write_config(reset_sandbox, tmp_path))
    result, lines, status = await run_flow(name, settings, stored_tokens.storage)
    assert status == 200
    grant = await stored_tokens.grant(name)
    assert grant.access_token and grant.refresh_token
    assert result.has_refresh_token is True
    printed = "\n".join(lines) + repr(result)
    assert grant.access_token not in printed and grant.refresh_token not in printed


async def test_run_auth_loads_the_config_and_reports_what_was_stored(
    reset_sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(reset_sandbox, tmp_path)
    settings = load_settings(config)
    await upgrade(settings.store.url)
    # The real storage `syncd auth` uses: the config's store, its encrypted vault.
    task = asyncio.ensure_future(run_auth("books", config, timeout_s=20))
    deadline = asyncio.get_running_loop().time() + 10
    url = ""
    while not url and asyncio.get_running_loop().time() < deadline:
        out = capsys.readouterr().out
        url = next((w for w in out.split() if w.startswith("http") and "oauth" in w), "")
        if not url:
            await asyncio.sleep(0.02)  # polling captured output for the printed URL, bounded by the deadline
    assert url, "the consent URL was printed"
    assert await browse(url) == 200
    await asyncio.wait_for(task, 20)
    out = capsys.readouterr().out
    assert "Stored the grant of connection 'books' (zohobooks)" in out and "a refresh token" in out
    db = await Database.open(settings.store.url)
    try:
        stored = await TokenVault(db, settings.security.key_bytes()).load("books")
        state = await ConnectionStore(db).get("books")
    finally:
        await db.close()
    assert stored is not None and stored.refresh_token and stored.refresh_token not in out
    assert state is not None and state.status == "ok"


async def test_a_redirect_with_the_wrong_state_is_refused() -> None:
    listener = RedirectListener("expected-state")
    await listener.start()
    try:
        forged = {"code": "c", "state": "forged"}
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.get(listener.redirect_uri, params=forged) as response,
        ):
            assert response.status == 400
        with pytest.raises(AuthFailed, match="state does not match"):
            await listener.wait(5)
    finally:
        await listener.close()


async def test_no_redirect_times_out_with_advice() -> None:
    listener = RedirectListener("s")
    await listener.start()
    try:
        with pytest.raises(AuthFailed, match="run `syncd auth` again"):
            await listener.wait(0.05)
    finally:
        await listener.close()


def test_unknown_connection_names_the_known_ones(tmp_path: Path, reset_sandbox: Sandbox) -> None:
    config = write_config(reset_sandbox, tmp_path)
    runner_result = click.testing.CliRunner().invoke(auth_command, ["nope", "--config", str(config)])
    assert runner_result.exit_code == 2
    assert "books, crm, sales" in runner_result.output
