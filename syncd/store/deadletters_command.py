"""`syncd deadletters`: list the records syncd could not sync (with the system's code and message) and requeue
them; and their JSON shape, shared with the admin API."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import click
from rich.table import Table

from syncd.cli import config_option
from syncd.store.columns import utcnow
from syncd.store.command_io import console, echo_json, json_option, json_value, limit_option, run_on_store
from syncd.store.database import Database
from syncd.store.deadletters import DeadLetter, DeadLetterStore

DeadLetterStatus = Literal["parked", "backing_off", "due"]

#: How much of an error a table cell shows; `--json` has it whole.
ERROR_WIDTH = 80


def dead_letter_status(letter: DeadLetter, now: datetime | None = None) -> DeadLetterStatus:
    """Where a dead letter stands: `parked` (waits for the record, its counterpart or the mapping to change,
    or for an operator), `backing_off` (tried again at `next_attempt_at`), or `due` (on the next run)."""
    if letter.next_attempt_at is None:
        return "parked"
    return "backing_off" if letter.next_attempt_at > (now or utcnow()) else "due"


def dead_letter_view(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as the API and `syncd deadletters list --json` show it: every field, and its status."""
    view = cast(dict[str, Any], json_value(dataclasses.asdict(letter)))
    view["status"] = dead_letter_status(letter)
    return view


def _next(letter: DeadLetter) -> str:
    """When the record is tried again, in words."""
    if letter.next_attempt_at is None:
        return "when it changes"
    return letter.next_attempt_at.isoformat(timespec="seconds")


def _short(text: str) -> str:
    """An error on one line, cut to fit a table cell."""
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_WIDTH else flat[: ERROR_WIDTH - 1] + "…"


@click.group("deadletters")
def deadletters_command() -> None:
    """See the records syncd could not sync and why, and requeue them."""


@deadletters_command.command("list")
@click.option("--mapping", default=None, help="Only the records of this mapping.")
@click.option("--object", "object_name", default=None, help="Only the records of this mapped object.")
@limit_option
@json_option
@config_option
def list_dead_letters(
    mapping: str | None, object_name: str | None, limit: int, as_json: bool, config_path: Path
) -> None:
    """List dead letters, oldest first: the record, the kind of failure, the system's code and message, the
    attempts and when the record is tried again."""

    async def work(db: Database) -> list[DeadLetter]:
        return await DeadLetterStore(db).list(mapping=mapping, object=object_name, limit=limit)

    letters = run_on_store(config_path, work)
    if as_json:
        echo_json([dead_letter_view(d) for d in letters])
        return
    if not letters:
        click.echo("no dead letters")
        return
    table = Table("id", "mapping:object", "record", "class", "code", "attempts", "next attempt", "error")
    for d in letters:
        table.add_row(
            str(d.id),
            f"{d.mapping}:{d.object}",
            f"{d.connection} {d.payload.get('object', '')} {d.record_id}".replace("  ", " "),
            d.error_class or "",
            d.error_code or "",
            str(d.attempts),
            _next(d),
            _short(d.error),
        )
    console().print(table)


@deadletters_command.command("retry")
@click.argument("letter_ids", metavar="ID...", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "retry_all", is_flag=True, help="Requeue every dead letter instead of the IDs given.")
@click.option("--mapping", default=None, help="With --all: only the records of this mapping.")
@click.option("--object", "object_name", default=None, help="With --all: only the records of this mapped object.")
@config_option
def retry_dead_letters(
    letter_ids: tuple[int, ...], retry_all: bool, mapping: str | None, object_name: str | None, config_path: Path
) -> None:
    """Make dead letters due now, whatever they waited for: the next run of their object reads the records
    again and syncs them. All IDs or none: an unknown one changes nothing."""
    if letter_ids and retry_all:
        raise click.UsageError("give dead letter IDs or --all, not both")
    if not letter_ids and not retry_all:
        raise click.UsageError("name the dead letter IDs to requeue, or give --all")
    if (mapping is not None or object_name is not None) and not retry_all:
        raise click.UsageError("--mapping and --object only go with --all")
    if retry_all:
        count = run_on_store(config_path, lambda db: DeadLetterStore(db).requeue_all(mapping, object_name))
        click.echo(f"requeued {_letters(count)}; the next run of their objects syncs them again")
        return
    requeued = run_on_store(config_path, lambda db: DeadLetterStore(db).requeue(letter_ids))
    ids = ", ".join(str(d.id) for d in requeued)
    click.echo(f"requeued {_letters(len(requeued))} ({ids}); the next run of their objects syncs them again")


def _letters(count: int) -> str:
    return f"{count} dead letter{'' if count == 1 else 's'}"
