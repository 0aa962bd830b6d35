"""Reports over the store: JSON shapes of links and conflicts, and the `links`/`conflicts` commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import click
from rich.table import Table

from syncd.cli import config_option
from syncd.store.command_io import console, echo_json, json_option, json_value, limit_option, run_on_store
from syncd.store.conflicts import Conflict, ConflictStatus, ConflictStore, Resolution
from syncd.store.database import Database
from syncd.store.errors import StoreNotFoundError
from syncd.store.links import Link, LinkState, LinkStore


def link_view(link: Link) -> dict[str, Any]:
    """A link as the API and `syncd links --json` show it."""
    return cast(dict[str, Any], json_value(dataclasses.asdict(link)))


def conflict_view(conflict: Conflict) -> dict[str, Any]:
    """A conflict as the API and `syncd conflicts --json` show it."""
    return cast(dict[str, Any], json_value(dataclasses.asdict(conflict)))


# --- commands ---

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
@limit_option
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@json_option
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

    links = run_on_store(config_path, work)
    if as_json:
        echo_json([link_view(link) for link in links])
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
    console().print(table)


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
@limit_option
@json_option
@config_option
def list_conflicts(status: str, limit: int, as_json: bool, config_path: Path) -> None:
    """List conflicts, oldest first."""
    wanted = None if status == "all" else cast(ConflictStatus, status)

    async def work(db: Database) -> list[Conflict]:
        return await ConflictStore(db).list(status=wanted, limit=limit)

    conflicts = run_on_store(config_path, work)
    if as_json:
        echo_json([conflict_view(c) for c in conflicts])
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
    console().print(table)


async def _conflict_and_link(db: Database, conflict_id: int) -> tuple[Conflict, Link | None]:
    conflict = await ConflictStore(db).get(conflict_id)
    try:
        link: Link | None = await LinkStore(db).get(conflict.link_id)
    except StoreNotFoundError:
        link = None
    return conflict, link


@conflicts_command.command("show")
@click.argument("conflict_id", type=int)
@json_option
@config_option
def show_conflict(conflict_id: int, as_json: bool, config_path: Path) -> None:
    """Show one conflict: the base value, each side's value, and how it was resolved."""
    conflict, link = run_on_store(config_path, lambda db: _conflict_and_link(db, conflict_id))
    if as_json:
        echo_json({**conflict_view(conflict), "link": None if link is None else link_view(link)})
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

    conflict, link = run_on_store(config_path, work)
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
