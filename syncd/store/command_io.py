"""How the store's report commands (`links`, `conflicts`, `inbox`) reach the store and print: JSON shapes of
values, one checked store per command, tables that are never cut off a terminal, and their shared options."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from syncd.settings import Settings
from syncd.store.database import Database
from syncd.store.errors import StoreError
from syncd.store.schema import prepare_schema

T = TypeVar("T")


def json_value(value: Any) -> Any:
    """A value as JSON can carry it: timestamps as ISO 8601, money as a decimal string."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def store_settings(config_path: Path) -> Settings:
    """The config as a command on the store alone needs it (connection secrets not demanded), logging set up."""
    from syncd.cli import settings_from  # config errors propagate: `syncd` maps them to exit 2

    return settings_from(config_path, scope="store")


def run_on_store(config: Path | Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the configured store (a fresh SQLite one is created), check its schema, run `work`, close it; store
    problems exit 1. Only the store's part of the config must resolve: connection secrets are not needed."""
    url = (store_settings(config) if isinstance(config, Path) else config).store.url

    async def run() -> T:
        db = await Database.open(url)
        try:
            await prepare_schema(db)
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except StoreError as exc:  # outdated schema, unreachable store, unknown id, already resolved
        raise click.ClickException(str(exc)) from exc


def console() -> Console:
    """A console for tables; off a terminal (a pipe, a file) rows are never wrapped or cut to 80 columns, so an
    id or an e-mail stays whole on its line for grep and scripts."""
    console = Console()
    return console if console.is_terminal else Console(width=100_000, soft_wrap=True, no_color=True)


def echo_json(value: Any) -> None:
    """Print `value` as indented JSON with sorted keys."""
    click.echo(json.dumps(value, indent=2, sort_keys=True))
