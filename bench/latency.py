"""Webhook-to-write latency: `syncd run` in its own process taking HubSpot's webhooks from the sandbox (in
another); contacts edited in HubSpot at a steady rate, each edit timed from just before it is sent to the
audit row of the Zoho Books write it caused (committed once Zoho Books answered the write).

`python -m bench latency [--rates 20,200] [--seconds 10] [--contacts 2000]` prints p50/p95/p99 per rate."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import firstsync
from bench.ratelimit import _hubspot
from syncd.connectors.base import Update
from syncd.settings import RateLimitSettings
from syncd.store import Database
from syncd.store.audit import AuditLog

#: How long all of one rate's edits may take to land before the missing ones are counted as lost.
SETTLE_S = 120.0
#: Quiet this long (no Zoho Books request) and the daemon's start-up polls are taken as done.
QUIET_S = 3.0
EDIT = re.compile(r"Latency (\d+)-(\d+)")


@dataclass(frozen=True)
class LatencyRun:
    """The edits made at one rate and how long each took to land on Zoho Books."""

    rate: float
    sent: int
    latencies_ms: list[float]

    @property
    def landed(self) -> int:
        """Edits whose write landed within the settle time."""
        return len(self.latencies_ms)

    def percentile(self, p: int) -> float:
        """The `p`th percentile of the latencies, in ms."""
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def daemon_config(sandbox: firstsync.SandboxProcess, directory: Path) -> Path:
    """The benchmark's config with the webhook receiver on a free port, no admin listener, and polling left
    to once an hour: what lands in the measured window came by webhook."""
    port = _free_port()
    return firstsync.write_config(sandbox, directory, overrides={
        "webhooks": {"enabled": True, "host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
        "admin": {"enabled": False},
        "polling": {"interval_s": 3600, "overlap_s": firstsync.OVERLAP_S},
        "logging": {"format": "json", "level": "info"},
    })  # fmt: skip


def _zoho_requests(sandbox: firstsync.SandboxProcess) -> int:
    return sum(sandbox.stats()["zohobooks"].values())


def _wait_quiet(sandbox: firstsync.SandboxProcess, log: Path, deadline_s: float = 300.0) -> None:
    """Until the daemon registered its webhooks and Zoho Books has served nothing for `QUIET_S`."""
    started = time.monotonic()
    while "webhooks registered" not in log.read_text(errors="replace"):
        if time.monotonic() - started > deadline_s:
            raise RuntimeError(f"syncd run did not register its webhooks: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    seen, quiet_since = _zoho_requests(sandbox), time.monotonic()
    while time.monotonic() - quiet_since < QUIET_S and time.monotonic() - started < deadline_s:
        time.sleep(0.5)
        now = _zoho_requests(sandbox)
        if now != seen:
            seen, quiet_since = now, time.monotonic()


async def _edit(sandbox: firstsync.SandboxProcess, ids: list[str], rate: float, seconds: float, tag: int
                ) -> dict[int, float]:
    """Edit one contact after another (a new city each) at `rate` a second for `seconds`; when each was sent."""
    lifted = RateLimitSettings(window_s=1.0, window_max=firstsync.LIFTED)
    connector = _hubspot(sandbox.descriptor["hubspot"], lifted)
    await connector.start()
    sent: dict[int, float] = {}

    async def one(n: int) -> None:
        sent[n] = time.time()
        [done] = await connector.update_many("contacts", [Update(ids[n], {"city": f"Latency {tag}-{n}"})])
        if not done.ok:
            sent.pop(n)
            print(f"edit {n} refused: {done.error}", file=sys.stderr)

    try:
        start, tasks = time.monotonic(), []
        for n in range(min(int(rate * seconds), len(ids))):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    finally:
        await connector.close()
    return sent


async def _landed(store_url: str, tag: int, since: datetime, wanted: int) -> dict[int, float]:
    """When each edit's Zoho Books write was recorded, by edit number, waiting up to `SETTLE_S` for all."""
    db = await Database.open(store_url)
    landed: dict[int, float] = {}
    try:
        deadline = time.monotonic() + SETTLE_S
        while len(landed) < wanted and time.monotonic() < deadline:
            for entry in await AuditLog(db).list(system="zohobooks", object="contacts", since=since, limit=100_000):
                match = EDIT.search(str(entry.fields_after))
                if match and int(match.group(1)) == tag:
                    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
                    landed[int(match.group(2))] = at.timestamp()
            await asyncio.sleep(1.0)
    finally:
        await db.close()
    return landed


def _store_url(config: Path) -> str:
    url: str = tomllib.loads(config.read_text())["store"]["url"]
    return url


def run(rates: list[float], seconds: float, contacts: int, log: Any = print) -> list[LatencyRun]:
    """A first sync of `contacts`, then `syncd run` taking webhooks while contacts are edited at each rate."""
    results: list[LatencyRun] = []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-latency-") as tmp:
        sandbox = firstsync.SandboxProcess(Path(tmp))
        daemon: subprocess.Popen[bytes] | None = None
        try:
            sandbox.prepare(contacts)
            config = daemon_config(sandbox, Path(tmp))
            first = firstsync.run_pass(sandbox, config)
            if first.exit_code != 0:
                raise RuntimeError("the first sync failed")
            ids = sorted(str(r["id"]) for r in firstsync._request(
                f"{sandbox.roots['hubspot']}/_sandbox/records/contacts")["records"])  # fmt: skip
            errors = Path(tmp) / "syncd-run.log"
            with errors.open("wb") as sink:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "syncd", "run", "--config", str(config)], stdout=subprocess.DEVNULL,
                    stderr=sink, cwd=firstsync.REPO, env={**os.environ, "PYTHONPATH": str(firstsync.REPO)},
                )  # fmt: skip
            _wait_quiet(sandbox, errors)
            store = _store_url(config)
            for tag, rate in enumerate(rates):
                since = datetime.now(UTC)
                sent = asyncio.run(_edit(sandbox, ids, rate, seconds, tag))
                landed = asyncio.run(_landed(store, tag, since, len(sent)))
                latencies = sorted((landed[n] - sent[n]) * 1000 for n in sent if n in landed)
                result = LatencyRun(rate, len(sent), latencies)
                log(f"webhook latency at {rate:g}/s: {result.landed}/{result.sent} landed, p50 "
                    f"{result.percentile(50):,.0f} ms, p95 {result.percentile(95):,.0f}, "
                    f"p99 {result.percentile(99):,.0f}")
                results.append(result)
                _wait_quiet(sandbox, errors)
        finally:
            if daemon is not None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
            sandbox.stop()
    return results


def main(argv: list[str]) -> int:
    """`python -m bench latency`: print the latencies at each rate."""
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--rates", default="20,200", help="edits per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each rate is kept up")
    parser.add_argument("--contacts", type=int, default=2000, help="contacts synced first (one edit each at most)")
    args = parser.parse_args(argv)
    results = run([float(r) for r in args.rates.split(",")], args.seconds, args.contacts)
    return 0 if all(r.landed == r.sent for r in results) else 1


__all__ = ["LatencyRun", "main", "run"]
