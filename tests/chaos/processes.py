"""The real processes of a chaos run: `syncd sandbox` in its own process, its control planes, the syncd config
pointing at it, and `syncd run` / `syncd sync --once` / `syncd auth` as children that can be SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import tomli_w

from syncd.sandbox.command import KEY_FILE_NAME, build_config, ensure_token_key

REPO = Path(__file__).resolve().parents[2]
SYSTEMS = ("hubspot", "salesforce", "zohobooks")
LIFTED = 1_000_000_000
# The simulated accounts' limits are lifted (and the connections told so): a chaos run is about crashes and
# faults, not about pacing, which has its own tests and benchmarks.
SANDBOX_LIMITS: dict[str, dict[str, Any]] = {
    "hubspot": {"window_s": 1, "window_max": LIFTED, "daily_cap": LIFTED, "search_per_s": 10_000},
    "salesforce": {"window_s": 1, "window_max": LIFTED, "daily_cap": LIFTED},
    "zohobooks": {"window_s": 1, "window_max": LIFTED, "daily_cap": LIFTED},
}
CONNECTION_LIMIT = {"window_s": 1.0, "window_max": LIFTED, "daily_cap": LIFTED}


def child_env() -> dict[str, str]:
    """The environment of every child: this checkout importable, no proxies for loopback."""
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1,localhost"}


def free_port() -> int:
    """A port nothing listens on now (the daemon's webhook listener keeps it across restarts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SandboxProcess:
    """`syncd sandbox` on free ports in its own process, and a client of its three control planes."""

    def __init__(self, process: asyncio.subprocess.Process, descriptor: dict[str, dict[str, str]],
                 session: aiohttp.ClientSession, log: Any) -> None:
        self.process = process
        self.log = log
        self.descriptor = descriptor
        self.session = session
        self.roots = {
            "hubspot": descriptor["hubspot"]["base_url"],
            "salesforce": descriptor["salesforce"]["instance_url"],
            "zohobooks": descriptor["zohobooks"]["accounts_url"],
        }

    @classmethod
    async def start(cls, workdir: Path) -> SandboxProcess:
        """Start the sandbox and wait for its JSON line."""
        log = (workdir / "sandbox.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            # The three systems the chaos world holds: its config then activates only the mappings between them.
            sys.executable, "-m", "syncd", "sandbox", "--systems", ",".join(SYSTEMS), "--hubspot-port", "0",
            "--salesforce-port", "0", "--zoho-port", "0", "--workdir", str(workdir),
            stdout=asyncio.subprocess.PIPE, stderr=log, cwd=REPO, env=child_env(),
        )  # fmt: skip
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line:
            await process.wait()
            log.close()
            raise RuntimeError(f"the sandbox exited before printing its JSON line; see {workdir / 'sandbox.log'}")
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), trust_env=False)
        return cls(process, json.loads(line), session, log)

    async def control(self, system: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call one simulator's control plane (`/_sandbox/<path>`): GET without a body, POST with one."""
        method = "GET" if body is None else "POST"
        url = f"{self.roots[system]}/_sandbox/{path}"
        async with self.session.request(method, url, json=body) as response:
            answer = await response.json()
            if response.status >= 400:
                raise RuntimeError(f"{method} {url} answered {response.status}: {answer}")
            return answer

    async def records(self, system: str, obj: str) -> list[dict[str, Any]]:
        """Every record of an object as the simulator stores it (deleted and archived ones flagged)."""
        return list((await self.control(system, f"records/{obj}"))["records"])

    async def everywhere(self, path: str, body: Mapping[str, Any]) -> None:
        """The same control-plane POST to all three simulators."""
        for system in SYSTEMS:
            await self.control(system, path, body)

    async def stop(self) -> None:
        """SIGINT, as Ctrl-C would, then wait; kill if it hangs."""
        await self.session.close()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.log.close()


def write_config(sandbox: SandboxProcess, directory: Path, webhook_port: int, poll_interval_s: float) -> Path:
    """The config `syncd sandbox --write-config` writes, with the lifted limits, a webhook listener on
    `webhook_port`, no admin listener, JSON logs, and HubSpot's consent page on the sandbox (for `syncd auth`)."""
    config = build_config(sandbox.descriptor, directory, rate_limits={s: CONNECTION_LIMIT for s in SYSTEMS})
    config["connections"]["hubspot"]["authorize_url"] = f"{sandbox.roots['hubspot']}/oauth/authorize"
    config["polling"] = {"interval_s": poll_interval_s, "overlap_s": 30}
    config["webhooks"] = {"enabled": True, "host": "127.0.0.1", "port": webhook_port,
                          "public_url": f"http://127.0.0.1:{webhook_port}"}  # fmt: skip
    config["admin"] = {"enabled": False}
    config["logging"] = {"format": "json", "level": "info"}
    config["daemon"] = {"stop_grace_s": 5}
    ensure_token_key(directory / KEY_FILE_NAME)
    path = directory / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    return path


async def run_syncd(config: Path, *args: str, log: Path | None = None) -> tuple[int, str]:
    """Run one syncd command to its end; its exit code and stdout (stderr goes to `log`, appended)."""
    stderr = log.open("ab") if log is not None else asyncio.subprocess.DEVNULL
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "syncd", *args, "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=REPO, env=child_env(),
        )  # fmt: skip
        out, _ = await child.communicate()
    finally:
        if log is not None:
            stderr.close()  # type: ignore[union-attr]
    assert child.returncode is not None
    return child.returncode, out.decode(errors="replace")


@dataclass
class Child:
    """A syncd process the harness may SIGKILL at any moment."""

    process: asyncio.subprocess.Process
    log: Any

    @classmethod
    async def start(cls, config: Path, args: tuple[str, ...], log: Path) -> Child:
        """Start `syncd ARGS --config CONFIG`, stdout and stderr appended to `log`."""
        handle = log.open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "syncd", *args, "--config", str(config),
            stdout=handle, stderr=handle, cwd=REPO, env=child_env(),
        )  # fmt: skip
        return cls(process, handle)

    async def exited_within(self, seconds: float) -> bool:
        """Whether the process ended by itself within `seconds` (the chaos schedule's wait, not a sync point)."""
        try:
            await asyncio.wait_for(self.process.wait(), seconds)
        except TimeoutError:
            return False
        self.log.close()
        return True

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or committed."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()
        self.log.close()


async def reauthorise(config: Path, connection: str, log: Path) -> None:
    """What a person does after a revoked grant: `syncd auth CONNECTION`, opening the printed consent URL in a
    "browser" (an HTTP client following the sandbox's redirect back to syncd's listener)."""
    handle = log.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "auth", connection, "--timeout", "120", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=handle, cwd=REPO, env=child_env(),
    )  # fmt: skip
    assert process.stdout is not None
    try:
        url = ""
        while not url:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"syncd auth {connection} ended without printing a consent URL; see {log}")
            url = line.strip() if line.strip().startswith("http") else ""
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), trust_env=False) as browser,
            browser.get(url, allow_redirects=True) as response,
        ):
            await response.read()
        rest = await process.stdout.read()
        handle.write(rest)
        if await process.wait() != 0:
            raise RuntimeError(f"syncd auth {connection} exited {process.returncode}; see {log}")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        handle.close()


async def hubspot_grant(sandbox: SandboxProcess) -> str:
    """A new HubSpot refresh token by the code flow, for the harness's own edits after a revoke."""
    described = sandbox.descriptor["hubspot"]
    root = sandbox.roots["hubspot"]
    redirect = "http://127.0.0.1:9/callback"  # never followed: the code is read from the redirect itself
    query = {"client_id": described["client_id"], "redirect_uri": redirect, "scope": "crm.objects.contacts.write"}
    async with sandbox.session.get(f"{root}/oauth/authorize", params=query, allow_redirects=False) as response:
        location = response.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {"grant_type": "authorization_code", "client_id": described["client_id"],
            "client_secret": described["client_secret"], "redirect_uri": redirect, "code": code}  # fmt: skip
    async with sandbox.session.post(f"{root}/oauth/v1/token", data=form) as response:
        answer = await response.json()
    return str(answer["refresh_token"])
