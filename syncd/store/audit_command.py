"""`syncd audit`: the writes syncd made, newest first, filtered by record, system, object, mapping and time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click
from rich.table import Table

from syncd.cli import config_option
from syncd.store.audit import AuditEntry, AuditLog
from syncd.store.columns import utcnow
from syncd.store.command_io import console, echo_json, json_option, json_value, limit_option, run_on_store
from syncd.store.reports import parse_age

#: How much of the fields a table cell shows; `--json` has them whole.
FIELDS_WIDTH = 100


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as `syncd audit --json` shows it."""
    return cast(dict[str, Any], json_value(dataclasses.asdict(entry)))


def parse_time(text: str | None, param_hint: str) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone) or an age back from now (`90m`, `12h`, `7d`)."""
    if text is None:
        return None
    if text[-1:] in ("m", "h", "d") and text[:-1].isdigit():
        age = parse_age(text, param_hint)
        assert age is not None
        return utcnow() - age
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO 8601 time (2024-05-01, 2024-05-01T12:00:00+02:00) or an age (90m, 12h, 7d), "
            f"not {text!r}", param_hint=param_hint) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _changes(entry: AuditEntry) -> str:
    """`field: before → after` for each field written, cut to fit a table cell."""
    parts = [
        f"{name}: {entry.fields_before[name]!s} → {value!s}" if name in entry.fields_before else f"{name}: {value!s}"
        for name, value in sorted(entry.fields_after.items())
    ]
    text = "; ".join(parts)
    return text if len(text) <= FIELDS_WIDTH else text[: FIELDS_WIDTH - 1] + "…"


@click.command("audit")
@click.option("--record", "record_id", default=None, help="Only writes to this record id (on any system).")
@click.option("--system", default=None, help="Only writes to this system (as the config's `system` names it).")
@click.option("--object", "object_name", default=None, help="Only writes to this system object (contacts, deals...).")
@click.option("--mapping", default=None, help="Only writes made by this mapping (its `name`).")
@click.option("--since", default=None, help="From this time (ISO 8601) or this long ago (90m, 12h, 7d).")
@click.option("--until", default=None, help="Before this time (ISO 8601) or this long ago.")
@click.option("--status", type=click.Choice(["done", "pending", "recovered", "unconfirmed"]), default=None,
              help="Only writes in this state: pending (sent, not yet committed), recovered or unconfirmed "
                   "(sent by a process that stopped before recording them; the target holds them, or not).")
@limit_option
@json_option
@config_option
def audit_command(record_id: str | None, system: str | None, object_name: str | None, mapping: str | None,
                  since: str | None, until: str | None, status: str | None, limit: int, as_json: bool,
                  config_path: Path) -> None:
    """List the writes syncd made to the systems, newest first: when, which record, its status, the fields
    before and after, and why."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start is not None and end is not None and start >= end:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    entries = run_on_store(config_path, lambda db: AuditLog(db).list(
        system=system, object=object_name, record_id=record_id, limit=limit, mapping=mapping, since=start,
        until=end, status=status))
    if as_json:
        echo_json([audit_view(e) for e in entries])
        return
    if not entries:
        click.echo("no writes match")
        return
    table = Table("at", "system", "object", "record", "status", "fields (before → after)", "cause")
    for e in entries:
        table.add_row(e.at.isoformat(timespec="seconds"), e.system, e.object, e.record_id, e.status, _changes(e),
                      e.cause)
    console().print(table)
