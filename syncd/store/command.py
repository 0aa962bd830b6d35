"""`syncd db`: create or upgrade the store's schema, and show which revision it is at."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from syncd.cli import config_option
from syncd.store.database import Database
from syncd.store.schema import SchemaState, schema_state, upgrade_database


def _store_url(config_path: Path, url: str | None) -> str:
    """The store URL: `--url` if given, else the config file's `store.url`."""
    if url:
        return url
    from syncd.settings import load_settings

    return load_settings(config_path, scope="store").store.url


async def _upgrade(url: str) -> tuple[str, SchemaState, SchemaState]:
    db = await Database.open(url)
    try:
        before = await schema_state(db)
        after = await upgrade_database(db)
        return db.url, before, after
    finally:
        await db.close()


async def _current(url: str) -> tuple[str, SchemaState]:
    db = await Database.open(url)
    try:
        return db.url, await schema_state(db)
    finally:
        await db.close()


_url = click.option("--url", default=None, help="The store URL, instead of reading it from --config.")


@click.group("db")
def db_command() -> None:
    """Manage the store's schema (SQLite file or PostgreSQL)."""


@db_command.command("upgrade")
@config_option
@_url
def upgrade_command(config_path: Path, url: str | None) -> None:
    """Create the schema in an empty store, or bring an existing one up to this syncd's version."""
    shown, before, after = asyncio.run(_upgrade(_store_url(config_path, url)))
    if before.current == after.current:
        click.echo(f"{shown}: already at revision {after.current}")
    else:
        click.echo(f"{shown}: upgraded from {before.current or 'an empty store'} to revision {after.current}")


@db_command.command("current")
@config_option
@_url
def current_command(config_path: Path, url: str | None) -> None:
    """Show the store's schema revision and whether `syncd db upgrade` is needed."""
    shown, state = asyncio.run(_current(_store_url(config_path, url)))
    if state.up_to_date:
        click.echo(f"{shown}: revision {state.current} (up to date)")
    elif state.current is None:
        click.echo(f"{shown}: no schema yet; run `syncd db upgrade` to create revision {state.head}")
    else:
        click.echo(f"{shown}: revision {state.current}, this syncd needs {state.head}; run `syncd db upgrade`")
