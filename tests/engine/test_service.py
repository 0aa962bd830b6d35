"""`syncd run` as a systemd service: sd_notify READY/WATCHDOG/STOPPING over a real unix datagram socket, and
SIGHUP reloading the mapping files (a bad one refused with its errors, the running mappings kept)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w

from syncd.engine.notify import SystemdNotifier
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.sandbox.runner import Sandbox
from syncd.store.schema import upgrade
from tests.engine.test_daemon import (  # noqa: F401  (fixtures: clean, http, sandbox)
    DEADLINE_S,
    clean,
    config_dict,
    eventually,
    http,
    sandbox,
)

SHIPPED = (SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
# The shipped file up to its payments section: customers and invoices only.
PAYMENTS_SECTION = SHIPPED.index("# Zoho Books customer payments")
WITHOUT_PAYMENTS = SHIPPED[: SHIPPED.rindex("# ----", 0, PAYMENTS_SECTION)]
# The whole file with one typo in the payments section, as a tired operator would save it.
WITH_TYPO = SHIPPED.replace('direction = "accounting_to_crm"\nconflict = "accounting"\ndelete_policy = "ignore"\n'
                            'depends_on = ["invoice"]',
                            'directon = "accounting_to_crm"\nconflict = "accounting"\ndelete_policy = "ignore"\n'
                            'depends_on = ["invoice"]')
PAYMENTS_ROUTE = "/books/v3/customerpayments"


class NotifySocket:
    """The service manager's end: a unix datagram socket bound where `NOTIFY_SOCKET` points."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.received: list[str] = []

    async def next_with(self, state: str) -> str:
        """Wait for the next datagram carrying `state` (e.g. READY=1); the ones before it are kept too."""
        loop = asyncio.get_running_loop()

        async def receive() -> str:
            while True:
                message = (await loop.sock_recv(self.sock, 4096)).decode()
                self.received.append(message)
                if state in message.split("\n"):
                    return message

        return await asyncio.wait_for(receive(), DEADLINE_S)


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    """A bound datagram socket in a short directory (unix socket paths are limited to 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="sd-") as folder:
        listener = NotifySocket(Path(folder) / "notify")
        try:
            yield listener
        finally:
            listener.sock.close()


class Daemon:
    """`syncd run` in a subprocess, its JSON log lines collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.log: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            try:
                self.log.append(json.loads(line))
            except ValueError:
                self.log.append({"event": line.decode(errors="replace")})

    def lines(self, event: str) -> list[dict[str, Any]]:
        """Log entries whose message starts with `event`."""
        return [entry for entry in self.log if str(entry.get("event", "")).startswith(event)]

    async def stop(self) -> int:
        """SIGTERM, then wait for the exit and the last log lines."""
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), DEADLINE_S)
        await self._reader
        return code


@pytest.fixture
async def daemon_with_mapping_file(
    tmp_path: Path, clean: Sandbox, notify_socket: NotifySocket  # noqa: F811
) -> AsyncIterator[tuple[Daemon, Path]]:
    """`syncd run` on the sandbox with a copy of the HubSpot mapping lacking payments, under a watchdog of 0.4 s."""
    mapping = tmp_path / "mappings" / "hubspot-zohobooks.toml"
    mapping.parent.mkdir()
    mapping.write_text(WITHOUT_PAYMENTS)
    config = config_dict(tmp_path, clean, interval_s=3600, webhooks=False)
    config["mappings"] = {"active": [str(mapping)]}
    # Polls that find nothing are logged at debug level only: this test waits for each poll's line.
    config["logging"] = {**config.get("logging", {}), "level": "debug"}
    path = tmp_path / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    await upgrade(config["store"]["url"])
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "run", "--config", str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )
    daemon = Daemon(proc)
    try:
        yield daemon, mapping
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def zoho_requests(http: aiohttp.ClientSession, sandbox: Sandbox, route: str) -> int:  # noqa: F811
    """How many API requests the Zoho Books simulator served on `route`, whatever the method."""
    async with http.get(f"{sandbox.control_url('zohobooks')}/_sandbox/stats") as response:
        requests: dict[str, int] = (await response.json())["requests"]
    return sum(count for key, count in requests.items() if key.split(" ", 1)[-1] == route)


async def test_syncd_run_tells_systemd_it_is_ready_feeds_the_watchdog_and_says_stopping(
    daemon_with_mapping_file: tuple[Daemon, Path], notify_socket: NotifySocket
) -> None:
    daemon, _ = daemon_with_mapping_file
    ready = await notify_socket.next_with("READY=1")
    assert "STATUS=syncing: 4 polling jobs" in ready.split("\n")
    assert daemon.lines("daemon started"), "READY=1 comes once the daemon has started"
    await notify_socket.next_with("WATCHDOG=1")
    assert await daemon.stop() == 0
    await notify_socket.next_with("STOPPING=1")
    assert daemon.lines("daemon stopped")


async def test_sighup_refuses_a_bad_mapping_file_and_takes_a_good_one(
    daemon_with_mapping_file: tuple[Daemon, Path], notify_socket: NotifySocket, clean: Sandbox,  # noqa: F811
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    daemon, mapping = daemon_with_mapping_file
    await notify_socket.next_with("READY=1")
    await eventually(lambda: len(daemon.lines("poll done")) == 4, "the start-up polls")
    assert await zoho_requests(http, clean, PAYMENTS_ROUTE) == 0, "payments are not mapped yet"

    # A file with a typo: refused with its error, the daemon keeps running on what it had.
    assert WITH_TYPO != SHIPPED
    mapping.write_text(WITH_TYPO)
    daemon.proc.send_signal(signal.SIGHUP)
    await notify_socket.next_with("RELOADING=1")
    answered = await notify_socket.next_with("READY=1")
    assert "STATUS=mapping files refused; the running mappings stay" in answered.split("\n")
    [refused] = daemon.lines("mapping files refused")
    assert refused["level"] == "error"
    assert any(str(mapping) in problem and "objects.payment.directon" in problem and "unknown key" in problem
               for problem in refused["problems"]), refused
    assert daemon.proc.returncode is None
    assert not daemon.lines("mappings reloaded")

    # Fixed: taken, and the payments object is polled at once without a restart.
    mapping.write_text(SHIPPED)
    daemon.proc.send_signal(signal.SIGHUP)
    await notify_socket.next_with("RELOADING=1")
    answered = await notify_socket.next_with("READY=1")
    assert "STATUS=mappings reloaded" in answered.split("\n")
    [reloaded] = daemon.lines("mappings reloaded")
    assert reloaded["mappings"] == ["hubspot-zohobooks"] and reloaded["jobs"] == 5
    await eventually(lambda: any(e.get("job") == "poll:hubspot-zohobooks:payment:accounting"
                                 for e in daemon.lines("poll done")), "the payments poll")
    assert await zoho_requests(http, clean, PAYMENTS_ROUTE) > 0
    assert await daemon.stop() == 0
    await notify_socket.next_with("STOPPING=1")


def test_notifications_go_to_an_abstract_socket_and_nowhere_without_one() -> None:
    name = f"syncd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + name)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000"})
        assert notifier.notify("READY=1", "STATUS=up")
        assert manager.recv(4096) == b"READY=1\nSTATUS=up"
        assert notifier.watchdog_interval_s == 15.0
    # Not under systemd, or a watchdog meant for another process: nothing is sent, nothing fails.
    assert not SystemdNotifier({}).notify("READY=1")
    assert SystemdNotifier({}).watchdog_interval_s is None
    assert SystemdNotifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
                           ).watchdog_interval_s is None
