"""`syncd keys`: change the key the stored OAuth tokens are encrypted with, or forget tokens whose key is lost."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from syncd.cli import config_option, settings_from
from syncd.settings import Settings
from syncd.store import ConnectionStore, Database, StoreKeyError, TokenVault, check_schema

NEW_KEY_ENV = "SYNCD_NEW_TOKEN_KEY"


def new_key_from(key: str | None, key_file: Path | None, key_env: str) -> bytes:
    """The new key from the option, the file or the environment variable (in that order of precedence)."""
    if key is not None and key_file is not None:
        raise click.UsageError("give the new key with --new-key or --new-key-file, not both")
    if key is not None:
        return key.strip().encode()
    if key_file is not None:
        return key_file.read_bytes().strip()
    value = os.environ.get(key_env, "").strip()
    if not value:
        raise click.UsageError(f"no new key: set {key_env}, or give --new-key-file (or --new-key)")
    return value.encode()


async def rotate_key(settings: Settings, new_key: bytes) -> int:
    """Re-encrypt every stored token from the configured key to `new_key` in one transaction."""
    old_key = settings.security.key_bytes()
    if old_key is None:
        raise StoreKeyError("no current key is configured: set security.token_key (or token_key_file) to the key "
                            "the tokens were saved with")
    if old_key == new_key:
        raise click.UsageError("the new key is the key already configured")
    db = await Database.open(settings.store.url)
    try:
        await check_schema(db)
        return await TokenVault(db, old_key).rotate(new_key)
    finally:
        await db.close()


async def forget_tokens(settings: Settings) -> list[str]:
    """Delete every stored token and mark each connection as needing re-authorisation, in one transaction."""
    db = await Database.open(settings.store.url)
    try:
        await check_schema(db)
        vault = TokenVault(db, settings.security.key_bytes())
        states = ConnectionStore(db)
        systems = {name: conn.system for name, conn in settings.connections.items()}
        async with db.transaction() as session:
            names = await vault.forget_all(session=session)
            for name in names:
                if name in systems:
                    await states.ensure(name, systems[name], session=session)
                if await states.get(name, session=session) is not None:
                    await states.set_status(name, "needs_reauth", f"tokens forgotten (lost key): run `syncd auth "
                                            f"{name}`", session=session)
        return names
    finally:
        await db.close()


@click.group("keys")
def keys_command() -> None:
    """Manage the key that encrypts the stored OAuth tokens."""


@keys_command.command("rotate")
@config_option
@click.option("--new-key-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A file holding the new Fernet key.")
@click.option("--new-key-env", default=NEW_KEY_ENV, show_default=True,
              help="The environment variable holding the new key (used when no file or key is given).")
@click.option("--new-key", help="The new key itself (visible to other local users: prefer the file or env).")
def rotate_command(config_path: Path, new_key_file: Path | None, new_key_env: str, new_key: str | None) -> None:
    """Re-encrypt every stored token with a new key; the configured key must decrypt all of them first."""
    settings = settings_from(config_path)
    key = new_key_from(new_key, new_key_file, new_key_env)
    count = asyncio.run(rotate_key(settings, key))
    click.echo(f"Re-encrypted the tokens of {count} connection{'s' if count != 1 else ''} with the new key. "
               "Set security.token_key (or token_key_file) to the new key before syncd runs again.")


@keys_command.command("forget")
@config_option
@click.option("--yes", is_flag=True, help="Really delete every stored token.")
def forget_command(config_path: Path, yes: bool) -> None:
    """Delete every stored token (when the key they were saved with is lost); each connection then needs
    `syncd auth` again."""
    if not yes:
        raise click.UsageError("this deletes every stored token; add --yes to go ahead")
    names = asyncio.run(forget_tokens(settings_from(config_path)))
    listed = ", ".join(names) or "none"
    click.echo(f"Forgot the stored tokens of: {listed}. Run `syncd auth CONNECTION` for each to authorise again.")
