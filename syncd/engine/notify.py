"""systemd's service notification protocol (sd_notify): READY=1, STOPPING=1 and watchdog pings sent as unix
datagrams to the socket named by `NOTIFY_SOCKET`, so a `Type=notify` unit knows when `syncd run` is up.

Implemented here rather than taken from PyPI: the protocol is one datagram per message, and the small pure
Python packages (sdnotify) are unmaintained while the maintained ones (cysystemd) need libsystemd to build."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from syncd.logs import get_logger

log = get_logger(__name__)


class SystemdNotifier:
    """Tells the service manager about `syncd run`; does nothing when not started by one (no `NOTIFY_SOCKET`)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        # A name starting with '@' is in Linux's abstract namespace: the address starts with a NUL byte.
        self._address = "\0" + raw[1:] if raw.startswith("@") else raw
        self._watchdog_s = _watchdog_interval(env)
        self._failed = False

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens (`NOTIFY_SOCKET` is set)."""
        return bool(self._address)

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping the watchdog (half its timeout, as systemd advises); None when none is armed."""
        return self._watchdog_s if self.enabled else None

    def notify(self, *states: str) -> bool:
        """Send `states` (e.g. "READY=1", "STATUS=...") in one datagram; False if it could not be sent. A
        failure is logged once and never raised: the service manager is told nothing more, syncing goes on."""
        if not self.enabled:
            return False
        message = "\n".join(states).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(message)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("cannot notify the service manager", socket=self._address.replace("\0", "@"),
                            error=exc.strerror or str(exc))
            return False
        self._failed = False
        return True

    async def keep_watchdog_fed(self) -> None:
        """Ping the watchdog every `watchdog_interval_s` until cancelled. The pings come from the event loop
        every job, webhook and admin request runs on: when it is stuck, they stop and systemd restarts us."""
        interval = self.watchdog_interval_s
        if interval is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of `WATCHDOG_USEC` in seconds, when the watchdog is meant for this process (`WATCHDOG_PID`)."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None  # inherited from a parent the watchdog watches instead
    return int(usec) / 2 / 1_000_000
