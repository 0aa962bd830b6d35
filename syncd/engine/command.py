"""The `syncd sync` and `syncd run` commands."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
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
from syncd.engine.daemon import Daemon
from syncd.engine.notify import SystemdNotifier
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


async def run_until_signalled(settings: Settings) -> None:
    """Start the daemon and keep it running until SIGTERM or SIGINT, then stop it cleanly. SIGHUP reloads the
    mapping files. Under systemd (`NOTIFY_SOCKET`) it says READY=1 once started, pings the watchdog when one is
    armed (`WATCHDOG_USEC`), and says RELOADING=1/READY=1 around a reload and STOPPING=1 when stopping."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    notifier = SystemdNotifier()
    daemon = Daemon(settings)
    reloads: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        # systemd's reload protocol: RELOADING=1 stamped with the monotonic clock, READY=1 when done.
        notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        taken = await daemon.reload_mappings()
        notifier.notify("READY=1", "STATUS=" + ("mappings reloaded" if taken else
                                                 "mapping files refused; the running mappings stay"))

    def on_hangup() -> None:
        # Kept referenced until done: the loop holds tasks only weakly.
        task = loop.create_task(reload(), name="mapping reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Before start: SIGHUP's default action would end the process.
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    watchdog: asyncio.Task[None] | None = None
    try:
        await daemon.start()
        notifier.notify("READY=1", f"STATUS=syncing: {len(daemon.scheduler.jobs)} polling jobs")
        watchdog = loop.create_task(notifier.keep_watchdog_fed(), name="systemd watchdog")
        await stop.wait()
        log.info("stop requested; finishing the work in progress", grace_s=settings.daemon.stop_grace_s)
    finally:
        notifier.notify("STOPPING=1", "STATUS=stopping: finishing the work in progress")
        for task in (watchdog, *reloads):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (watchdog, *reloads) if t is not None), return_exceptions=True)
        await daemon.stop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    if daemon.abandoned_calls:
        # Worker threads blocked on an unreachable system cannot be cancelled, and the interpreter would wait
        # for them at exit (up to their whole timeout): the work is stopped and committed, so leave now.
        log.warning("exiting with calls to the systems still in flight; they are abandoned")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@click.command("run")
@config_option
def run_command(config_path: Path) -> None:
    """Run the daemon: polling on schedule, webhooks, admin listener; SIGTERM or Ctrl-C stops it cleanly, SIGHUP
    reloads the mapping files (kept as they are if any is invalid). Speaks systemd's sd_notify (Type=notify)."""
    asyncio.run(run_until_signalled(settings_from(config_path)))
