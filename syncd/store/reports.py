"""Reports over the store: JSON shapes of links and conflicts, and the `links`/`conflicts` commands."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from syncd.cli import config_option
from syncd.store.conflicts import Conflict, ConflictStatus, ConflictStore, Resolution
from syncd.store.database import Database
from syncd.store.errors import StoreError, StoreNotFoundError
from syncd.store.links import Link, LinkState, LinkStore
from syncd.store.schema import check_schema
from syncd.store.tables import INBOX

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


def link_view(link: Link) -> dict[str, Any]:
    """A link as the API and `syncd links --json` show it."""
    return cast(dict[str, Any], json_value(dataclasses.asdict(link)))


def conflict_view(conflict: Conflict) -> dict[str, Any]:
    """A conflict as the API and `syncd conflicts --json` show it."""
    return cast(dict[str, Any], json_value(dataclasses.asdict(conflict)))


async def pending_inbox_count(db: Database) -> int:
    """How many webhook events wait in the inbox, for the `syncd_inbox_pending` gauge."""
    stmt = select(func.count()).select_from(INBOX).where(INBOX.c.processed_at.is_(None))
    async with db.session() as session:
        count: int = (await session.execute(stmt)).scalar_one()
    return count


# --- commands ---

_limit = click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many."
)
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _run_on_store(config_path: Path, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the configured store, check its schema, run `work`, close it; store problems exit 1."""
    from syncd.settings import load_settings  # config errors propagate: `syncd` maps them to exit 2

    url = load_settings(config_path).store.url

    async def run() -> T:
        db = await Database.open(url)
        try:
            await check_schema(db)
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except StoreError as exc:  # outdated schema, unreachable store, unknown id, already resolved
        raise click.ClickException(str(exc)) from exc


def _console() -> Console:
    """A console for tables; off a terminal (a pipe, a file) rows are never cut to 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=1000)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def _side(system: str, record_id: str | None) -> str:
    return f"{system}:{record_id}" if record_id is not None else f"{system}: (not created yet)"


def _short(value: Any, width: int = 40) -> str:
    """A field value for a table cell: JSON, cut to `width` characters."""
    text = json.dumps(json_value(value), ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("links")
@click.option("--mapping", default=None, help="Only links of this mapping.")
@click.option("--object", "object_name", default=None, help="Only links of this object (e.g. contact).")
@click.option("--state", type=click.Choice(["pending", "linked", "deleted"]), help="Only this state.")
@_limit
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@_json
@config_option
def links_command(
    mapping: str | None,
    object_name: str | None,
    state: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    config_path: Path,
) -> None:
    """List the links between CRM and accounting records, oldest first."""

    async def work(db: Database) -> list[Link]:
        return await LinkStore(db).list(
            mapping=mapping,
            object=object_name,
            state=cast("LinkState | None", state),
            limit=limit,
            offset=offset,
        )

    links = _run_on_store(config_path, work)
    if as_json:
        _echo_json([link_view(link) for link in links])
        return
    if not links:
        click.echo("no links match")
        return
    table = Table("id", "mapping", "object", "crm", "accounting", "state", "last synced")
    for link in links:
        synced = link.last_synced_at.isoformat(timespec="seconds") if link.last_synced_at else "never"
        table.add_row(
            str(link.id),
            link.mapping,
            link.object,
            _side(link.crm_system, link.crm_id),
            _side(link.acc_system, link.acc_id),
            link.state,
            synced,
        )
    _console().print(table)


@click.group("conflicts")
def conflicts_command() -> None:
    """Review and resolve fields both sides changed differently."""


@conflicts_command.command("list")
@click.option(
    "--status",
    type=click.Choice(["open", "resolved", "all"]),
    default="open",
    show_default=True,
    help="Which conflicts to list.",
)
@_limit
@_json
@config_option
def list_conflicts(status: str, limit: int, as_json: bool, config_path: Path) -> None:
    """List conflicts, oldest first."""
    wanted = None if status == "all" else cast(ConflictStatus, status)

    async def work(db: Database) -> list[Conflict]:
        return await ConflictStore(db).list(status=wanted, limit=limit)

    conflicts = _run_on_store(config_path, work)
    if as_json:
        _echo_json([conflict_view(c) for c in conflicts])
        return
    if not conflicts:
        click.echo(f"no {'' if status == 'all' else status + ' '}conflicts")
        return
    table = Table("id", "link", "field", "crm value", "accounting value", "status", "detected")
    for c in conflicts:
        table.add_row(
            str(c.id),
            str(c.link_id),
            c.field,
            _short(c.crm_value),
            _short(c.acc_value),
            c.status if c.resolution is None else f"{c.status} ({c.resolution})",
            c.detected_at.isoformat(timespec="seconds"),
        )
    _console().print(table)


async def _conflict_and_link(db: Database, conflict_id: int) -> tuple[Conflict, Link | None]:
    conflict = await ConflictStore(db).get(conflict_id)
    try:
        link: Link | None = await LinkStore(db).get(conflict.link_id)
    except StoreNotFoundError:
        link = None
    return conflict, link


@conflicts_command.command("show")
@click.argument("conflict_id", type=int)
@_json
@config_option
def show_conflict(conflict_id: int, as_json: bool, config_path: Path) -> None:
    """Show one conflict: the base value, each side's value, and how it was resolved."""
    conflict, link = _run_on_store(config_path, lambda db: _conflict_and_link(db, conflict_id))
    if as_json:
        _echo_json({**conflict_view(conflict), "link": None if link is None else link_view(link)})
        return
    lines = [f"conflict {conflict.id}: field {conflict.field!r} ({conflict.status})"]
    if link is not None:
        lines.append(
            f"  link {link.id}: {link.mapping}/{link.object} {_side(link.crm_system, link.crm_id)} "
            f"<-> {_side(link.acc_system, link.acc_id)}"
        )
    lines += [
        f"  base value:       {_short(conflict.base_value, 200)}",
        f"  crm value:        {_short(conflict.crm_value, 200)}",
        f"  accounting value: {_short(conflict.acc_value, 200)}",
        f"  detected at:      {conflict.detected_at.isoformat(timespec='seconds')}",
    ]
    if conflict.status == "resolved":
        lines.append(
            f"  resolved: {conflict.resolution} = {_short(conflict.resolved_value, 200)}"
            f" by {conflict.resolved_by}"
            f" at {conflict.resolved_at.isoformat(timespec='seconds') if conflict.resolved_at else '?'}"
            f"; {'applied' if conflict.applied_at else 'waiting for the next sync pass'}"
        )
    click.echo("\n".join(lines))


@conflicts_command.command("resolve")
@click.argument("conflict_id", type=int)
@click.option(
    "--use",
    "use",
    type=click.Choice(["crm", "accounting", "value"]),
    required=True,
    help="Keep the CRM value, the accounting value, or the value given with --value/--value-json.",
)
@click.option("--value", default=None, help="With --use value: the value to write, as text.")
@click.option("--value-json", default=None, help="With --use value: the value as JSON (5, null...).")
@click.option("--by", required=True, help="Who decided (kept in the conflict's history).")
@config_option
def resolve_conflict(
    conflict_id: int, use: str, value: str | None, value_json: str | None, by: str, config_path: Path
) -> None:
    """Resolve an open conflict; the chosen value is written to both sides on the next sync pass."""
    chosen = _chosen_value(use, value, value_json)
    if not by.strip():
        raise click.BadParameter("must name who decided", param_hint="--by")

    async def work(db: Database) -> tuple[Conflict, Link | None]:
        await ConflictStore(db).resolve(conflict_id, cast(Resolution, use), chosen, by=by.strip())
        return await _conflict_and_link(db, conflict_id)

    conflict, link = _run_on_store(config_path, work)
    where = (
        ""
        if link is None
        else (f" ({_side(link.crm_system, link.crm_id)} and {_side(link.acc_system, link.acc_id)})")
    )
    click.echo(
        f"conflict {conflict.id} resolved by {conflict.resolved_by}: on the next sync pass field "
        f"{conflict.field!r} of link {conflict.link_id}{where} will be set to "
        f"{_short(conflict.resolved_value, 200)} (the {_source_name(use)})"
    )


def _source_name(use: str) -> str:
    return {"crm": "CRM value", "accounting": "accounting value", "value": "value given"}[use]


def _chosen_value(use: str, value: str | None, value_json: str | None) -> Any:
    """The value a `--use value` resolution writes; usage errors (exit 2) for missing or misplaced values."""
    if value is not None and value_json is not None:
        raise click.UsageError("give --value or --value-json, not both")
    given = value is not None or value_json is not None
    if use != "value":
        if given:
            raise click.UsageError(f"--value/--value-json only go with --use value, not --use {use}")
        return None
    if not given:
        raise click.UsageError("--use value needs --value TEXT or --value-json JSON")
    if value_json is None:
        return value
    try:
        return json.loads(value_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--value-json") from exc
