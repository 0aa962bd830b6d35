"""Put a reconciler together from Settings: mappings compiled, store opened, connectors started."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from syncd.connectors.base import Connector
from syncd.connectors.registry import build_connector
from syncd.connectors.storage import VaultTokenStorage
from syncd.connectors.tokens import TokenManager
from syncd.engine.context import PipelineHooks
from syncd.engine.reconcile import ActiveMapping, Reconciler
from syncd.errors import MappingError, Problem, SyncdError
from syncd.mapping.loader import load_mappings
from syncd.settings import Settings
from syncd.store import ConnectionStore, Database, LinkOwner, MappingNames, TokenVault, prepare_schema


class WiringError(SyncdError):
    """The configuration cannot become a running engine (e.g. a mapping names an unconfigured system)."""


@dataclass(frozen=True)
class Engine:
    """An open store, started connectors (by system) and the reconciler over them."""

    db: Database
    connectors: dict[str, Connector]
    reconciler: Reconciler


def active_mappings(settings: Settings) -> list[ActiveMapping]:
    """The active mapping files, compiled once (raises `MappingError` listing every problem)."""
    return [ActiveMapping(compiled.name, compiled) for compiled in load_mappings(settings.mappings.active)]


def orphaned_links(mappings: Sequence[ActiveMapping], owners: Sequence[LinkOwner]) -> list[Problem]:
    """Active mappings under a new name for objects whose links an inactive name owns: each would create
    every record again, so each is a problem naming the rename that keeps the links."""
    active = {m.name for m in mappings}
    stored: dict[str, dict[tuple[str, str, str], int]] = {}
    for owner in owners:
        if owner.mapping not in active:
            stored.setdefault(owner.mapping, {})[(owner.crm_system, owner.acc_system, owner.object)] = owner.links
    problems = []
    for m in mappings:
        mine = {(m.mapping.crm_system, m.mapping.acc_system, obj) for obj in m.mapping.objects}
        for old, keys in sorted(stored.items()):
            shared = sorted(mine & set(keys))
            if not shared:
                continue
            count = sum(keys[k] for k in shared)
            systems = f"{m.mapping.crm_system} ↔ {m.mapping.acc_system}"
            problems.append(
                Problem(
                    m.mapping.source_file,
                    "name",
                    f"this mapping is named {m.name!r}, but the store keeps {count} link(s) of the same systems "
                    f"and objects ({systems}: {', '.join(k[2] for k in shared)}) under {old!r}; starting would "
                    f"create those records again. Run `syncd mappings rename {old} {m.name}` to move its links, "
                    f"cursors, conflicts and dead letters to the new name, or set name = \"{old}\" again",
                    m.mapping.spec.line_of(("name",)),
                )
            )
    return problems


def missing_connections(mappings: Sequence[ActiveMapping], connectors: Mapping[str, Connector]) -> list[str]:
    """What stops `mappings` from running on `connectors` (by system): one message per system lacking one."""
    return [
        f"mapping {active.name} needs a {system} connection; none is enabled"
        for active in mappings
        for system in (active.mapping.crm_system, active.mapping.acc_system)
        if system not in connectors
    ]


async def check_mapping_names(db: Database, mappings: Sequence[ActiveMapping]) -> None:
    """Refuse to start mappings that would orphan the store's links (raises `MappingError` listing each)."""
    problems = orphaned_links(mappings, await MappingNames(db).link_owners())
    if problems:
        raise MappingError(problems)


@contextlib.asynccontextmanager
async def open_engine(settings: Settings, *, hooks: PipelineHooks | None = None) -> AsyncIterator[Engine]:
    """Compile mappings, open the store (schema checked; a fresh SQLite store created), start a connector per
    system; close all on exit."""
    if settings.unresolved:
        # Loaded for a command on the store alone: its connections may hold `${NAME}` where a secret belongs.
        raise WiringError(f"settings loaded without {', '.join(sorted(settings.unresolved))} cannot start the engine")
    mappings = active_mappings(settings)
    db = await Database.open(settings.store.url)
    connectors: dict[str, Connector] = {}
    try:
        await prepare_schema(db)  # a fresh SQLite store is created here
        await check_mapping_names(db, mappings)
        key = settings.security.key_bytes()
        vault = TokenVault(db, key) if key is not None else None
        if vault is not None:
            # Before anything is written: a key that cannot read the stored tokens is refused (exit 2).
            await vault.check_key()
        states = ConnectionStore(db)
        recorded = {state.name: state for state in await states.list()}
        for name, conn in settings.connections.items():
            if not conn.enabled:
                continue
            if conn.system in connectors:
                raise WiringError(
                    f"connections {connectors[conn.system].name!r} and {name!r} are both "
                    f"{conn.system}: one connection per system is supported"
                )
            storage = VaultTokenStorage(vault, states, systems={name: conn.system}) if vault is not None else None
            connector = build_connector(name, conn, storage)
            state = recorded.get(name)
            tokens = getattr(connector, "tokens", None)
            if state is not None and state.status == "needs_reauth" and isinstance(tokens, TokenManager):
                # As the daemon pauses it, a one-off pass does not call the system until `syncd auth` is run.
                tokens.needs_reauthorisation(state.last_error or "")
            await connector.start()
            connectors[conn.system] = connector
        missing = missing_connections(mappings, connectors)
        if missing:
            raise WiringError(missing[0])
        overlap = timedelta(seconds=settings.polling.overlap_s)
        reconciler = Reconciler(db, mappings, connectors, overlap=overlap, hooks=hooks or PipelineHooks(),
                                deletion_sweep=timedelta(seconds=settings.polling.deletion_sweep_s),
                                kept_actions=settings.report.kept_actions)
        yield Engine(db, connectors, reconciler)
    finally:
        for connector in connectors.values():
            await connector.close()
        await db.close()
