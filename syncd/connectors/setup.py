"""`syncd setup`: make what the active mappings need on each system where its API allows (custom properties
made through a CRM's API), and print a checklist of what a person must make or grant by hand (custom objects and
fields, OAuth scopes and object permissions). Each system's part is its registration's `setup` module. Running it
again creates nothing."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import click

from syncd.cli import config_option, settings_from
from syncd.connectors.base import Connector
from syncd.mapping.compiled import CompiledMapping, ObjectMapper, ScalarField
from syncd.mapping.spec import Side
from syncd.settings import ConnectionBase, Settings
from syncd.systems import registration

# What a field holds, as far as syncd needs to say what to create: from the transforms the mapping applies.
FieldKind = Literal["string", "number", "date", "datetime", "bool", "reference"]
_KIND_OF_TRANSFORM: dict[str, FieldKind] = {
    "money": "number", "decimal": "number", "date": "date", "datetime": "datetime", "bool": "bool",
}


@dataclass(frozen=True)
class NeededField:
    """One field the active mappings use on a system object."""

    name: str
    kind: FieldKind = "string"
    writes: bool = False  # syncd writes it (else it only reads it)
    reference: bool = False  # a create reference: unique, looked up to find a record syncd created
    link_to: str | None = None  # for a link field: the system object whose id it holds
    mappings: tuple[str, ...] = ()

    def merged(self, other: NeededField) -> NeededField:
        """This need and another of the same field, as one."""
        return replace(
            self,
            kind=self.kind if self.kind != "string" else other.kind,
            writes=self.writes or other.writes,
            reference=self.reference or other.reference,
            link_to=self.link_to or other.link_to,
            mappings=tuple(sorted({*self.mappings, *other.mappings})),
        )


@dataclass
class SystemNeeds:
    """Everything the active mappings use on one system: per system object (`deals`, `Payment__c`; a list
    field's items as `deals.line_items`), the fields by name, and which objects syncd writes to."""

    system: str
    objects: dict[str, dict[str, NeededField]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)

    def add(self, obj: str, need: NeededField) -> None:
        """Note one field of `obj` (merged with what is already noted)."""
        if not need.name:
            return
        fields = self.objects.setdefault(obj, {})
        known = fields.get(need.name)
        fields[need.name] = need if known is None else known.merged(need)
        if need.writes:
            self.written.add(obj)


def _kind(field_: ScalarField, side: Side) -> FieldKind:
    for step in field_.crm_steps if side == "crm" else field_.acc_steps:
        kind = _KIND_OF_TRANSFORM.get(step.name)
        if kind is not None:
            return kind
    return "string"


def _object_needs(needs: SystemNeeds, mapping: CompiledMapping, mapper: ObjectMapper, side: Side) -> None:
    """Note what one mapped object uses on `side`."""
    obj = mapper.crm_object if side == "crm" else mapper.acc_object
    owner = (mapping.name,)
    for mapped in mapper.fields.values():
        name = mapped.scalar.side_name(side)
        writes = mapped.writes_to(side)
        if mapped.items is None:
            needs.add(obj, NeededField(name, _kind(mapped.scalar, side), writes, mappings=owner))
            continue
        needs.add(obj, NeededField(name, "string", writes, mappings=owner))
        for item in mapped.items:
            needs.add(f"{obj}.{name}", NeededField(item.side_name(side), _kind(item, side), writes, mappings=owner))
    for reference in mapper.references.values():
        target = mapping.objects.get(reference.target)
        link_to = None if target is None else (target.crm_object if side == "crm" else target.acc_object)
        needs.add(obj, NeededField(reference.side_field(side) or "", "reference", True, link_to=link_to,
                                   mappings=owner))
    ref = mapper.create.ref_field(side)
    if ref is not None:
        needs.add(obj, NeededField(ref, "string", True, reference=True, mappings=owner))
    for name in mapper.read_fields(side):
        needs.add(obj, NeededField(name, mappings=owner))


def needs_of(mappings: Sequence[CompiledMapping], system: str) -> SystemNeeds:
    """What `mappings` use on `system`: every object and field either side of them names there."""
    needs = SystemNeeds(system)
    for mapping in mappings:
        sides: tuple[tuple[Side, str], ...] = (("crm", mapping.crm_system), ("accounting", mapping.acc_system))
        for side, side_system in sides:
            if side_system != system:
                continue
            for name in mapping.order:
                _object_needs(needs, mapping, mapping.objects[name], side)
    return needs


Status = Literal["created", "present", "todo", "check"]
_STATUS_LABEL: dict[Status, str] = {
    "created": "created", "present": "already there", "todo": "to do", "check": "check",
}


@dataclass(frozen=True)
class SetupItem:
    """One line of the outcome: made now, already there, to do by hand (known missing), or to check by hand
    (the system's API cannot tell)."""

    status: Status
    what: str
    how: str = ""

    def render(self) -> str:
        """The line as printed."""
        line = f"  {_STATUS_LABEL[self.status]:<15}{self.what}"
        return f"{line}\n  {'':<15}→ {self.how}" if self.how else line


def scope_items(connection: str, system_label: str, configured: Iterable[str], needed: Sequence[tuple[str, str]],
                covering: Iterable[str] = ()) -> list[SetupItem]:
    """Compare the scopes `syncd auth` asks for with those needed (scope, why); a scope in `covering` grants
    every one. Missing scopes must be added to the config and the app, then the connection authorised again.
    Names are compared ignoring case (some systems' scopes are case-insensitive, the others lower-case)."""
    have = {scope.lower() for scope in configured}
    covered = sorted(scope for scope in covering if scope.lower() in have)
    if covered:
        return [SetupItem("present", f"OAuth scopes: {', '.join(covered)} covers every object syncd uses")]
    missing = [(scope, why) for scope, why in needed if scope.lower() not in have]
    if not missing:
        return [SetupItem("present", f"OAuth scopes: {', '.join(scope for scope, _ in needed)}")]
    return [SetupItem(
        "todo",
        "OAuth scopes missing: " + "; ".join(f"{scope} ({why})" for scope, why in missing),
        f"add them to scopes in [connections.{connection}] and to the {system_label} app's scopes, then run "
        f"`syncd auth {connection}` again (a grant keeps the scopes it was given)",
    )]


#: A system's setup: its module (the registration's `setup`) has one `set_up` of this shape.
SetUp = Callable[[Connector, ConnectionBase, SystemNeeds], Awaitable[list[SetupItem]]]


@dataclass(frozen=True)
class ConnectionSetup:
    """What setting up one connection did and left to do."""

    name: str
    system: str
    items: list[SetupItem]


async def set_up(settings: Settings, names: Sequence[str]) -> list[ConnectionSetup]:
    """Run each named connection's setup (every connection the active mappings use when none is named)."""
    from syncd.engine.wiring import open_engine  # deferred: `--help` needs none of this

    async with open_engine(settings) as engine:
        mappings = [active.mapping for active in engine.reconciler.mappings]
        by_name = {c.name: c for c in engine.connectors.values()}
        chosen = list(names) or [c.name for c in engine.connectors.values()
                                 if any(c.system in (m.crm_system, m.acc_system) for m in mappings)]
        outcome: list[ConnectionSetup] = []
        for name in chosen:
            connector = by_name.get(name)
            if connector is None:
                known = ", ".join(sorted(by_name)) or "none"
                raise click.UsageError(f"no enabled connection named {name!r} (enabled: {known})")
            setup_module = registration(connector.system).setup
            if setup_module is None:
                outcome.append(ConnectionSetup(name, connector.system, [SetupItem(
                    "present", "nothing to set up: this system's registration names no setup")]))
                continue
            system_set_up: SetUp = importlib.import_module(setup_module).set_up
            items = await system_set_up(connector, settings.connections[name], needs_of(mappings, connector.system))
            outcome.append(ConnectionSetup(name, connector.system, items))
        return outcome


@click.command("setup")
@click.argument("connections", nargs=-1)
@config_option
def setup_command(connections: tuple[str, ...], config_path: Path) -> int:
    """Create what the active mappings need on each CONNECTION (default: all), where the system's API allows
    (custom properties and their group), and print a checklist of what to create or grant by hand.
    Safe to run again: what exists is left alone. Exit 1 while something known to be missing remains."""
    outcome = asyncio.run(set_up(settings_from(config_path), connections))
    for done in outcome:
        click.echo(f"{done.name} ({done.system}):")
        for item in done.items:
            click.echo(item.render())
    statuses = [item.status for done in outcome for item in done.items]
    click.echo(f"{statuses.count('created')} created, {statuses.count('todo')} to do by hand, "
               f"{statuses.count('check')} to check by hand")
    return 1 if "todo" in statuses else 0
