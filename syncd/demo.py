"""`syncd demo`: the sandbox with overlapping data in all three systems, synced while you watch."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncd.connectors.base import Create, FieldValue, Update
from syncd.engine.command import pass_progress
from syncd.engine.plan import SyncReport
from syncd.engine.wiring import Engine, open_engine
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
MAX_PASSES = 4  # per round of syncing; the demo settles in two
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
    async with Sandbox.running(workdir=workdir) as sandbox:
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
            console.print("[bold]First sync[/bold]: match the people the systems share, create the rest.")
            await _sync_until_settled(engine, console, passes)
            console.print("[bold]Then people work[/bold]:")
            for line in await _edit_everywhere(engine):
                console.print(f"  • {line}")
            await _sync_until_settled(engine, console, passes)
            for line in await _pay_the_new_invoice(engine):
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


async def _edit_everywhere(engine: Engine) -> list[str]:
    """Edits a team would make between two syncs: in each system, one of them clashing with another."""
    links = LinkStore(engine.db)
    hubspot, salesforce, zoho = (engine.connectors[s] for s in ("hubspot", "salesforce", "zohobooks"))
    by_zoho_hs = {k.acc_id: k.crm_id for k in await links.list("hubspot-zohobooks", "customer", "linked")}
    by_zoho_sf = {k.acc_id: k.crm_id for k in await links.list("salesforce-zohobooks", "customer", "linked")}
    shared = sorted(k for k in set(by_zoho_hs) & set(by_zoho_sf) if k is not None)
    done: list[str] = []
    if len(shared) >= 2:
        person, clash = shared[0], shared[1]
        sf_id, hs_id = by_zoho_sf[person], by_zoho_hs[clash]
        assert sf_id is not None and hs_id is not None
        await salesforce.update_many("Contact", [Update(sf_id, {"LastName": "Okafor-Lee"})])
        done.append(f"Salesforce: contact {sf_id} takes the last name Okafor-Lee (HubSpot and Zoho Books follow)")
        await hubspot.update_many("contacts", [Update(hs_id, {"phone": "+15125550101"})])
        await zoho.update_many("contacts", [Update(clash, {"primary_contact.phone": "+15125550199"})])
        done.append(f"HubSpot contact {hs_id} and its Zoho Books customer {clash} get two different phone numbers")
    linked_contacts = {v for v in by_zoho_hs.values() if v}
    listed = [d.id async for page in hubspot.changes("deals", None, timedelta(0)) for d in page.records]
    # A list leaves deals' associations out: read the deals in full (a batch read per 100).
    deals = await hubspot.get_many("deals", listed)
    for deal in (deals[i] for i in listed if i in deals):
        customer = deal.fields.get("associations.contacts")
        if deal.fields.get("dealstage") != "closedwon" and customer in linked_contacts:
            # Won today, as a salesperson closes it: a deal dated before syncd started is history.
            won: dict[str, FieldValue] = {"dealstage": "closedwon", "closedate": date.today()}
            await hubspot.update_many("deals", [Update(deal.id, won)])
            done.append(f"HubSpot: deal {deal.id} ({deal.fields.get('dealname')}) is won, so it gets an invoice")
            return done
    return done


async def _pay_the_new_invoice(engine: Engine) -> list[str]:
    """A customer pays part of the newest invoice in Zoho Books."""
    links = await LinkStore(engine.db).list("hubspot-zohobooks", "invoice", "linked", limit=100_000)
    if not links:
        return []
    newest = max(links, key=lambda k: k.id)
    assert newest.acc_id is not None
    zoho = engine.connectors["zohobooks"]
    invoice = (await zoho.get_many("invoices", [newest.acc_id]))[newest.acc_id]
    total = invoice.fields.get("total")
    if not isinstance(total, Decimal) or total <= 0:
        return []
    paid = (total / 2).quantize(Decimal("0.01"))
    applied: list[Mapping[str, FieldValue]] = [{"invoice_id": newest.acc_id, "amount_applied": paid}]
    payment: dict[str, FieldValue] = {
        "customer_id": invoice.fields.get("customer_id"), "payment_mode": "banktransfer", "amount": paid,
        "date": date.today(), "reference_number": "DEMO-1", "invoices": applied,
    }
    [outcome] = await zoho.create_many("customerpayments", [Create("demo-payment-1", payment)])
    if not outcome.ok:
        return [f"Zoho Books refused the payment: {outcome.error}"]
    return [f"Zoho Books: the customer pays {paid} of invoice {invoice.fields.get('invoice_number')} "
            f"(the deal in HubSpot shows it)"]


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
        raise click.ClickException("the sync did not settle")



