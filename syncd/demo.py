"""`syncd demo`: the sandbox with overlapping data in all three systems, synced while you watch."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from syncd.engine.plan import SyncReport
from syncd.engine.wiring import open_engine
from syncd.logs import configure_logging
from syncd.sandbox.command import write_config
from syncd.sandbox.runner import Sandbox
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.settings import load_settings
from syncd.store import ConflictStore, LinkStore, upgrade

# What each simulated system starts with. Every system takes the first n people, companies and deals of one
# seeded world, so the same people exist in several systems and must be matched, not duplicated.
DEMO_DATA = {
    "hubspot": SeedCounts(contacts=20, companies=4, deals=12, invoices=0, payments=0),
    "salesforce": SeedCounts(contacts=14, companies=4, deals=8, invoices=0, payments=0),
    "zohobooks": SeedCounts(contacts=10, companies=0, deals=0, invoices=3, payments=1),
}
MAX_PASSES = 6
# The demo lifts the simulated accounts' rate limits (and tells the connections) so that it takes seconds,
# not the minutes Zoho Books' real 100 calls a minute would take.
DEMO_LIMITS: dict[str, dict[str, float]] = {
    "hubspot": {"window_s": 10, "window_max": 2000, "daily_cap": 1_000_000},
    "salesforce": {"window_s": 1, "window_max": 200, "daily_cap": 1_000_000},
    "zohobooks": {"window_s": 60, "window_max": 12_000, "daily_cap": 1_000_000},
}


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


async def run_demo(workdir: Path, console: Console, *, seed: int = 7) -> DemoOutcome:
    """Start the sandbox, seed it, sync until nothing is left to write, and return what happened."""
    async with Sandbox.running(hubspot_port=0, salesforce_port=0, zoho_port=0, workdir=workdir) as sandbox:
        world = SeedWorld.build(seed, max(c.size for c in DEMO_DATA.values()))
        table = Table(title="Seeded (overlapping people across systems)")
        for column in ("system", "records"):
            table.add_column(column)
        for system, counts in DEMO_DATA.items():
            created = sandbox.simulators[system].seed(world, counts)
            table.add_row(system, ", ".join(f"{n} {obj}" for obj, n in created.items() if n))
        console.print(table)

        for system, limits in DEMO_LIMITS.items():
            sandbox.simulators[system].apply_limits(limits)
        config = workdir / "syncd.toml"
        write_config(config, sandbox.descriptor, rate_limits=DEMO_LIMITS)
        settings = load_settings(config)
        await upgrade(settings.store.url)
        console.print(f"Config written to {config}; store at {settings.store.url}")

        passes: list[SyncReport] = []
        async with open_engine(settings) as engine:
            for number in range(1, MAX_PASSES + 1):
                with console.status(f"Pass {number}: reading changes, reconciling, writing…"):
                    report = await engine.reconciler.run_pass()
                passes.append(report)
                console.print(f"Pass {number}: {_summary(report)}")
                for error in report.errors:
                    console.print(f"  [red]error:[/red] {error}")
                if report.settled:
                    break
            links = await LinkStore(engine.db).list(limit=100_000)
            conflicts = await ConflictStore(engine.db).list(status="open")
        return DemoOutcome(tuple(passes), len(links), len(conflicts))


def _summary(report: SyncReport) -> str:
    counts = report.counts()
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing to do (settled)"


def _print_outcome(outcome: DemoOutcome, console: Console) -> None:
    totals: Counter[tuple[str, str]] = Counter()
    for report in outcome.passes:
        for action in report.actions:
            totals[(f"{action.mapping}:{action.object}", action.kind)] += 1
    kinds = ("create", "update", "link", "conflict", "skip")
    table = Table(title="What the demo did")
    table.add_column("mapping:object")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for name in sorted({name for name, _ in totals}):
        table.add_row(name, *(str(totals[(name, kind)]) for kind in kinds))
    console.print(table)
    state = "settled: a further pass writes nothing" if outcome.settled else "NOT settled"
    console.print(
        f"{len(outcome.passes)} passes, {state}. {outcome.links} links in the store, "
        f"{outcome.open_conflicts} open conflicts (see `syncd conflicts list`)."
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
def demo_command(workdir: Path, seed: int) -> None:
    """Run syncd against the built-in sandbox: seed overlapping data in HubSpot, Salesforce and Zoho Books,
    sync until settled, and show what was created, updated, linked and left in conflict."""
    console = Console(stderr=False)
    configure_logging("warning", "console")
    if workdir.exists():
        shutil.rmtree(workdir)
    outcome = asyncio.run(run_demo(workdir, console, seed=seed))
    _print_outcome(outcome, console)
    if not outcome.settled:
        raise click.ClickException(f"the sync did not settle in {MAX_PASSES} passes")



