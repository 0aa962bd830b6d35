"""Rate-limit benchmark: a long read/write run through one connector against the sandbox at a system's real
limits (HubSpot 100 calls per 10 s, Zoho Books 100 per minute); reports calls, 429s and the achieved share of
the allowed rate.

Run as `python -m bench.ratelimit [--system hubspot|zohobooks] [--seconds 60] [--window-s S] [--window-max N]`
(window defaults: the system's real limits)."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.connectors.base import Connector, Create, FieldValue, Update
from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.sandbox.runner import Sandbox
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.settings import RateLimitSettings


@dataclass(frozen=True)
class SystemUnderTest:
    """What the benchmark needs to know of one system: its real limits, where its API lives, how to connect."""

    window_s: float
    window_max: int
    api_prefix: str  # requests counted (the control plane and OAuth are not the API's budget)
    connect: Callable[[Mapping[str, str], RateLimitSettings], Connector]
    # A contact's fields for a create (given a unique number) and for an update.
    create_fields: Callable[[str], dict[str, FieldValue]]
    update_fields: Callable[[str], dict[str, FieldValue]]


def _hubspot(described: Mapping[str, str], limit: RateLimitSettings) -> Connector:
    settings = HubSpotConnection(
        system="hubspot", base_url=described["base_url"], client_id=described["client_id"],
        client_secret=described["client_secret"], refresh_token=described["refresh_token"], rate_limit=limit,
    )
    return HubSpotConnector("bench", settings)


def _zohobooks(described: Mapping[str, str], limit: RateLimitSettings) -> Connector:
    keys = ("base_url", "accounts_url", "client_id", "client_secret", "refresh_token", "organization_id")
    settings = ZohoBooksConnection(system="zohobooks", rate_limit=limit, **{k: described[k] for k in keys})
    return ZohoBooksConnector("bench", settings)


SYSTEMS: dict[str, SystemUnderTest] = {
    "hubspot": SystemUnderTest(
        10.0, 100, "/crm/", _hubspot,
        lambda n: {"email": f"b{n}@bench.example"}, lambda n: {"jobtitle": f"w{n}"},
    ),
    "zohobooks": SystemUnderTest(
        60.0, 100, "/books/", _zohobooks,
        lambda n: {"contact_name": f"Bench {n}", "email": f"b{n}@bench.example"},
        lambda n: {"company_name": f"Bench Co {n}"},
    ),
}


@dataclass(frozen=True)
class RateReport:
    """What one run measured."""

    system: str
    seconds: float
    calls: int
    rate_limited: int
    rate_limited_pct: float
    allowed_per_s: float
    achieved_per_s: float
    achieved_pct: float


async def run(seconds: float, window_s: float | None = None, window_max: int | None = None, workers: int = 8,
              system: str = "hubspot") -> RateReport:
    """Drive reads, creates and updates through one connector for `seconds`; count on the sandbox side."""
    under_test = SYSTEMS[system]
    window_s = window_s or under_test.window_s
    window_max = window_max or under_test.window_max
    with tempfile.TemporaryDirectory() as workdir:
        async with Sandbox.running(workdir=Path(workdir),
                                   systems=(system,)) as sandbox:
            simulator = sandbox.simulators[system]
            simulator.seed(SeedWorld.build(7, 600), SeedCounts(contacts=600, companies=0, deals=0, invoices=0,
                                                                payments=0))
            simulator.apply_limits({"window_s": window_s, "window_max": window_max})
            limit = RateLimitSettings(window_s=window_s, window_max=window_max)
            connector = under_test.connect(sandbox.descriptor[system], limit)
            await connector.start()
            try:
                await connector.describe("contacts")  # warm up: the token (and HubSpot's property types)
                # Measured from a fresh window on the system's side, as a long-running daemon would see it.
                await _next_window(window_s)
                simulator.stats.clear()
                started = time.monotonic()
                deadline = started + seconds
                workers_done = asyncio.gather(
                    *(_worker(connector, under_test, w, deadline) for w in range(workers))
                )
                # Count what the system saw in the measured window; calls finishing after it are not counted.
                await asyncio.sleep(seconds)
                elapsed = time.monotonic() - started
                stats = simulator.stats
                calls = sum(n for key, n in stats.requests.items()
                            if key.split(" ", 1)[1].startswith(under_test.api_prefix))
                limited = stats.responses.get(429, 0)
                await workers_done
            finally:
                await connector.close()
    allowed = window_max / window_s
    achieved = (calls - limited) / elapsed
    return RateReport(
        system=system, seconds=round(elapsed, 2), calls=calls, rate_limited=limited,
        rate_limited_pct=round(100.0 * limited / max(calls, 1), 3), allowed_per_s=round(allowed, 3),
        achieved_per_s=round(achieved, 3), achieved_pct=round(100.0 * achieved / allowed, 1),
    )


async def _next_window(window_s: float) -> None:
    """Wait for the start of the sandbox's next quota window (windows are aligned to the epoch)."""
    await asyncio.sleep(window_s - time.time() % window_s)


async def _worker(connector: Connector, under_test: SystemUnderTest, worker: int, deadline: float) -> None:
    """Worker 0 polls for changes the way the daemon does (each read from where the previous one started);
    the others write in batches (creates and updates) until the deadline: a sync's steady mix."""
    n = 0
    since = datetime.now(UTC)
    known: list[str] = []
    while time.monotonic() < deadline:
        if worker == 0:
            read_started = datetime.now(UTC)
            async for page in connector.changes("contacts", since, timedelta(0)):
                known.extend(r.id for r in page.records[:20])
                if time.monotonic() >= deadline:
                    break
            since = read_started
        elif n % 2 == 0:
            made = await connector.create_many("contacts", [
                Create(f"bench-{worker}-{n}-{i}", under_test.create_fields(f"{worker}.{n}.{i}")) for i in range(10)
            ])
            known.extend(o.id for o in made if o.id is not None)
        elif known:
            updates = [Update(i, under_test.update_fields(f"{worker}-{n}")) for i in known[-20:]]
            await connector.update_many("contacts", updates)
        n += 1


def main() -> None:
    """Parse arguments, run, print the report as JSON and a one-line verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="hubspot")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window-s", type=float, default=None)
    parser.add_argument("--window-max", type=int, default=None)
    args = parser.parse_args()
    report = asyncio.run(run(args.seconds, args.window_s, args.window_max, system=args.system))
    print(json.dumps(asdict(report), indent=2))
    ok = report.rate_limited_pct <= 0.5 and report.achieved_pct >= 95.0
    print(f"{'PASS' if ok else 'FAIL'}: 429s {report.rate_limited_pct}% (target <= 0.5%), "
          f"rate {report.achieved_pct}% of allowed (target >= 95%)")



if __name__ == "__main__":
    main()
