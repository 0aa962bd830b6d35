"""`syncd inbox`: list the webhook inbox's events and requeue the ones it gave up on, and their JSON shape."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, cast

import click
from rich.table import Table

from syncd.cli import config_option
from syncd.store.command_io import console, echo_json, json_option, json_value, limit_option, run_on_store
from syncd.store.database import Database
from syncd.store.inbox import InboxEvent, InboxStore

InboxListing = Literal["pending", "given_up", "all"]

#: How much of an error a table cell shows; `--json` has it whole.
ERROR_WIDTH = 60


def inbox_status(event: InboxEvent) -> str:
    """Where an event stands: `pending` (due or backing off), `given_up`, or `processed`."""
    if event.gave_up:
        return "given_up"
    return "pending" if event.processed_at is None else "processed"


def inbox_event_view(event: InboxEvent) -> dict[str, Any]:
    """An inbox event as the API and `syncd inbox list --json` show it: every field, and its status."""
    view = cast(dict[str, Any], json_value(dataclasses.asdict(event)))
    view["status"] = inbox_status(event)
    return view


def _change(payload: dict[str, Any]) -> str:
    """What the event says changed, from as much of the payload as is there: `updated contacts 101`."""
    parts = [payload.get(key) for key in ("kind", "object", "record_id")]
    return " ".join(str(part) for part in parts if part not in (None, "")) or "?"


def _when(event: InboxEvent) -> str:
    """When a pending event is due, or when it was given up or processed."""
    if event.processed_at is not None:
        stamp = event.processed_at.isoformat(timespec="seconds")
        return f"given up {stamp}" if event.gave_up else f"processed {stamp}"
    if event.next_attempt_at is None:
        return "due now"
    return f"due {event.next_attempt_at.isoformat(timespec='seconds')}"


def _short_error(error: str | None) -> str:
    """The last error on one line, cut to fit a table cell."""
    if error is None:
        return ""
    text = " ".join(error.split())
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"


@click.group("inbox")
def inbox_command() -> None:
    """See the webhook events waiting in the inbox or given up on, and requeue the given-up ones."""


@inbox_command.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "given-up", "all"]),
    default="pending",
    show_default=True,
    help="Pending events (waiting for their turn or backing off after a failure; oldest first), given-up ones "
    "(latest first), or all events, processed ones too (newest first).",
)
@click.option("--connection", default=None, help="Only events received on this connection.")
@limit_option
@json_option
@config_option
def list_inbox(status: str, connection: str | None, limit: int, as_json: bool, config_path: Path) -> None:
    """List inbox events with their attempts, when they are due or were given up, and their last error."""
    listing = cast(InboxListing, status.replace("-", "_"))

    async def work(db: Database) -> list[InboxEvent]:
        return await InboxStore(db).events(listing, connection=connection, limit=limit)

    events = run_on_store(config_path, work)
    if as_json:
        echo_json([inbox_event_view(e) for e in events])
        return
    if not events:
        what = {"pending": "pending ", "given_up": "given-up ", "all": ""}[listing]
        click.echo(f"no {what}inbox events" + (f" for connection {connection}" if connection else ""))
        return
    table = Table(
        "id", "connection", "event id", "change", "attempts", "received", "next attempt / given up", "last error"
    )
    for e in events:
        table.add_row(
            str(e.id),
            e.connection,
            e.event_id,
            _change(e.payload),
            str(e.attempts),
            e.received_at.isoformat(timespec="seconds"),
            _when(e),
            _short_error(e.last_error),
        )
    console().print(table)


@inbox_command.command("retry")
@click.argument("event_ids", metavar="ID...", nargs=-1, type=click.IntRange(min=1))
@click.option("--all-given-up", is_flag=True, help="Requeue every given-up event instead of the IDs given.")
@click.option("--connection", default=None, help="With --all-given-up: only the events of this connection.")
@config_option
def retry_inbox(event_ids: tuple[int, ...], all_given_up: bool, connection: str | None, config_path: Path) -> None:
    """Put given-up events back in the queue: due at once, attempts counted from zero; `syncd run` tries them
    again on its next inbox round. All IDs or none: an unknown one, or one not given up, changes nothing."""
    if event_ids and all_given_up:
        raise click.UsageError("give event IDs or --all-given-up, not both")
    if not event_ids and not all_given_up:
        raise click.UsageError("name the event IDs to requeue, or give --all-given-up")
    if connection is not None and not all_given_up:
        raise click.UsageError("--connection only goes with --all-given-up")

    if all_given_up:
        count = run_on_store(config_path, lambda db: InboxStore(db).requeue_given_up(connection))
        scope = f" of connection {connection}" if connection else ""
        if count == 0:
            click.echo(f"no given-up events{scope} to requeue")
            return
        click.echo(f"requeued {_events(count)}{scope}; `syncd run` tries them again on its next inbox round")
        return

    requeued = run_on_store(config_path, lambda db: InboxStore(db).requeue(event_ids))
    ids = ", ".join(str(e.id) for e in requeued)
    click.echo(f"requeued {_events(len(requeued))} ({ids}); `syncd run` tries them again on its next inbox round")


def _events(count: int) -> str:
    return f"{count} given-up event{'' if count == 1 else 's'}"
