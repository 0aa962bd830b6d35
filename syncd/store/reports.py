"""Reports over the store: JSON shapes of links and conflicts, and the `links` and `conflicts` commands (list,
show, resolve, export)."""

from __future__ import annotations

import csv
import dataclasses
import getpass
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import click
from rich.table import Table

from syncd.cli import config_option
from syncd.settings import Settings
from syncd.store.columns import utcnow
from syncd.store.command_io import (
    console,
    echo_json,
    json_option,
    json_value,
    limit_option,
    run_on_store,
    store_settings,
)
from syncd.store.conflicts import Conflict, ConflictStatus, Resolution
from syncd.store.database import Database
from syncd.store.links import Link, LinkState, LinkStore
from syncd.store.mapping_names import MappingNames
from syncd.store.review import ConflictCase, ConflictQuery, ReviewStore, shown


def link_view(link: Link) -> dict[str, Any]:
    """A link as the API and `syncd links --json` show it."""
    return cast(dict[str, Any], json_value(dataclasses.asdict(link)))


def conflict_view(conflict: Conflict) -> dict[str, Any]:
    """A conflict as the API and `syncd conflicts --json` show it."""
    return cast(dict[str, Any], json_value(dataclasses.asdict(conflict)))


def case_view(case: ConflictCase) -> dict[str, Any]:
    """A conflict with what its link says about the record: mapping, object, the record's name and its ids."""
    link = case.link
    return {
        **conflict_view(case.conflict),
        "mapping": link.mapping,
        "object": link.object,
        "record": case.record,
        "crm_system": link.crm_system,
        "crm_id": link.crm_id,
        "acc_system": link.acc_system,
        "acc_id": link.acc_id,
    }


async def known_objects(db: Database, settings: Settings, mapping: str | None = None) -> list[str]:
    """The mapped objects links may be kept under (of `mapping`, if given), sorted: those the active mapping
    files name, and those the store holds links of (a mapping since renamed or switched off included)."""
    from syncd.mapping.loader import load_mappings  # mapping problems propagate: `syncd` maps them to exit 2

    pairs = {(owner.mapping, owner.object) for owner in await MappingNames(db).link_owners()}
    pairs |= {(m.name, obj) for m in load_mappings(settings.mappings.active) for obj in m.objects}
    return sorted({obj for name, obj in pairs if mapping is None or name == mapping})


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
    settings = store_settings(config_path)

    async def work(db: Database) -> list[Link]:
        if object_name is not None:
            known = await known_objects(db, settings, mapping)
            if object_name not in known:
                where = f" of mapping {mapping}" if mapping else ""
                raise click.BadParameter(
                    f"unknown object {object_name!r}; known objects{where}: "
                    + (", ".join(known) or "none (no active mapping names one, and no link has one)"),
                    param_hint="--object",
                )
        return await LinkStore(db).list(
            mapping=mapping,
            object=object_name,
            state=cast("LinkState | None", state),
            limit=limit,
            offset=offset,
        )

    links = run_on_store(settings, work)
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


#: `--older-than` spellings: a number and a unit.
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_age(text: str | None, param_hint: str) -> timedelta | None:
    """`90m`, `12h`, `7d` as a duration; a usage error (exit 2) naming the option otherwise."""
    if text is None:
        return None
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit() or len(number) > 6:
        raise click.BadParameter(f"expected a number and m, h or d (e.g. 90m, 12h, 7d), not {text!r}",
                                 param_hint=param_hint)
    return int(number) * _UNITS[unit]


def _query_options(function: Any) -> Any:
    """The options that choose conflicts, shared by `list` and `export`."""
    for option in reversed([
        click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True,
                     help="Which conflicts."),
        click.option("--mapping", default=None, help="Only conflicts of this mapping."),
        click.option("--object", "object_name", default=None, help="Only conflicts of this mapped object."),
        click.option("--field", default=None, help="Only conflicts of this field."),
        click.option("--older-than", default=None, help="Only conflicts detected longer ago (90m, 12h, 7d)."),
    ]):
        function = option(function)
    return function


def _conflict_query(status: str, mapping: str | None, object_name: str | None, field: str | None,
                    older_than: str | None) -> ConflictQuery:
    age = parse_age(older_than, "--older-than")
    return ConflictQuery(
        status=None if status == "all" else cast(ConflictStatus, status),
        mapping=mapping,
        object=object_name,
        field=field,
        detected_before=None if age is None else utcnow() - age,
    )


@conflicts_command.command("list")
@_query_options
@limit_option
@json_option
@config_option
def list_conflicts(status: str, mapping: str | None, object_name: str | None, field: str | None,
                   older_than: str | None, limit: int, as_json: bool, config_path: Path) -> None:
    """List conflicts oldest first: the record, the field, and its base → CRM / accounting values."""
    query = _conflict_query(status, mapping, object_name, field, older_than)
    cases = run_on_store(config_path, lambda db: ReviewStore(db).cases(query, limit=limit))
    if as_json:
        echo_json([case_view(case) for case in cases])
        return
    if not cases:
        click.echo(f"no {'' if status == 'all' else status + ' '}conflicts")
        return
    table = Table("id", "mapping", "object", "record", "field", "base → CRM / accounting", "status", "detected")
    for case in cases:
        c = case.conflict
        table.add_row(
            str(c.id),
            case.link.mapping,
            case.link.object,
            case.record,
            c.field,
            f"{shown(c.base_value)} → {shown(c.crm_value)} / {shown(c.acc_value)}",
            c.status if c.resolution is None else f"{c.status} ({c.resolution})",
            c.detected_at.isoformat(timespec="seconds"),
        )
    console().print(table)


#: The columns of `conflicts export --format csv`, in order.
EXPORT_COLUMNS = (
    "id", "status", "mapping", "object", "record", "field", "base_value", "crm_value", "acc_value", "detected_at",
    "resolution", "resolved_value", "resolved_by", "resolved_at", "applied_at", "crm_system", "crm_id",
    "acc_system", "acc_id",
)


def _csv_cell(value: Any) -> str:
    """A value in a CSV cell: text as it is, nothing as an empty cell, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@conflicts_command.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="CSV (one row per conflict) or JSON (a list).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@_query_options
@config_option
def export_conflicts(fmt: str, output: Path | None, status: str, mapping: str | None, object_name: str | None,
                     field: str | None, older_than: str | None, config_path: Path) -> None:
    """Export conflicts (all that match, oldest first) with their records, values and resolutions."""
    query = _conflict_query(status, mapping, object_name, field, older_than)
    cases = run_on_store(config_path, lambda db: ReviewStore(db).cases(query, limit=None))
    views = [case_view(case) for case in cases]
    if fmt == "json":
        text = json.dumps(views, indent=2, sort_keys=True) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows([_csv_cell(view[column]) for column in EXPORT_COLUMNS] for view in views)
        text = buffer.getvalue()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{len(views)} conflict{'s' if len(views) != 1 else ''} written to {output}", err=True)


@conflicts_command.command("show")
@click.argument("conflict_id", type=click.IntRange(min=1))
@json_option
@config_option
def show_conflict(conflict_id: int, as_json: bool, config_path: Path) -> None:
    """Show one conflict: the record, the base value, each side's value, and how it was resolved."""
    case = run_on_store(config_path, lambda db: ReviewStore(db).case(conflict_id))
    conflict, link = case.conflict, case.link
    if as_json:
        echo_json({**case_view(case), "link": link_view(link)})
        return
    lines = [
        f"conflict {conflict.id}: field {conflict.field!r} of {case.record} ({conflict.status})",
        f"  link {link.id}: {link.mapping}/{link.object} {_side(link.crm_system, link.crm_id)} "
        f"<-> {_side(link.acc_system, link.acc_id)}",
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
    else:
        lines.append(f"  resolve with:     syncd conflicts resolve {conflict.id} --use crm|accounting, or --value TEXT")
    click.echo("\n".join(lines))


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "operator"


@conflicts_command.command("resolve")
@click.argument("conflict_id", type=click.IntRange(min=1))
@click.option(
    "--use",
    "use",
    type=click.Choice(["crm", "accounting", "value"]),
    default=None,
    help="Keep the CRM value or the accounting value; `value` (implied by --value/--value-json) writes the value "
    "given.",
)
@click.option("--value", default=None, help="The value to write, as text.")
@click.option("--value-json", default=None, help="The value to write, as JSON (5, null...).")
@click.option("--by", default=None, help="Who decided, kept in the conflict's history (default: your login name).")
@config_option
def resolve_conflict(
    conflict_id: int, use: str | None, value: str | None, value_json: str | None, by: str | None, config_path: Path
) -> None:
    """Resolve an open conflict; the chosen value is written to both sides on the next sync pass."""
    if use is None:
        if value is None and value_json is None:
            raise click.UsageError("choose --use crm, --use accounting, or give --value TEXT / --value-json JSON")
        use = "value"
    chosen = _chosen_value(use, value, value_json)
    who = _current_user() if by is None else by.strip()
    if not who:
        raise click.BadParameter("must name who decided", param_hint="--by")

    async def work(db: Database) -> ConflictCase:
        review = ReviewStore(db)
        await review.conflicts.resolve(conflict_id, cast(Resolution, use), chosen, by=who)
        return await review.case(conflict_id)

    case = run_on_store(config_path, work)
    conflict, link = case.conflict, case.link
    click.echo(
        f"conflict {conflict.id} resolved by {conflict.resolved_by}: on the next sync pass field "
        f"{conflict.field!r} of {case.record} (link {link.id}: {_side(link.crm_system, link.crm_id)} and "
        f"{_side(link.acc_system, link.acc_id)}) will be set to {_short(conflict.resolved_value, 200)} "
        f"(the {_source_name(use)})"
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
