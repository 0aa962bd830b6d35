"""Throughput of the simulators: the sandbox in its own process, an aiohttp client at concurrency 32."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
LIFTED = 1_000_000_000
CONCURRENCY = 32


@dataclass(frozen=True)
class Target:
    """How to reach one simulator's record-by-id endpoint with a valid token."""

    system: str
    url_for: Callable[[str], str]
    headers: dict[str, str]
    ids: list[str]


@dataclass(frozen=True)
class Result:
    """What one simulator sustained."""

    system: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds

    def row(self) -> str:
        """One line of the report table."""
        return (f"{self.system:<11} {self.per_second:>9,.0f} req/s   p50 {self.p50_ms:6.2f} ms   "
                f"p99 {self.p99_ms:6.2f} ms   errors {self.errors}")


async def start_sandbox(workdir: Path) -> tuple[asyncio.subprocess.Process, dict[str, dict[str, str]]]:
    """Start `syncd sandbox` in a separate process on free ports, seeded, and read its JSON line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd.sandbox.command",
        "--hubspot-port", "0", "--salesforce-port", "0", "--zoho-port", "0",
        "--seed", "1", "--workdir", str(workdir),
        stdout=subprocess.PIPE, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if not line:
        await process.wait()
        raise RuntimeError(f"the sandbox exited with {process.returncode} before printing its JSON line")
    return process, json.loads(line)


async def post_json(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST a JSON body, return status and decoded answer."""
    async with http.post(url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def lift_limits(http: aiohttp.ClientSession, root: str) -> None:
    """Raise every quota a simulator knows, trying the common limit keys from most to least."""
    for body in ({"window_max": LIFTED, "daily_cap": LIFTED}, {"daily_cap": LIFTED}, {"window_max": LIFTED}):
        status, _ = await post_json(http, f"{root}/_sandbox/limits", body)
        if status == 200:
            return
    raise RuntimeError(f"{root} accepted none of the limit bodies")


async def record_ids(http: aiohttp.ClientSession, root: str, obj: str, id_field: str) -> list[str]:
    """The ids of the seeded records of one object, read through the control plane."""
    async with http.get(f"{root}/_sandbox/records/{obj}") as response:
        response.raise_for_status()
        records = (await response.json())["records"]
    ids = [str(r[id_field]) for r in records if not r.get("archived") and not r.get("IsDeleted")]
    if not ids:
        raise RuntimeError(f"{root}: no {obj} records to read")
    return ids


async def token(http: aiohttp.ClientSession, url: str, form: dict[str, str], *, in_query: bool = False) -> str:
    """An access token from a refresh-token grant."""
    request = http.post(url, params=form) if in_query else http.post(url, data=form)
    async with request as response:
        body = await response.json(content_type=None)
    if "access_token" not in body:
        raise RuntimeError(f"{url}: no access token in {body}")
    return str(body["access_token"])


def refresh_form(credentials: dict[str, str]) -> dict[str, str]:
    """The refresh-token grant of one system's credentials."""
    return {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
            "client_id": credentials["client_id"], "client_secret": credentials["client_secret"]}


async def targets(http: aiohttp.ClientSession, d: dict[str, dict[str, str]]) -> list[Target]:
    """Prepare each simulator: limits lifted, a token, and the ids to fetch."""
    hs, sf, zb = d["hubspot"], d["salesforce"], d["zohobooks"]
    hs_root, sf_root = hs["base_url"], sf["instance_url"]
    zb_root = zb["base_url"].removesuffix("/books/v3")
    for root in (hs_root, sf_root, zb_root):
        await lift_limits(http, root)
    hs_token = await token(http, f"{hs_root}/oauth/v1/token", refresh_form(hs))
    sf_token = await token(http, f"{sf_root}/services/oauth2/token", refresh_form(sf))
    zb_token = await token(http, f"{zb['accounts_url']}/oauth/v2/token", refresh_form(zb), in_query=True)
    org = zb["organization_id"]
    return [
        Target("hubspot", lambda i: f"{hs_root}/crm/v3/objects/contacts/{i}",
               {"Authorization": f"Bearer {hs_token}"}, await record_ids(http, hs_root, "contacts", "id")),
        Target("salesforce", lambda i: f"{sf_root}/services/data/v59.0/sobjects/Contact/{i}",
               {"Authorization": f"Bearer {sf_token}"}, await record_ids(http, sf_root, "Contact", "Id")),
        Target("zohobooks", lambda i: f"{zb['base_url']}/contacts/{i}?organization_id={org}",
               {"Authorization": f"Zoho-oauthtoken {zb_token}"},
               await record_ids(http, zb_root, "contacts", "contact_id")),
    ]


async def drive(http: aiohttp.ClientSession, target: Target, seconds: float) -> Result:
    """Keep CONCURRENCY requests in flight for `seconds` and measure each."""
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def worker(offset: int) -> None:
        nonlocal errors
        n = offset
        while loop.time() < deadline:
            url = target.url_for(target.ids[n % len(target.ids)])
            n += CONCURRENCY
            started = time.perf_counter()
            async with http.get(url, headers=target.headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    started = loop.time()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    elapsed = loop.time() - started
    latencies.sort()
    return Result(target.system, len(latencies), errors, elapsed,
                  latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000)


async def run(seconds: float = 5.0, warmup_s: float = 1.0) -> list[Result]:
    """Start the sandbox, drive each simulator in turn, stop the sandbox; return one result per simulator."""
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        process, descriptor = await start_sandbox(Path(tmp))
        try:
            context = ssl.create_default_context(cafile=descriptor["salesforce"]["ca_cert"])
            connector = aiohttp.TCPConnector(limit=CONCURRENCY, ssl=context)
            async with aiohttp.ClientSession(connector=connector) as http:
                results = []
                for target in await targets(http, descriptor):
                    await drive(http, target, warmup_s)
                    results.append(await drive(http, target, seconds))
            return results
        finally:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 30)


def main(argv: list[str]) -> int:
    """`python -m bench simulators [--seconds N]`: print requests/s and latency per simulator."""
    seconds = float(argv[argv.index("--seconds") + 1]) if "--seconds" in argv else 5.0
    results = asyncio.run(run(seconds))
    print(f"concurrency {CONCURRENCY}, {seconds:g} s per simulator, sandbox in its own process")
    for result in results:
        print(result.row())
    return 0 if all(r.errors == 0 for r in results) else 1


__all__ = ["Result", "main", "run"]
