"""Runs the registered simulators on loopback ports, describes them in one JSON line and persists their state."""

from __future__ import annotations

import contextlib
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
from syncd.systems import REGISTRY, load_object, registrations

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


def simulated_systems() -> list[str]:
    """The registered systems that have a simulator, in registry order: what the sandbox serves by default."""
    return [entry.name for entry in registrations() if entry.simulator is not None]


def default_ports() -> dict[str, int]:
    """Each simulated system's port under `syncd sandbox`, from its registration."""
    return {entry.name: entry.default_port for entry in registrations() if entry.simulator is not None}


def ports_by_option(options: Mapping[str, int]) -> dict[str, int]:
    """Ports by system from `<system>_port` (or `<alias>_port`) keywords; a TypeError for any other keyword."""
    names = {alias: entry.name for entry in registrations() for alias in (entry.name, *entry.option_aliases)}
    ports: dict[str, int] = {}
    for key, port in options.items():
        system = names.get(key.removesuffix("_port")) if key.endswith("_port") else None
        if system is None:
            raise TypeError(f"Sandbox.start() got an unexpected keyword argument {key!r}")
        ports[system] = port
    return ports


def _real_simulator(system: str, *, clock: Clock, rng_seed: int, workdir: Path) -> Simulator:
    """The registered simulator of a system (its class imported only now), built for serving."""
    found = {entry.name: entry for entry in registrations()}.get(system)
    if found is None or found.simulator is None:
        raise ValueError(f"no simulator for {system!r}; simulated systems: {', '.join(simulated_systems())}")
    simulator_class = load_object(found.simulator)
    if not (isinstance(simulator_class, type) and issubclass(simulator_class, Simulator)):
        raise TypeError(f"{found.simulator} is not a Simulator class")
    return simulator_class.for_sandbox(clock=clock, rng_seed=rng_seed, workdir=workdir)


def route_webhook_urls(urls: Sequence[str], systems: Sequence[str]) -> dict[str, list[str]]:
    """Which webhook URLs each system calls.

    `<system>=http://...` goes to that system only; a plain URL goes to every system, with `{system}` in it
    replaced by the system's name (e.g. `http://127.0.0.1:8080/webhooks/{system}`).
    """
    routed: dict[str, list[str]] = {system: [] for system in systems}
    for url in urls:
        name, sep, rest = url.partition("=")
        if sep and name in REGISTRY:
            if name in routed:
                routed[name].append(rest)
            continue
        for system in systems:
            routed[system].append(url.replace("{system}", system))
    return routed


class Sandbox:
    """The simulators served on loopback; `descriptor` is the public JSON line."""

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
        ports: Mapping[str, int] | None = None,
        state_file: Path | None = None,
        webhook_urls: Sequence[str] = (),
        workdir: Path,
        systems: Sequence[str] | None = None,
        rng_seed: int = 0,
        clock: Clock = time.time,
        factories: Mapping[str, SimulatorFactory] | None = None,
        **port_options: int,
    ) -> Sandbox:
        """Build, restore (from `state_file` if it exists) and serve the simulators of `systems` (default: every
        registered one that has a simulator) on `ports` by system; a system not in `ports` gets a free port.

        `factories` replaces the real simulator classes (each called with `clock=` and `rng_seed=`).
        `<system>_port=N` (or an alias's, as `zoho_port`) sets one port, like the command's `--<system>-port`.
        """
        # Absolute, so the descriptor's ca_cert (and a config written from it) works from any folder.
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        systems = simulated_systems() if systems is None else list(systems)
        ports = {**(ports or {}), **ports_by_option(port_options)}
        state = _read_state(state_file)
        routed = route_webhook_urls(webhook_urls, systems)
        served: dict[str, _Served] = {}
        descriptor: dict[str, dict[str, str]] = {}
        try:
            for system in systems:
                if factories is not None and system in factories:
                    simulator = factories[system](clock=clock, rng_seed=rng_seed)
                else:
                    simulator = _real_simulator(system, clock=clock, rng_seed=rng_seed, workdir=workdir)
                if system in state:
                    simulator.load_state(state[system])
                if routed[system]:
                    simulator.set_webhook_targets(routed[system])
                tls = simulator.tls
                runner = web.AppRunner(simulator.build_app(), access_log=None, shutdown_timeout=2.0)
                await runner.setup()
                # Registered before the site starts so that a failed bind is cleaned up too.
                served[system] = _Served(simulator, runner, 0, "https" if tls is not None else "http")
                site = web.TCPSite(runner, HOST, ports.get(system, 0), ssl_context=tls)
                await site.start()
                port = int(runner.addresses[0][1])
                served[system] = _Served(simulator, runner, port, served[system].scheme)
                descriptor[system] = dict(simulator.credentials(served[system].root))
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

    def simulator(self, system: str) -> Simulator:
        """The simulator serving `system`."""
        if system not in self._served:
            raise KeyError(f"the sandbox serves no {system!r}; it serves: {', '.join(self._served)}")
        return self._served[system].simulator

    def __getattr__(self, system: str) -> Simulator:
        # `sandbox.<system>` reads as `simulator(system)`, for any served system (older tests use it).
        if system.startswith("_") or "_served" not in self.__dict__:
            raise AttributeError(system)
        try:
            return self.simulator(system)
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

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
