"""Rate-limit benchmark: a long paged read/write run through HubSpotConnector against the sandbox at the
real limits (100 calls per 10 s); reports calls, 429s and the achieved share of the allowed rate.

Run as `python -m bench.ratelimit [--seconds 60] [--window-s 10] [--window-max 100]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.connectors.base import Create, Update
from syncd.connectors.hubspot import HubSpotConnector
from syncd.sandbox.runner import Sandbox
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.settings import HubSpotConnection


@dataclass(frozen=True)
class RateReport:
    """What one run measured."""

    seconds: float
    calls: int
    rate_limited: int
    rate_limited_pct: float
    allowed_per_s: float
    achieved_per_s: float
    achieved_pct: float


async def run(seconds: float, window_s: float, window_max: int, workers: int = 8) -> RateReport:
    """Drive reads, creates and updates through one connector for `seconds`; count on the sandbox side."""
    with tempfile.TemporaryDirectory() as workdir:
        async with Sandbox.running(hubspot_port=0, workdir=Path(workdir), systems=("hubspot",)) as sandbox:
            simulator = sandbox.hubspot
            simulator.seed(SeedWorld.build(7, 600), SeedCounts(contacts=600, companies=0, deals=0, invoices=0,
                                                                payments=0))
            simulator.apply_limits({"window_s": window_s, "window_max": window_max})
            described = sandbox.descriptor["hubspot"]
            settings = HubSpotConnection(
                system="hubspot", base_url=described["base_url"], client_id=described["client_id"],
                client_secret=described["client_secret"], refresh_token=described["refresh_token"],
                rate_limit={"window_s": window_s, "window_max": window_max},
            )
            connector = HubSpotConnector("bench", settings)
            await connector.start()
            try:
                await connector.describe("contacts")  # warm up: token and property types
                simulator.stats.clear()
                started = time.monotonic()
                deadline = started + seconds
                workers_done = asyncio.gather(*(_worker(connector, w, deadline) for w in range(workers)))
                # Count what the system saw in the measured window; calls finishing after it are not counted.
                await asyncio.sleep(seconds)
                elapsed = time.monotonic() - started
                stats = simulator.stats
                calls = sum(n for key, n in stats.requests.items() if key.split(" ", 1)[1].startswith("/crm/"))
                limited = stats.responses.get(429, 0)
                await workers_done
            finally:
                await connector.close()
    allowed = window_max / window_s
    achieved = (calls - limited) / elapsed
    return RateReport(
        seconds=round(elapsed, 2), calls=calls, rate_limited=limited,
        rate_limited_pct=round(100.0 * limited / max(calls, 1), 3), allowed_per_s=allowed,
        achieved_per_s=round(achieved, 2), achieved_pct=round(100.0 * achieved / allowed, 1),
    )


async def _worker(connector: HubSpotConnector, worker: int, deadline: float) -> None:
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
                Create(f"bench-{worker}-{n}-{i}", {"email": f"b{worker}.{n}.{i}@bench.example"}) for i in range(10)
            ])
            known.extend(o.id for o in made if o.id is not None)
        elif known:
            ids = known[-20:]
            await connector.update_many("contacts", [Update(i, {"jobtitle": f"w{worker}-{n}"}) for i in ids])
        n += 1


def main() -> None:
    """Parse arguments, run, print the report as JSON and a one-line verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--window-max", type=int, default=100)
    args = parser.parse_args()
    report = asyncio.run(run(args.seconds, args.window_s, args.window_max))
    print(json.dumps(asdict(report), indent=2))
    ok = report.rate_limited_pct <= 1.0 and report.achieved_pct >= 90.0
    print(f"{'PASS' if ok else 'FAIL'}: 429s {report.rate_limited_pct}% (target <= 1%), "
          f"rate {report.achieved_pct}% of allowed (target >= 90%)")


if __name__ == "__main__":
    main()
