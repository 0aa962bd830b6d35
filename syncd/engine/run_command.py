"""The `syncd run` command: the daemon until a signal stops it (apart from `sync`, whose one pass needs none of
the daemon's listeners and scheduler, and starts without loading them)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import click

from syncd.cli import config_option, settings_from
from syncd.engine.daemon import Daemon
from syncd.engine.notify import SystemdNotifier
from syncd.logs import get_logger
from syncd.settings import Settings

log = get_logger(__name__)


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
