"""`syncd mappings`: check mapping files, statically and against the systems' live field lists."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from syncd.cli import config_option
from syncd.connectors.base import Connector
from syncd.errors import Problem, SyncdError
from syncd.mapping.catalog import FieldCatalog, validate_against_catalog
from syncd.mapping.compiled import CompiledMapping
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, check_files
from syncd.mapping.spec import MAPPING_NAME_PATTERN

EXIT_PROBLEMS = 2


async def check_live(
    mappings: Sequence[CompiledMapping], catalogs: Mapping[str, FieldCatalog]
) -> list[Problem]:
    """Check compiled mappings against live field lists; `catalogs` maps a system name to its catalog."""
    problems: list[Problem] = []
    for mapping in mappings:
        sides: dict[str, dict[str, set[str]]] = {mapping.crm_system: {}, mapping.acc_system: {}}
        for system, attr in ((mapping.crm_system, "crm_object"), (mapping.acc_system, "acc_object")):
            catalog = catalogs.get(system)
            if catalog is None:
                problems.append(Problem(mapping.source_file, "mapping", f"no connection configured for {system}"))
                continue
            for obj in mapping.objects.values():
                name: str = getattr(obj, attr)
                if name not in sides[system]:
                    sides[system][name] = await catalog.fields(name)
                for mapped in obj.fields.values():
                    if mapped.items is None:
                        continue
                    # Sub-record fields live on their own object on some systems (a CRM's line items).
                    nested = f"{name}.{mapped.scalar.side_name('crm' if attr == 'crm_object' else 'accounting')}"
                    if nested not in sides[system]:
                        sides[system][nested] = await catalog.fields(nested)
        if catalogs.get(mapping.crm_system) is None or catalogs.get(mapping.acc_system) is None:
            continue
        problems += validate_against_catalog(mapping.spec, sides[mapping.crm_system], sides[mapping.acc_system])
    return problems


class ConnectorCatalog:
    """A connector's live field list (describe / properties) as a mapping catalog; a nested object such as
    `deals.line_items` is answered from the parent's dotted `line_items.*` fields."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    async def fields(self, object: str) -> set[str]:
        """Names of every field of `object` (or of the list field a nested name points at)."""
        parent, _, child = object.partition(".")
        described = await self._connector.describe(parent)
        if not child:
            return set(described)
        prefix = f"{child}."
        return {name[len(prefix):] for name in described if name.startswith(prefix)}


async def _check_live_with_config(mappings: Sequence[CompiledMapping], config: Path) -> list[Problem]:
    """Open the config's connections (tokens from its store) and check the mappings against them."""
    from syncd.engine.wiring import open_engine  # deferred: the static check needs none of this
    from syncd.settings import load_settings

    async with open_engine(load_settings(config)) as engine:
        catalogs = {system: ConnectorCatalog(c) for system, c in engine.connectors.items()}
        return await check_live(mappings, catalogs)


def _active_files(config: Path | None) -> list[Path]:
    if config is not None:
        from syncd.settings import load_settings  # deferred: the static check needs no config at all

        return list(load_settings(config).mappings.active)
    return sorted(SHIPPED_MAPPINGS_DIR.glob("*.toml"))


@click.group("mappings")
def mappings_command() -> None:
    """Work with mapping files (which fields sync, how, and in which direction)."""


@mappings_command.command("validate")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Check the mapping files this config activates (and use its connections for --live).")
@click.option("--live", is_flag=True, help="Also check field names against the systems' live field lists.")
@click.pass_context
def validate_command(ctx: click.Context, files: tuple[Path, ...], config: Path | None, live: bool) -> None:
    """Check mapping FILES (default: the config's active ones, else the shipped ones); exit 2 on problems."""
    if live and config is None:
        raise click.UsageError("--live needs --config FILE to reach the systems")
    paths = list(files) or _active_files(config)
    if not paths:
        raise click.UsageError("no mapping files given and none active")
    compiled, problems = check_files(paths)
    if live and config is not None and not problems:
        try:
            problems += asyncio.run(_check_live_with_config(compiled, config))
        except SyncdError as exc:
            raise click.ClickException(f"live check failed: {exc}") from exc
    for problem in problems:
        click.echo(str(problem))
    if problems:
        count = len(problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} in {len(paths)} file(s)", err=True)
        ctx.exit(EXIT_PROBLEMS)
    for mapping in compiled:
        objects = ", ".join(mapping.order)
        click.echo(f"{mapping.source_file}: OK ({mapping.crm_system} ↔ {mapping.acc_system}: {objects})")


@mappings_command.command("rename")
@click.argument("old")
@click.argument("new")
@config_option
def rename_command(old: str, new: str, config_path: Path) -> None:
    """Move every link (with its conflicts), cursor and dead letter kept under mapping OLD to NEW, in one
    transaction; refused if NEW already owns any. Stop syncd first, and make the mapping file say name = NEW."""
    from syncd.store.command_io import run_on_store  # deferred: validating files needs no store
    from syncd.store.mapping_names import MappingNames, describe_counts

    if not re.match(MAPPING_NAME_PATTERN, new):
        raise click.BadParameter(
            "1-64 letters, digits, '-', '_' or '.', starting with a letter or digit", param_hint="NEW"
        )
    moved = run_on_store(config_path, lambda db: MappingNames(db).rename(old, new))
    click.echo(f"moved {describe_counts(moved)} from mapping {old!r} to {new!r}")
    click.echo(f'the active mapping file must now say name = "{new}"')
