"""The `syncd sync` command (one pass, its progress and its report)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from syncd.cli import config_option, settings_from
from syncd.engine.plan import PlannedAction, SyncReport, render_table, report_json
from syncd.engine.progress import PassObserver
from syncd.engine.wiring import open_engine
from syncd.logs import get_logger
from syncd.settings import Settings

log = get_logger(__name__)


@dataclass
class ObjectTally:
    """How far a pass is with one mapped object: records read and synced, actions by kind, when it started."""

    mapping: str
    object: str
    read: int = 0
    synced: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        """`mapping:object`, as the pass's report names it."""
        return f"{self.mapping}:{self.object}"

    @property
    def total(self) -> int:
        """The records to get through, as far as known (records retried or resolved come on top of a read)."""
        return max(self.read, self.synced)

    def counts(self) -> str:
        """The actions so far: `12 create, 3 update`."""
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.actions.items()))

    def line(self) -> str:
        """The object's outcome on one plain line."""
        records = f"{self.synced} record{'s' if self.synced != 1 else ''}"
        return f"{self.label}: {records}, {self.counts() or 'nothing to do'} ({time.monotonic() - self.started:.1f} s)"


class PassTally:
    """A `PassObserver` keeping an `ObjectTally` per object; subclasses show it (`_changed`, `_finished`)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], ObjectTally] = {}

    def _tally(self, mapping: str, object: str) -> ObjectTally:
        key = (mapping, object)
        if key not in self.objects:
            self.objects[key] = ObjectTally(mapping, object)
            self._started(self.objects[key])
        return self.objects[key]

    def object_started(self, mapping: str, object: str) -> None:
        """Start counting `object` afresh (a later pass over it is a new count)."""
        self.objects.pop((mapping, object), None)
        self._tally(mapping, object)

    def records_read(self, mapping: str, object: str, count: int) -> None:
        """More records to get through."""
        tally = self._tally(mapping, object)
        tally.read += count
        self._changed(tally)

    def batch_synced(self, mapping: str, object: str, records: int, actions: Sequence[PlannedAction]) -> None:
        """Records got through, with what was done to them."""
        tally = self._tally(mapping, object)
        tally.synced += records
        tally.actions.update(action.kind for action in actions)
        self._changed(tally)

    def object_finished(self, mapping: str, object: str) -> None:
        """The object is done."""
        self._finished(self._tally(mapping, object))

    def _started(self, tally: ObjectTally) -> None:
        """A new object is counted."""

    def _changed(self, tally: ObjectTally) -> None:
        """An object's counts moved."""

    def _finished(self, tally: ObjectTally) -> None:
        """An object is done."""


class ProgressBars(PassTally):
    """On a terminal: a bar per mapping and object with records done of those read, the actions so far, the
    time taken and an estimate of the time left (for the records read so far; a first sync reads each side whole
    first, so there it covers everything). Log lines meanwhile are printed above the bars."""

    def __init__(self, console: Console, *, transient: bool = False) -> None:
        super().__init__()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            transient=transient,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}

    @contextmanager
    def shown(self) -> Iterator[ProgressBars]:
        """Show the bars while the block runs, with log lines written above them rather than through them."""
        stderr = sys.stderr
        with self._progress:
            # The log handlers hold the real stderr; rich's live display swapped in a stream that prints above it.
            handlers = _handlers_writing_to(stderr)
            for handler in handlers:
                handler.setStream(sys.stderr)
            try:
                yield self
            finally:
                for handler in handlers:
                    handler.setStream(stderr)

    def _started(self, tally: ObjectTally) -> None:
        self._tasks[(tally.mapping, tally.object)] = self._progress.add_task(tally.label, total=None, counts="")

    def _changed(self, tally: ObjectTally) -> None:
        self._progress.update(self._tasks[(tally.mapping, tally.object)], total=tally.total,
                              completed=tally.synced, counts=tally.counts())

    def _finished(self, tally: ObjectTally) -> None:
        self._progress.update(self._tasks[(tally.mapping, tally.object)], total=tally.synced,
                              completed=tally.synced, counts=tally.counts() or "nothing to do")


class ProgressLines(PassTally):
    """Off a terminal: one line per object that had records, when it is done, given to `say`."""

    def __init__(self, say: Callable[[ObjectTally], None]) -> None:
        super().__init__()
        self._say = say

    def _finished(self, tally: ObjectTally) -> None:
        if tally.synced:
            self._say(tally)


def _handlers_writing_to(stream: IO[str]) -> list[logging.StreamHandler[IO[str]]]:
    """The root logger's handlers writing to `stream`."""
    return [handler for handler in logging.getLogger().handlers
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream]


@contextmanager
def pass_progress(console: Console, say: Callable[[ObjectTally], None], *, transient: bool = False
                  ) -> Iterator[PassObserver]:
    """Progress of the passes run in the block: bars on `console` when it is a terminal, else `say` a line per
    object."""
    if not console.is_terminal:
        yield ProgressLines(say)
        return
    with ProgressBars(console, transient=transient).shown() as bars:
        yield bars


def _log_object(tally: ObjectTally) -> None:
    """Off a terminal, `sync --once` says what it did per object as a log line (JSON beside the other logs)."""
    log.info("object synced", mapping=tally.mapping, object=tally.object, records=tally.synced,
             counts=dict(tally.actions), seconds=round(time.monotonic() - tally.started, 1))


async def sync_once(settings: Settings, *, dry_run: bool, observer: PassObserver | None = None) -> SyncReport:
    """One reconcile pass over every active mapping, told to `observer` as it goes."""
    async with open_engine(settings) as engine:
        if observer is not None:
            engine.reconciler.observer = observer
        return await engine.reconciler.run_pass(dry_run=dry_run)


@click.command("sync")
@click.option(
    "--once", is_flag=True, help="Run one pass and exit (required for now; `syncd run` is the daemon)."
)
@click.option(
    "--dry-run", is_flag=True, help="Print the plan and write nothing anywhere, not even the store."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan or summary as JSON instead of a table.")
@config_option
def sync_command(once: bool, dry_run: bool, as_json: bool, config_path: Path) -> int:
    """Reconcile every active mapping once and print what was (or, with --dry-run, would be) done."""
    if not once:
        raise click.UsageError("only `syncd sync --once` is supported; use `syncd run` to keep syncing")
    settings = settings_from(config_path)
    # On stderr: stdout carries the report (a table, or JSON for scripts).
    with pass_progress(Console(stderr=True), _log_object) as observer:
        report = asyncio.run(sync_once(settings, dry_run=dry_run, observer=observer))
    if as_json:
        click.echo(report_json(report))
    else:
        render_table(report, Console())
    return 1 if report.error_count else 0
