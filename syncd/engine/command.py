"""The `syncd sync` and `syncd run` commands."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import click
from rich.console import Console

from syncd.cli import config_option, settings_from
from syncd.engine.daemon import Daemon
from syncd.engine.plan import SyncReport, render_table, report_json
from syncd.engine.wiring import open_engine
from syncd.logs import get_logger
from syncd.settings import Settings

log = get_logger(__name__)


async def sync_once(settings: Settings, *, dry_run: bool) -> SyncReport:
    """One reconcile pass over every active mapping."""
    async with open_engine(settings) as engine:
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
    report = asyncio.run(sync_once(settings_from(config_path), dry_run=dry_run))
    if as_json:
        click.echo(report_json(report))
    else:
        render_table(report, Console())
    return 1 if report.error_count else 0


async def run_until_signalled(settings: Settings) -> None:
    """Start the daemon and keep it running until SIGTERM or SIGINT, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings)
    try:
        await daemon.start()
        await stop.wait()
        log.info("stop requested; finishing the work in progress", grace_s=settings.daemon.stop_grace_s)
    finally:
        await daemon.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
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
    """Run the daemon: polling on schedule, webhooks, admin listener; SIGTERM or Ctrl-C stops it cleanly."""
    asyncio.run(run_until_signalled(settings_from(config_path)))
