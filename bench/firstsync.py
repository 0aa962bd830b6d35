"""First sync of N HubSpot contacts into Zoho Books, then an idle pass: `syncd sync --once` in its own process
against the sandbox in another, limits lifted; wall time, CPU and peak RSS of the syncd process (from wait4),
and the calls each simulator counted, by route, against the minimum that page and batch sizes allow."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from syncd.sandbox.command import KEY_FILE_NAME, MAPPINGS_DIR, build_config, ensure_token_key
from syncd.sandbox.runner import default_ports

REPO = Path(__file__).resolve().parents[1]
LIFTED = 1_000_000_000
SYSTEMS = ("hubspot", "zohobooks")
# Page and batch sizes the APIs allow: HubSpot lists 100 a page (search 200, but capped at 10,000 results),
# batch reads and writes 100; Zoho Books lists 200 a page and writes one record a call.
HUBSPOT_LIST_PAGE = 100
SEARCH_PAGE = 200
ZOHO_PAGE = 200
# The overlap window of the benchmark's config, and how long a stamp takes to be trusted (its precision, a second,
# and the clock margin, two).
OVERLAP_S = 10.0
STAMP_MARGIN_S = 4.0
HUBSPOT_SEARCH_LAG_S = 30.0
# Token grants and property descriptions are set-up, not data: counted, shown, left out of the ratio.
SETUP_MARKERS = ("/oauth/", "/properties/")


def is_setup(route: str) -> bool:
    """Whether a route is set-up (token, schema), not a read or write of records."""
    return any(marker in route for marker in SETUP_MARKERS)


# Objects whose deletions HubSpot sweeps (an archived list and a merge search each), the first time in the
# pass after the first sync, then once per sweep interval.
HUBSPOT_SWEPT = 2


def echo_routes(records: int, relisted: int) -> dict[str, dict[str, int]]:
    """The pass after a first sync: on HubSpot, the change search re-lists the `relisted` contacts modified in
    the overlap window before the first sync's list (pages of 200; the window stays: clock skew, search lag),
    one change search each for deals and line items, and the first deletion sweep (an archived list and a
    merge search per swept object); on Zoho Books, the contacts created read back in the list only (a
    create's answer settles it)."""
    return {
        "hubspot": {"POST /crm/v3/objects/{object_type}/search": max(1, math.ceil(relisted / SEARCH_PAGE)) + 2
                    + HUBSPOT_SWEPT,
                    "GET /crm/v3/objects/{object_type}": HUBSPOT_SWEPT},
        "zohobooks": {"GET /books/v3/contacts": math.ceil(records / ZOHO_PAGE), "GET /books/v3/invoices": 1,
                      "GET /books/v3/customerpayments": 1},
    }  # fmt: skip


def minimum_routes(records: int, *, idle: bool) -> dict[str, dict[str, int]]:
    """The fewest data calls per system and route a pass can make: a first sync of `records` new HubSpot contacts
    into an empty Zoho Books (every contact read in pages, one create each; deals, invoices and payments, of
    which there are none, one list call each), or an idle pass (one list call per object per side: on HubSpot a
    change search each of contacts, deals and line items)."""
    hubspot = ({"POST /crm/v3/objects/{object_type}/search": 3} if idle
               else {"GET /crm/v3/objects/{object_type}": math.ceil(records / HUBSPOT_LIST_PAGE) + 1})
    return {
        "hubspot": hubspot,
        "zohobooks": {
            "GET /books/v3/contacts": 1,
            "PUT /books/v3/contacts": 0 if idle else records,
            "GET /books/v3/invoices": 1,
            "GET /books/v3/customerpayments": 1,
        },
    }


@dataclass
class Pass:
    """One `syncd sync --once`: what it cost and what each system served, by route."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    exit_code: int
    calls: dict[str, dict[str, int]] = field(default_factory=dict)  # system -> "METHOD /route" -> count
    sandbox_cpu_s: float = 0.0  # what the sandbox process spent serving the pass

    def data_calls(self, system: str) -> dict[str, int]:
        """Reads and writes of records one system answered, by route (set-up calls left out)."""
        return {route: n for route, n in self.calls.get(system, {}).items() if not is_setup(route)}


@dataclass
class FirstSync:
    """A first sync of `records` contacts, the pass after it (which reads syncd's own creates back in its lists)
    and an idle pass once the overlap window has passed."""

    records: int
    first: Pass
    echo: Pass
    idle: Pass
    relisted: int = 0  # HubSpot contacts modified within the overlap window before the first sync's list

    @property
    def records_per_s(self) -> float:
        """Records synced per second of wall time, end to end."""
        return self.records / self.first.wall_s

    @property
    def cpu_per_1000(self) -> float:
        """CPU seconds of the syncd process per 1,000 records."""
        return self.first.cpu_s * 1000 / self.records

    @property
    def sandbox_cpu_per_1000(self) -> float:
        """CPU seconds of the sandbox process per 1,000 records (it shares the cores with syncd)."""
        return self.first.sandbox_cpu_s * 1000 / self.records


def _request(url: str, body: Mapping[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


class SandboxProcess:
    """`syncd sandbox` in its own process on free ports, without seed data."""

    def __init__(self, workdir: Path) -> None:
        self.process = subprocess.Popen(
            # Every simulator on a free port: two sandboxes (two benches) can run side by side.
            [sys.executable, "-m", "syncd.sandbox.command", *(f for s in default_ports() for f in (f"--{s}-port", "0")),
             "--workdir", str(workdir)],
            stdout=subprocess.PIPE, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox exited before printing its JSON line")
        self.descriptor: dict[str, dict[str, str]] = json.loads(line)
        self.roots = {
            "hubspot": self.descriptor["hubspot"]["base_url"],
            "zohobooks": self.descriptor["zohobooks"]["accounts_url"],
        }

    def control(self, system: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call one simulator's control plane (`/_sandbox/<path>`)."""
        return _request(f"{self.roots[system]}/_sandbox/{path}", body)

    def prepare(self, contacts: int, *, limits: Mapping[str, Any] | None = None) -> None:
        """Empty both systems, put `contacts` contacts in HubSpot, set the limits (lifted by default)."""
        for system in SYSTEMS:
            self.control(system, "reset", {})
            self.control(system, "limits", limits or {"window_max": LIFTED, "daily_cap": LIFTED})
        self.control("hubspot", "seed", {"contacts": contacts, "seed": 1})

    def stats(self) -> dict[str, dict[str, int]]:
        """Requests each system has counted so far, by route (control plane excluded)."""
        out: dict[str, dict[str, int]] = {}
        for system in SYSTEMS:
            requests = self.control(system, "stats")["requests"]
            out[system] = {k: v for k, v in requests.items() if "/_sandbox/" not in k}
        return out

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the sandbox process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the sandbox process."""
        self.process.send_signal(2)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def write_config(sandbox: SandboxProcess, directory: Path, rate_limit: Mapping[str, float] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> Path:
    """A syncd config for HubSpot ↔ Zoho Books only, pointing at the sandbox, with its own empty store
    (`overrides` replace whole sections)."""
    limit = dict(rate_limit or {"window_s": 1.0, "window_max": LIFTED, "daily_cap": LIFTED})
    config = build_config(sandbox.descriptor, directory, rate_limits={s: limit for s in SYSTEMS})
    config["connections"] = {s: config["connections"][s] for s in SYSTEMS}
    config["mappings"]["active"] = [str(MAPPINGS_DIR / "hubspot-zohobooks.toml")]
    # A short overlap window, so that the idle pass can be measured after it without waiting minutes.
    config.setdefault("polling", {})["overlap_s"] = OVERLAP_S
    config.update(overrides or {})
    ensure_token_key(directory / KEY_FILE_NAME)
    path = directory / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    subprocess.run([sys.executable, "-m", "syncd", "db", "upgrade", "--config", str(path)], check=True,
                   cwd=REPO, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    return path


def run_pass(sandbox: SandboxProcess, config: Path, entry: Sequence[str] = ("-m", "syncd")) -> Pass:
    """One `syncd sync --once` in a child process (`entry`: how Python runs the syncd command); its CPU and peak
    RSS come from the kernel (wait4, in `bench.rusage`: this process may be large, and lends its peak to a
    child it forks)."""
    before = sandbox.stats()
    sandbox_cpu = sandbox.cpu_s()
    started = time.perf_counter()
    # stderr goes to a file: a pipe read only at the end fills up with the pass's log lines and blocks it.
    with tempfile.TemporaryFile() as errors, tempfile.TemporaryDirectory(prefix="syncd-bench-rusage-") as tmp:
        measured = Path(tmp) / "rusage.json"
        child = subprocess.run(
            [sys.executable, "-m", "bench.rusage", str(measured),
             sys.executable, *entry, "sync", "--once", "--json", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=errors, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        wall = time.perf_counter() - started
        usage = json.loads(measured.read_text())
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if child.returncode != 0:
        print(f"syncd sync exited {child.returncode}: {stderr[-2000:]}", file=sys.stderr)
    sandbox_cpu = sandbox.cpu_s() - sandbox_cpu
    after = sandbox.stats()
    calls = {
        system: {k: n - before[system].get(k, 0) for k, n in after[system].items() if n != before[system].get(k, 0)}
        for system in SYSTEMS
    }
    return Pass(wall, usage["cpu_s"], usage["peak_rss_mb"], child.returncode, calls, sandbox_cpu)


def run(contacts: int, sandbox: SandboxProcess) -> FirstSync:
    """A first sync of `contacts` HubSpot contacts into an empty Zoho Books, the pass after it, then (the
    overlap window and the stamps' margin past, with nothing changed) an idle pass."""
    sandbox.prepare(contacts)
    # The seeded contacts' stamps, by the sandbox's clock (this machine's): the pass after re-lists those
    # modified from a second before the first sync's list less the overlap.
    stamps = [float(r["updated_at"]) for r in sandbox.control("hubspot", "records/contacts")["records"]]
    with tempfile.TemporaryDirectory(prefix="syncd-bench-sync-") as tmp:
        config = write_config(sandbox, Path(tmp))
        # The list starts a second or two after `listing` (its process starts first): a contact stamped within
        # those seconds before the window is counted though the poll may skip it (seeding stamps all at once,
        # in its last moments, so none are, here).
        listing = time.time()
        relisted = sum(1 for t in stamps if t >= listing - 1 - OVERLAP_S)
        if relisted < contacts:
            print(f"{contacts - relisted:,} seeded contacts are older than the overlap window: the pass after's "
                  "HubSpot minimum leaves them out", file=sys.stderr)
        first = run_pass(sandbox, config)
        time.sleep(STAMP_MARGIN_S)  # the next poll comes later: our creates' stamps are settled by then
        echo = run_pass(sandbox, config)
        # Nothing changes while the overlap window passes, and HubSpot's cursor trails its clock by the search
        # index's lag (30 s) on top of it.
        time.sleep(OVERLAP_S + HUBSPOT_SEARCH_LAG_S + STAMP_MARGIN_S)
        run_pass(sandbox, config)  # re-reads that window once, at the stamps it saw: no detail read
        idle = run_pass(sandbox, config)
    return FirstSync(contacts, first, echo, idle, relisted)


__all__ = ["FirstSync", "Pass", "SandboxProcess", "minimum_routes", "run", "run_pass"]
