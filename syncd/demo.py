"""`syncd demo`: the sandbox with overlapping data in every CRM and one accounting system, synced while you
watch."""

from __future__ import annotations

import asyncio
import importlib
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncd.connectors.base import Update
from syncd.engine.command import pass_progress
from syncd.engine.plan import SyncReport
from syncd.engine.wiring import Engine, open_engine
from syncd.logs import configure_logging
from syncd.mapping.compiled import CompiledMapping
from syncd.sandbox.base import Simulator
from syncd.sandbox.command import write_config
from syncd.sandbox.runner import Sandbox
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.settings import load_settings
from syncd.store import ConflictStore, LinkStore, upgrade
from syncd.systems import SystemRegistration, registration, registrations

# What each simulated system starts with, by role and place in the registry (the first CRM gets the most). Every
# system takes the first n people, companies and deals of one seeded world, so the same people exist in several
# systems and must be matched, not duplicated.
CRM_DATA = (
    SeedCounts(contacts=20, companies=4, deals=12, invoices=0, payments=0),
    SeedCounts(contacts=14, companies=4, deals=8, invoices=0, payments=0),
)
ACCOUNTING_DATA = SeedCounts(contacts=10, companies=0, deals=0, invoices=3, payments=1)
MAX_PASSES = 4  # per round of syncing; the demo settles in two
# The demo lifts the simulated accounts' rate limits (and tells the connections) so that it takes seconds, not
# the minutes a real limit of 100 calls a minute would take: each window allows at least this many calls a second.
DEMO_CALLS_PER_S = 200
DEMO_DAILY_CAP = 1_000_000


def demo_systems(accounting: str | None) -> tuple[list[SystemRegistration], SystemRegistration]:
    """The CRMs the demo serves (every registered one with a simulator) and the accounting system (`accounting`,
    or the first registered one); a clear error for a name that is not a simulated accounting system."""
    crms = [entry for entry in registrations("crm") if entry.simulator is not None]
    books = [entry for entry in registrations("accounting") if entry.simulator is not None]
    chosen = books[0] if accounting is None else next((e for e in books if e.name == accounting), None)
    if chosen is None or not crms:
        raise click.BadParameter(f"expected one of: {', '.join(e.name for e in books)} (got {accounting!r})",
                                 param_hint="--accounting")
    return crms, chosen


def demo_limits(simulator: Simulator) -> dict[str, float]:
    """A simulator's window lifted to DEMO_CALLS_PER_S (its length kept) and a daily cap out of the way."""
    window_s = float(simulator.default_limits().get("window_s", 1))
    return {"window_s": window_s, "window_max": int(DEMO_CALLS_PER_S * window_s), "daily_cap": DEMO_DAILY_CAP}


def lift_limits(sandbox: Sandbox) -> dict[str, dict[str, float]]:
    """Lift every served simulator's limits as `demo_limits` says; returns them by system, for the config's
    `rate_limit` tables (`write_config(..., rate_limits=...)`)."""
    limits = {system: demo_limits(simulator) for system, simulator in sandbox.simulators.items()}
    for system, lifted in limits.items():
        sandbox.simulator(system).apply_limits(lifted)
    return limits


def _steps(entry: SystemRegistration) -> ModuleType | None:
    """A system's `syncd demo` steps (its registration's `demo` module), if it has any."""
    return importlib.import_module(entry.demo) if entry.demo is not None else None


@dataclass(frozen=True)
class DemoOutcome:
    """What the demo did: the reports of its passes, and the links and open conflicts it left."""

    passes: tuple[SyncReport, ...]
    links: int
    open_conflicts: int

    @property
    def settled(self) -> bool:
        """Whether the last pass found nothing more to write."""
        return bool(self.passes) and self.passes[-1].settled


async def run_demo(workdir: Path, console: Console, *, seed: int = 7, accounting: str | None = None
                   ) -> DemoOutcome:
    """Start the sandbox (every CRM and one accounting system), seed it, sync until nothing is left to write,
    and return what happened."""
    crms, books = demo_systems(accounting)
    counts = {**{entry.name: data for entry, data in zip(crms, CRM_DATA, strict=False)}, books.name: ACCOUNTING_DATA}
    async with Sandbox.running(workdir=workdir, systems=[*counts]) as sandbox:
        world = SeedWorld.build(seed, max(c.size for c in counts.values()))
        table = Table(title="Seeded (overlapping people across systems)")
        for column in ("system", "records"):
            table.add_column(column)
        for system, wanted in counts.items():
            created = sandbox.simulator(system).seed(world, wanted)
            table.add_row(system, ", ".join(f"{n} {obj}" for obj, n in created.items() if n))
        console.print(table)

        limits = lift_limits(sandbox)
        config = workdir / "syncd.toml"
        write_config(config, sandbox.descriptor, rate_limits=limits)
        settings = load_settings(config)
        await upgrade(settings.store.url)
        console.print(f"Config written to {config}; store at {settings.store.url}")

        passes: list[SyncReport] = []
        async with open_engine(settings) as engine:
            story = _Story(engine, crms, books)
            console.print("[bold]First sync[/bold]: match the people the systems share, create the rest.")
            await _sync_until_settled(engine, console, passes)
            console.print("[bold]Then people work[/bold]:")
            for line in await story.edit_everywhere():
                console.print(f"  • {line}")
            await _sync_until_settled(engine, console, passes)
            for line in await story.pay_the_new_invoice():
                console.print(f"  • {line}")
            await _sync_until_settled(engine, console, passes)
            links = await LinkStore(engine.db).list(limit=100_000)
            conflicts = await ConflictStore(engine.db).list(status="open")
        return DemoOutcome(tuple(passes), len(links), len(conflicts))


async def _sync_until_settled(engine: Engine, console: Console, passes: list[SyncReport]) -> None:
    """Reconcile pass after pass until one has nothing left to write."""
    for _ in range(MAX_PASSES):
        number = len(passes) + 1
        # A bar per mapping and object while the pass runs (a line per object off a terminal).
        with pass_progress(console, lambda tally: console.print(f"  {tally.line()}", highlight=False),
                           transient=True) as observer:
            engine.reconciler.observer = observer
            report = await engine.reconciler.run_pass()
        passes.append(report)
        console.print(f"Pass {number}: {_summary(report)}")
        for action in report.actions:
            if action.kind == "conflict":
                fields = ", ".join(f"{c.field}: CRM {c.old!s} ≠ accounting {c.new!s}" for c in action.changes)
                console.print(f"  [yellow]conflict[/yellow] {action.source}: {fields}")
        for error in report.error_lines():
            console.print(f"  [red]error:[/red] {escape(error)}", highlight=False)
        if report.settled:
            return


@dataclass
class _Story:
    """The team's work between syncs, through the connectors and the active mappings' canonical fields, with
    the steps only a system knows (winning a deal, recording a payment) from its registration's `demo` module."""

    engine: Engine
    crms: list[SystemRegistration]
    books: SystemRegistration
    won_in: CompiledMapping | None = None  # the mapping whose CRM won a deal

    def mapping(self, crm: str) -> CompiledMapping | None:
        """The active mapping between `crm` and the accounting system."""
        return next((active.mapping for active in self.engine.reconciler.mappings
                     if active.mapping.crm_system == crm and active.mapping.acc_system == self.books.name), None)

    async def edit_everywhere(self) -> list[str]:
        """Edits a team would make between two syncs: in each system, one of them clashing with another."""
        links = LinkStore(self.engine.db)
        mappings = [m for m in (self.mapping(entry.name) for entry in self.crms) if m is not None]
        done: list[str] = []
        if len(mappings) >= 2:
            done += await self._rename_and_clash(links, mappings[0], mappings[1])
        for mapping in mappings:
            steps = _steps(registration(mapping.crm_system))
            if steps is None or not hasattr(steps, "win_a_deal"):
                continue
            customers = {k.crm_id for k in await links.list(mapping.name, "customer", "linked") if k.crm_id}
            line = await steps.win_a_deal(self.engine.connectors[mapping.crm_system], customers)
            if line:
                self.won_in = mapping
                return [*done, line]
        return done

    async def _rename_and_clash(self, links: LinkStore, first: CompiledMapping, second: CompiledMapping
                                ) -> list[str]:
        """A person both CRMs share is renamed in the second; another gets two different phone numbers in the
        first CRM and in the accounting system (a conflict for a person)."""
        by_acc_first = {k.acc_id: k.crm_id for k in await links.list(first.name, "customer", "linked")}
        by_acc_second = {k.acc_id: k.crm_id for k in await links.list(second.name, "customer", "linked")}
        shared = sorted(k for k in set(by_acc_first) & set(by_acc_second) if k is not None)
        if len(shared) < 2:
            return []
        person, clash = shared[0], shared[1]
        renamed, phoned = by_acc_second[person], by_acc_first[clash]
        assert renamed is not None and phoned is not None
        customer_second, customer_first = second.objects["customer"], first.objects["customer"]
        labels = {entry.name: entry.label for entry in (*self.crms, self.books)}
        await self.engine.connectors[second.crm_system].update_many(customer_second.crm_object, [
            Update(renamed, {customer_second.fields["last_name"].scalar.side_name("crm"): "Okafor-Lee"})])
        phone = customer_first.fields["phone"].scalar
        await self.engine.connectors[first.crm_system].update_many(customer_first.crm_object, [
            Update(phoned, {phone.side_name("crm"): "+15125550101"})])
        await self.engine.connectors[self.books.name].update_many(customer_first.acc_object, [
            Update(clash, {phone.side_name("accounting"): "+15125550199"})])
        return [f"{labels[second.crm_system]}: contact {renamed} takes the last name Okafor-Lee "
                f"({labels[first.crm_system]} and {self.books.label} follow)",
                f"{labels[first.crm_system]} contact {phoned} and its {self.books.label} customer {clash} get two "
                "different phone numbers"]

    async def pay_the_new_invoice(self) -> list[str]:
        """A customer pays part of the newest invoice, recorded in the accounting system."""
        steps = _steps(self.books)
        if self.won_in is None or steps is None or not hasattr(steps, "pay_part"):
            return []
        links = await LinkStore(self.engine.db).list(self.won_in.name, "invoice", "linked", limit=100_000)
        if not links:
            return []
        newest = max(links, key=lambda k: k.id)
        assert newest.acc_id is not None
        books = self.engine.connectors[self.books.name]
        invoices = await books.get_many(self.won_in.objects["invoice"].acc_object, [newest.acc_id])
        line = await steps.pay_part(books, invoices[newest.acc_id])
        crm = registration(self.won_in.crm_system).label
        return [f"{line} (the deal in {crm} shows it)"] if line else []


def _summary(report: SyncReport) -> str:
    counts = report.counts()
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing to do (settled)"


def _print_outcome(outcome: DemoOutcome, console: Console) -> None:
    totals: Counter[tuple[str, str]] = Counter()
    seen_conflicts: set[tuple[str, str]] = set()
    for report in outcome.passes:
        for action in report.actions:
            if action.kind == "conflict":
                # An open conflict is reported by every pass that reads its record; count it once.
                if (action.source, action.mapping) in seen_conflicts:
                    continue
                seen_conflicts.add((action.source, action.mapping))
            totals[(f"{action.mapping}:{action.object}", action.kind)] += 1
    kinds = ("create", "update", "link", "conflict", "skip")
    table = Table(title="What the demo did")
    table.add_column("mapping:object")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for name in sorted({name for name, _ in totals}):
        table.add_row(name, *(str(totals[(name, kind)]) for kind in kinds))
    console.print(table)
    state = "settled: the last pass wrote nothing" if outcome.settled else "NOT settled"
    console.print(
        f"{len(outcome.passes)} passes, {state}. {outcome.links} links in the store, "
        f"{outcome.open_conflicts} open conflict{'s' if outcome.open_conflicts != 1 else ''} "
        "(see `syncd conflicts list`)."
    )


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-state"),
    show_default=True,
    help="Where the demo keeps its config, store and certificate (emptied first).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Which seeded world to start from.")
@click.option("--accounting", default=None, metavar="SYSTEM",
              help="The accounting system to sync the CRMs with (a registered one; default: the first registered).")
def demo_command(workdir: Path, seed: int, accounting: str | None) -> None:
    """Run syncd against the built-in sandbox: seed overlapping data in every CRM and one accounting system,
    sync until settled, and show what was created, updated, linked and left in conflict."""
    console = Console(stderr=False)
    configure_logging("warning", "console")
    demo_systems(accounting)  # a wrong --accounting is said before anything is removed
    if workdir.exists():
        shutil.rmtree(workdir)
    outcome = asyncio.run(run_demo(workdir, console, seed=seed, accounting=accounting))
    _print_outcome(outcome, console)
    if not outcome.settled:
        raise click.ClickException("the sync did not settle")



