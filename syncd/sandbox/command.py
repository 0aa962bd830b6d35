"""`syncd sandbox`: serve the three simulators, print their JSON line, optionally write a matching config."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import tomli_w

from syncd.errors import SyncdError
from syncd.sandbox.runner import DEFAULT_SEED_MIX, Sandbox

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"
MAPPING_FILES = ("hubspot-zohobooks.toml", "salesforce-zohobooks.toml")
KEY_FILE_NAME = "syncd-token.key"


def build_config(descriptor: Mapping[str, Mapping[str, str]], config_dir: Path,
                 mappings_dir: Path = MAPPINGS_DIR,
                 rate_limits: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
    """A complete syncd config (as TOML-ready data) whose connections point at the running sandbox;
    `rate_limits` (by system) sets a connection's budget where the sandbox's limits were changed."""
    connections: dict[str, dict[str, Any]] = {}
    for system, credentials in descriptor.items():
        # Everything the sandbox describes, its (not real) secrets as plain values; with HubSpot's app_id and
        # developer_api_key in, `syncd run` registers HubSpot's webhooks itself.
        connections[system] = {"system": system, **credentials}
        if str(credentials.get("app_id", "")).isdigit():
            connections[system]["app_id"] = int(credentials["app_id"])  # an id, written as TOML's integer
        if rate_limits and system in rate_limits:
            connections[system]["rate_limit"] = dict(rate_limits[system])
    # Only mapping files that exist: a missing one would make the whole config invalid.
    active = [str(mappings_dir / name) for name in MAPPING_FILES if (mappings_dir / name).is_file()]
    return {
        "store": {"url": f"sqlite:///{config_dir.resolve() / 'syncd.db'}"},
        "security": {"token_key_file": str(config_dir.resolve() / KEY_FILE_NAME)},
        "mappings": {"active": active},
        "polling": {"interval_s": 30},
        "connections": connections,
    }


def ensure_token_key(path: Path) -> None:
    """Create a Fernet key file readable by the owner only, unless one is already there."""
    if path.exists():
        return
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL + mode 0600 at creation: the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key() + b"\n")


def write_config(path: Path, descriptor: Mapping[str, Mapping[str, str]],
                 rate_limits: Mapping[str, Mapping[str, float]] | None = None) -> None:
    """Write the config TOML for the sandbox (and its token key beside it), then check it loads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = build_config(descriptor, path.parent, rate_limits=rate_limits)
    ensure_token_key(Path(config["security"]["token_key_file"]))
    path.write_bytes(tomli_w.dumps(config).encode())
    from syncd.settings import load_settings

    load_settings(path)  # a ConfigError here is our bug; better to fail now than when syncd starts


async def serve(
    *,
    hubspot_port: int,
    salesforce_port: int,
    zoho_port: int,
    state_file: Path | None,
    webhook_urls: Sequence[str],
    write_config_to: Path | None,
    seed: int | None,
    workdir: Path,
) -> None:
    """Start the sandbox, print its JSON line, and serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Sandbox.running(
        hubspot_port=hubspot_port,
        salesforce_port=salesforce_port,
        zoho_port=zoho_port,
        state_file=state_file,
        webhook_urls=webhook_urls,
        workdir=workdir,
    ) as sandbox:
        if seed is not None:
            if sandbox.restored:
                click.echo("sandbox: state restored from --state; --seed skipped", err=True)
            else:
                sandbox.seed_all(DEFAULT_SEED_MIX, seed=seed)
        if write_config_to is not None:
            write_config(write_config_to, sandbox.descriptor)
        sys.stdout.write(sandbox.descriptor_line() + "\n")
        sys.stdout.flush()
        click.echo("sandbox: ready; Ctrl-C to stop", err=True)
        await stop.wait()
        click.echo("sandbox: stopping", err=True)


@click.command("sandbox")
@click.option("--hubspot-port", type=click.IntRange(0, 65535), default=8901, show_default=True)
@click.option("--salesforce-port", type=click.IntRange(0, 65535), default=8902, show_default=True)
@click.option("--zoho-port", type=click.IntRange(0, 65535), default=8903, show_default=True)
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Load records and credentials from FILE at start (if it exists); save them there at stop.")
@click.option("--webhook-url", "webhook_urls", multiple=True, metavar="URL",
              help="Where to deliver webhooks; repeatable. `hubspot=URL` targets one system; "
                   "`{system}` in a plain URL becomes each system's name.")
@click.option("--write-config", "write_config_to", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a syncd config pointing at this sandbox to FILE (with a token key beside it).")
@click.option("--seed", type=click.IntRange(0), default=None, metavar="N",
              help="Seed all three systems from world N with a default mix of records.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the TLS certificate goes (default: beside --state, else .syncd-sandbox/).")
def sandbox_command(
    hubspot_port: int,
    salesforce_port: int,
    zoho_port: int,
    state_file: Path | None,
    webhook_urls: tuple[str, ...],
    write_config_to: Path | None,
    seed: int | None,
    workdir: Path | None,
) -> None:
    """Serve simulated HubSpot, Salesforce and Zoho Books on loopback and print one JSON line describing them."""
    if workdir is None:
        workdir = state_file.parent if state_file is not None else Path(".syncd-sandbox")
    try:
        asyncio.run(
            serve(
                hubspot_port=hubspot_port,
                salesforce_port=salesforce_port,
                zoho_port=zoho_port,
                state_file=state_file,
                webhook_urls=webhook_urls,
                write_config_to=write_config_to,
                seed=seed,
                workdir=workdir.resolve(),
            )
        )
    except OSError as exc:
        raise click.ClickException(f"cannot start the sandbox: {exc}") from exc
    except (ValueError, SyncdError) as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    sandbox_command()
