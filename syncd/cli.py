"""The `syncd` command: one group, subcommands loaded on first use so `--help` stays fast."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from syncd.errors import ConfigError, MappingError, ProblemsError, SetupError, SyncdError
from syncd.logs import configure_logging
from syncd.settings import Settings, SettingsScope, load_settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# Subcommands that live beside the code they drive; imported only when called.
_LAZY_COMMANDS = {
    "db": "syncd.store.command:db_command",
    "sandbox": "syncd.sandbox.command:sandbox_command",
    "mappings": "syncd.mapping.command:mappings_command",
    "links": "syncd.store.reports:links_command",
    "conflicts": "syncd.store.reports:conflicts_command",
    "inbox": "syncd.store.inbox_command:inbox_command",
    "audit": "syncd.store.audit_command:audit_command",
    "deadletters": "syncd.store.deadletters_command:deadletters_command",
    "setup": "syncd.connectors.setup:setup_command",
    "sync": "syncd.engine.command:sync_command",
    "run": "syncd.engine.run_command:run_command",
    "auth": "syncd.connectors.auth_command:auth_command",
    "demo": "syncd.demo:demo_command",
    "keys": "syncd.store.keys_command:keys_command",
}
# Subcommands whose dependencies come with an optional extra (pyproject's optional-dependencies).
_EXTRA_OF = {"sandbox": "sandbox", "demo": "sandbox"}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported from `module:attribute` when first used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """All subcommand names, the lazy ones included."""
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the named subcommand, importing it if it is lazy."""
        if cmd_name in _LAZY_COMMANDS:
            module_name, attribute = _LAZY_COMMANDS[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if cmd_name in _EXTRA_OF and not (exc.name or "").startswith("syncd"):
                    return _unavailable(cmd_name, f"it needs {exc.name}: pip install 'syncd[{_EXTRA_OF[cmd_name]}]'")
                if not (exc.name or "").startswith("syncd"):
                    raise
                return _unavailable(cmd_name)
            command: click.Command = getattr(module, attribute)
            return command
        return super().get_command(ctx, cmd_name)


def _unavailable(name: str, why: str = "") -> click.Command:
    """A placeholder for a subcommand whose part of syncd is not built in this version (or not installed)."""

    said = f"`syncd {name}` is not available in this build of syncd" + (f": {why}" if why else "")

    @click.command(name, help=said)
    def placeholder() -> None:
        raise click.ClickException(said)

    return placeholder


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("syncd.toml"),
    show_default=True,
    envvar="SYNCD_CONFIG",
    help="The syncd configuration file (env SYNCD_CONFIG).",
)


def settings_from(path: Path, scope: SettingsScope = "all") -> Settings:
    """Load the config a subcommand was given and set logging up from it (to stderr, secrets redacted);
    problems propagate as `ConfigError` (exit 2). A command on the store alone loads `scope="store"`, so that
    connection secrets it never uses need not be set."""
    settings = load_settings(path, scope=scope)
    configure_logging(settings.logging.level, settings.logging.format, secrets=settings.secret_values())
    return settings


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="syncd")
def cli() -> None:
    """syncd keeps CRMs and accounting systems in step, in both directions."""


@cli.command("check-config")
@click.argument("config_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@config_option
def check_config(config_file: Path | None, config_path: Path) -> None:
    """Check the config (CONFIG_FILE, else --config / SYNCD_CONFIG) and report every problem at once, exit 2 if
    there are any. Checked offline: keys and types, environment variables, files named, the store URL's scheme
    and the token key's shape; nothing is opened or contacted."""
    path = config_file or config_path
    settings = load_settings(path)
    names = ", ".join(f"{n} ({c.system})" for n, c in settings.connections.items()) or "none"
    click.echo(f"{path}: OK. Connections: {names}; mappings: {len(settings.mappings.active)} active.")


def _report_problems(exc: ProblemsError) -> None:
    count = len(exc.problems)
    click.echo(f"error: {count} {exc.kind} problem{'s' if count != 1 else ''}:", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the command and map errors to exit codes (0 ok, 1 runtime failure, 2 usage/config)."""
    try:
        result: Any = cli.main(args=argv, prog_name="syncd", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_FAILURE)
    except (ConfigError, MappingError) as exc:
        _report_problems(exc)
        sys.exit(EXIT_USAGE)
    except SetupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except SyncdError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else EXIT_OK)


if __name__ == "__main__":
    main()
