"""Runs the three simulators on loopback ports, describes them in one JSON line and persists their state."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from syncd.sandbox.base import Simulator
from syncd.sandbox.clock import Clock
from syncd.sandbox.seeding import SeedCounts, SeedWorld

SYSTEMS = ("hubspot", "salesforce", "zohobooks")
HOST = "127.0.0.1"
STATE_VERSION = 1
# What `syncd sandbox --seed N` creates: enough for the demo to show matching, invoices and payments.
DEFAULT_SEED_MIX = SeedCounts(contacts=50, companies=10, deals=30, invoices=20, payments=12)

SimulatorFactory = Callable[..., Simulator]


@dataclass(frozen=True)
class _Served:
    simulator: Simulator
    runner: web.AppRunner
    port: int
    scheme: str

    @property
    def root(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"


def _real_factory(system: str, workdir: Path) -> tuple[SimulatorFactory, dict[str, Any]]:
    """The simulator class of a system, imported only when needed, and its extra constructor arguments."""
    if system == "hubspot":
        return importlib.import_module("syncd.sandbox.hubspot").HubSpotSimulator, {}
    if system == "salesforce":
        tls = importlib.import_module("syncd.sandbox.tls").make_self_signed(workdir)
        cls = importlib.import_module("syncd.sandbox.salesforce").SalesforceSimulator
        return cls, {"tls": tls.server_context(), "_ca_cert": str(tls.cert_path)}
    if system == "zohobooks":
        return importlib.import_module("syncd.sandbox.zohobooks").ZohoBooksSimulator, {}
    raise ValueError(f"unknown system {system!r}; expected one of {SYSTEMS}")


def route_webhook_urls(urls: Sequence[str], systems: Sequence[str]) -> dict[str, list[str]]:
    """Which webhook URLs each system calls.

    `hubspot=http://...` goes to that system only; a plain URL goes to every system, with `{system}` in it
    replaced by the system's name (e.g. `http://127.0.0.1:8080/webhooks/{system}`).
    """
    routed: dict[str, list[str]] = {system: [] for system in systems}
    for url in urls:
        name, sep, rest = url.partition("=")
        if sep and name in SYSTEMS:
            if name in routed:
                routed[name].append(rest)
            continue
        for system in systems:
            routed[system].append(url.replace("{system}", system))
    return routed


class Sandbox:
    """The three simulators served on loopback; `descriptor` is the public JSON line."""

    def __init__(self, served: Mapping[str, _Served], descriptor: dict[str, dict[str, str]],
                 state_file: Path | None, restored: bool = False) -> None:
        self._served = dict(served)
        self.descriptor = descriptor
        self.state_file = state_file
        self.restored = restored  # True when the simulators were loaded from an existing state file
        self._stopped = False

    @classmethod
    async def start(
        cls,
        *,
        hubspot_port: int = 8901,
        salesforce_port: int = 8902,
        zoho_port: int = 8903,
        state_file: Path | None = None,
        webhook_urls: Sequence[str] = (),
        workdir: Path,
        systems: Sequence[str] = SYSTEMS,
        rng_seed: int = 0,
        clock: Clock = time.time,
        factories: Mapping[str, SimulatorFactory] | None = None,
    ) -> Sandbox:
        """Build, restore (from `state_file` if it exists) and serve the simulators; port 0 picks a free one.

        `factories` replaces the real simulator classes (each called with `clock=` and `rng_seed=`).
        """
        # Absolute, so the descriptor's ca_cert (and a config written from it) works from any folder.
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        ports = {"hubspot": hubspot_port, "salesforce": salesforce_port, "zohobooks": zoho_port}
        state = _read_state(state_file)
        routed = route_webhook_urls(webhook_urls, systems)
        served: dict[str, _Served] = {}
        descriptor: dict[str, dict[str, str]] = {}
        try:
            for system in systems:
                extra: dict[str, Any] = {}
                if factories is not None and system in factories:
                    factory = factories[system]
                else:
                    factory, extra = _real_factory(system, workdir)
                ca_cert = extra.pop("_ca_cert", None)
                simulator = factory(clock=clock, rng_seed=rng_seed, **extra)
                if system in state:
                    simulator.load_state(state[system])
                if routed[system]:
                    simulator.set_webhook_targets(routed[system])
                tls = extra.get("tls")
                runner = web.AppRunner(simulator.build_app(), access_log=None, shutdown_timeout=2.0)
                await runner.setup()
                # Registered before the site starts so that a failed bind is cleaned up too.
                served[system] = _Served(simulator, runner, 0, "https" if tls is not None else "http")
                site = web.TCPSite(runner, HOST, ports.get(system, 0), ssl_context=tls)
                await site.start()
                port = int(runner.addresses[0][1])
                served[system] = _Served(simulator, runner, port, served[system].scheme)
                credentials = dict(simulator.credentials(served[system].root))
                if ca_cert is not None:
                    credentials.setdefault("ca_cert", ca_cert)
                    credentials.setdefault("instance_url", served[system].root)
                descriptor[system] = credentials
        except BaseException:
            for entry in served.values():
                await entry.runner.cleanup()
            raise
        return cls(served, descriptor, state_file, restored=bool(state))

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, **kwargs: Any) -> AsyncIterator[Sandbox]:
        """`async with Sandbox.running(workdir=...) as sandbox:` starts, then stops and saves state."""
        sandbox = await cls.start(**kwargs)
        try:
            yield sandbox
        finally:
            await sandbox.stop()

    @property
    def hubspot(self) -> Simulator:
        """The HubSpot simulator."""
        return self._served["hubspot"].simulator

    @property
    def salesforce(self) -> Simulator:
        """The Salesforce simulator."""
        return self._served["salesforce"].simulator

    @property
    def zohobooks(self) -> Simulator:
        """The Zoho Books simulator."""
        return self._served["zohobooks"].simulator

    @property
    def simulators(self) -> dict[str, Simulator]:
        """Every running simulator by system name."""
        return {name: entry.simulator for name, entry in self._served.items()}

    def control_url(self, system: str) -> str:
        """Root of a simulator's port, where its `/_sandbox/` control plane lives."""
        return self._served[system].root

    def port(self, system: str) -> int:
        """The port a simulator listens on."""
        return self._served[system].port

    def descriptor_line(self) -> str:
        """The descriptor as the one JSON line `syncd sandbox` prints."""
        return json.dumps(self.descriptor, separators=(",", ":"), sort_keys=True)

    def seed_all(self, counts: SeedCounts = DEFAULT_SEED_MIX, seed: int = 0) -> dict[str, dict[str, int]]:
        """Seed every simulator from the same world, so that people overlap across systems."""
        world = SeedWorld.build(seed, counts.size)
        return {name: sim.seed(world, counts) for name, sim in self.simulators.items()}

    def restore_defaults(self) -> None:
        """Every simulator back to empty, no faults, default limits, zeroed stats."""
        for simulator in self.simulators.values():
            simulator.restore_defaults()

    def save_state(self) -> None:
        """Write every simulator's state to `state_file` atomically (no-op without a state file)."""
        if self.state_file is None:
            return
        state = {"version": STATE_VERSION, **{n: s.dump_state() for n, s in self.simulators.items()}}
        _write_atomically(self.state_file, json.dumps(state, default=str).encode())

    async def stop(self) -> None:
        """Stop serving (webhook dispatchers included), then save state; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            for entry in self._served.values():
                await entry.runner.cleanup()
        finally:
            self.save_state()


def _read_state(state_file: Path | None) -> dict[str, Any]:
    if state_file is None or not state_file.exists():
        return {}
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{state_file}: not a sandbox state file ({exc})") from exc
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ValueError(f"{state_file}: not a sandbox state file of version {STATE_VERSION}")
    return state


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
