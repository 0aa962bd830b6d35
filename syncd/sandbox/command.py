"""`syncd sandbox`: serve the registered systems' simulators, print their JSON line, optionally write a matching
config. Its `--<system>-port` options come from the registry each time the command runs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tomllib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import tomli_w

from syncd.errors import SyncdError
from syncd.sandbox.runner import DEFAULT_SEED_MIX, Sandbox, default_ports, route_webhook_urls, simulated_systems
from syncd.systems import registrations

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"
KEY_FILE_NAME = "syncd-token.key"


def mapping_files() -> list[str]:
    """The shipped mapping files the registrations name, each once, in registry order."""
    return list(dict.fromkeys(name for entry in registrations() for name in entry.mapping_files))


def mappings_between(systems: Collection[str], mappings_dir: Path = MAPPINGS_DIR) -> list[Path]:
    """The shipped mapping files (that exist) whose CRM and accounting system are both among `systems`."""
    found: list[Path] = []
    for name in mapping_files():
        path = mappings_dir / name
        if not path.is_file():
            continue  # a missing one would make the whole config invalid
        header = tomllib.loads(path.read_text(encoding="utf-8")).get("mapping", {})
        if header.get("crm") in systems and header.get("accounting") in systems:
            found.append(path)
    return found


def build_config(descriptor: Mapping[str, Mapping[str, str]], config_dir: Path,
                 mappings_dir: Path = MAPPINGS_DIR,
                 rate_limits: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
    """A complete syncd config (as TOML-ready data) whose connections point at the running sandbox;
    `rate_limits` (by system) sets a connection's budget where the sandbox's limits were changed."""
    connections: dict[str, dict[str, Any]] = {}
    for system, credentials in descriptor.items():
        # Everything the sandbox describes, its (not real) secrets as plain values; with what a system needs to
        # register webhooks through its API (an app id and key) in, `syncd run` registers them itself.
        connections[system] = {"system": system, **credentials}
        if str(credentials.get("app_id", "")).isdigit():
            connections[system]["app_id"] = int(credentials["app_id"])  # an id, written as TOML's integer
        if rate_limits and system in rate_limits:
            connections[system]["rate_limit"] = dict(rate_limits[system])
    active = [str(path) for path in mappings_between(set(descriptor), mappings_dir)]
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
                 rate_limits: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """Write the config TOML for the sandbox (and its token key beside it), check it loads, and return where
    its `syncd run` receives webhooks, as a URL template with `{system}` (each connection is named after its
    system)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = build_config(descriptor, path.parent, rate_limits=rate_limits)
    ensure_token_key(Path(config["security"]["token_key_file"]))
    path.write_bytes(tomli_w.dumps(config).encode())
    from syncd.settings import load_settings
    from syncd.web.receiver import webhook_url

    settings = load_settings(path)  # a ConfigError here is our bug; better to fail now than when syncd starts
    listener = settings.webhooks
    return webhook_url(listener.public_url or f"http://{listener.host}:{listener.port}", "{system}")


async def serve(
    *,
    ports: Mapping[str, int],
    systems: Sequence[str] | None,
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
        ports=ports,
        systems=systems,
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
            receiving = write_config(write_config_to, sandbox.descriptor)
            if not webhook_urls:
                # What an admin would set up for a system without a webhook API: deliveries to the written
                # config's listener, so `syncd run --config FILE` gets them with no more flags.
                for system, urls in route_webhook_urls([receiving], list(sandbox.descriptor)).items():
                    sandbox.simulator(system).set_webhook_targets(urls)
                click.echo(f"sandbox: webhooks go to {receiving} (the written config's listener)", err=True)
        sys.stdout.write(sandbox.descriptor_line() + "\n")
        sys.stdout.flush()
        click.echo("sandbox: ready; Ctrl-C to stop", err=True)
        await stop.wait()
        click.echo("sandbox: stopping", err=True)


def port_options() -> list[click.Option]:
    """`--<system>-port` for each registered simulator (and `--<alias>-port` for its aliases)."""
    options = []
    for entry in registrations():
        if entry.simulator is None:
            continue
        names = [f"--{entry.name}-port", *(f"--{alias}-port" for alias in entry.option_aliases)]
        options.append(click.Option([*names, f"{entry.name}_port"], type=click.IntRange(0, 65535),
                                    default=entry.default_port, show_default=True,
                                    help=f"Port of the {entry.label} simulator (0: a free one)."))
    return options


def ports_of(options: Mapping[str, Any]) -> dict[str, int]:
    """The ports by system that the parsed `--<system>-port` options ask for (registered defaults otherwise)."""
    return {system: int(options.get(f"{system}_port", port)) for system, port in default_ports().items()}


def systems_of(value: str | None) -> list[str] | None:
    """The systems `--systems a,b` names, checked against the simulated ones (None: all of them)."""
    if value is None:
        return None
    chosen = [name.strip() for name in value.split(",") if name.strip()]
    known = simulated_systems()
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise click.BadParameter(f"expected names among: {', '.join(known)} (got {value!r})", param_hint="--systems")
    return chosen


class _SandboxCommand(click.Command):
    """A command whose port options are read from the registry when it runs, not when it is imported."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The registered systems' port options, then the fixed ones."""
        return [*port_options(), *super().get_params(ctx)]


@click.command("sandbox", cls=_SandboxCommand)
@click.option("--systems", "systems_value", default=None, metavar="A,B",
              help="Serve only these simulators (comma-separated; default: every registered one).")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Load records and credentials from FILE at start (if it exists); save them there at stop.")
@click.option("--webhook-url", "webhook_urls", multiple=True, metavar="URL",
              help="Where to deliver webhooks; repeatable. `<system>=URL` targets one system; "
                   "`{system}` in a plain URL becomes each system's name.")
@click.option("--write-config", "write_config_to", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a syncd config pointing at this sandbox to FILE (with a token key beside it); without "
                   "--webhook-url, webhooks then go to that config's listener.")
@click.option("--seed", type=click.IntRange(0), default=None, metavar="N",
              help="Seed every served system from world N with a default mix of records.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where files a simulator needs go (a TLS certificate; default: beside --state, else "
                   ".syncd-sandbox/).")
def sandbox_command(
    systems_value: str | None,
    state_file: Path | None,
    webhook_urls: tuple[str, ...],
    write_config_to: Path | None,
    seed: int | None,
    workdir: Path | None,
    **port_values: int,
) -> None:
    """Serve the registered systems' simulators on loopback and print one JSON line describing them."""
    if workdir is None:
        workdir = state_file.parent if state_file is not None else Path(".syncd-sandbox")
    systems = systems_of(systems_value)
    try:
        asyncio.run(
            serve(
                ports=ports_of(port_values),
                systems=systems,
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
