"""The API budget on the sandbox: a first sync larger than a day's budget stops at syncd's share of the daily
cap, says so up front, resumes the next day where it stopped; webhook-driven work takes its calls first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.connectors.base import ChangeEvent
from syncd.connectors.budget import Priority, webhook_work
from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.engine.reconcile import ActiveMapping, Reconciler
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, load_mapping
from syncd.sandbox.runner import Sandbox
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.store import Database, LinkStore
from tests.engine.conftest import GENEROUS, World

MAPPING = "hubspot-zohobooks"
CONTACTS = 96
# Zoho Books at a tiny plan: 60 calls a day on the system, 20% of it left to the account's other integrations.
DAILY_CAP = 60
RESERVE = 0.2
SYNCD_SHARE = int(DAILY_CAP * (1 - RESERVE))


class ManualClock:
    """Wall-clock time that moves only when the test says so (seconds since the epoch)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta.total_seconds()


@dataclass
class SmallPlan:
    """HubSpot with contacts to sync and a Zoho Books organisation on a small daily cap, both on `clock`."""

    sandbox: Sandbox
    clock: ManualClock
    hubspot: HubSpotConnector
    zoho: ZohoBooksConnector
    reconciler: Reconciler

    def zoho_calls(self) -> int:
        """Books API requests the simulator served (refused ones included) since its stats were cleared."""
        requests = self.sandbox.simulators["zohobooks"].stats.requests
        return sum(n for route, n in requests.items() if route.split(" ", 1)[1].startswith("/books/"))

    async def sync_day(self) -> list[str]:
        """What the daemon's polls do in a day: every object of the mapping in order (errors end an object's
        run, its cursor left where it was); returns the errors."""
        errors: list[str] = []
        for name in self.reconciler.mappings[0].mapping.order:
            report = await self.reconciler.run_object(MAPPING, name)
            errors.extend(report.errors)
        return errors


@pytest.fixture
async def small_plan(tmp_path: Path, db: Database) -> AsyncIterator[SmallPlan]:
    """The sandbox on a hand-moved clock, HubSpot seeded with contacts, Zoho Books capped at DAILY_CAP a day
    (on the sandbox and in the connection's config), syncd's day counted on the same clock."""
    clock = ManualClock()
    async with Sandbox.running(workdir=tmp_path / "sandbox",
                               systems=("hubspot", "zohobooks"), clock=clock) as sandbox:
        hub_sim, books_sim = sandbox.simulators["hubspot"], sandbox.simulators["zohobooks"]
        hub_sim.apply_limits({"window_s": 1.0, "window_max": 100_000, "search_per_s": 10_000})
        hub_sim.seed(SeedWorld.build(11, CONTACTS), SeedCounts(contacts=CONTACTS))
        books_sim.apply_limits({"window_s": 1.0, "window_max": 100_000, "daily_cap": DAILY_CAP})
        described = sandbox.descriptor
        hub_keys = ("base_url", "client_id", "client_secret", "refresh_token", "app_secret")
        hubspot = HubSpotConnector("hubspot", HubSpotConnection(
            system="hubspot", timeout_s=5.0, rate_limit=GENEROUS, **{k: described["hubspot"][k] for k in hub_keys}))
        hubspot.transport.search_limiter = RateLimiter("hubspot/search", Budget(1.0, 10_000))
        books_keys = ("base_url", "accounts_url", "client_id", "client_secret", "refresh_token", "organization_id")
        zoho = ZohoBooksConnector("books", ZohoBooksConnection(
            system="zohobooks", timeout_s=5.0,
            rate_limit={**GENEROUS, "daily_cap": DAILY_CAP, "reserve_share": RESERVE},
            **{k: described["zohobooks"][k] for k in books_keys}), page_size=5)
        zoho.limiter.wall_clock = clock
        mapping = ActiveMapping(MAPPING, load_mapping(SHIPPED_MAPPINGS_DIR / f"{MAPPING}.toml"))
        # Small pages and batches, as a day's budget is to real ones: the work moves on page by page, and a stop
        # loses at most one batch's outcomes. No overlap: the sandbox's clock stands still within a day.
        reconciler = Reconciler(db, [mapping], {"hubspot": hubspot, "zohobooks": zoho}, batch_size=4,
                                overlap=timedelta(0))
        for connector in (hubspot, zoho):
            await connector.start()
        try:
            yield SmallPlan(sandbox, clock, hubspot, zoho, reconciler)
        finally:
            for connector in (hubspot, zoho):
                await connector.close()


async def test_a_first_sync_larger_than_the_day_stops_at_syncds_share_and_resumes_the_next_day(
    small_plan: SmallPlan, db: Database,
) -> None:
    plan = small_plan
    # Up front: a create a contact (Zoho Books has no batch create) does not fit one day.
    estimate = plan.zoho.limiter.estimate(CONTACTS)
    assert not estimate.fits_today and estimate.left_today is not None and estimate.left_today < SYNCD_SHARE
    assert estimate.budgets >= 2 and estimate.message().startswith(f"this work needs ~{CONTACTS} calls; today's")

    books_sim = plan.sandbox.simulators["zohobooks"]
    days = 0
    created_by_day: list[int] = []
    while True:
        books_sim.stats.clear()
        with capture_logs() as logged:
            errors = await plan.sync_day()
        if days == 0:
            # The first read says up front that the creates will not fit today, and how long they will take.
            [said] = [e for e in logged if e["event"].startswith(f"this work needs ~{CONTACTS} calls")]
            assert said["log_level"] == "warning" and said["connection"] == "books"
        # The simulator counts every request it received: never more than syncd's share of the cap.
        assert plan.zoho_calls() <= SYNCD_SHARE
        assert books_sim.stats.rate_limited == 0  # stopped by its own budget, not by the system's 429
        created_by_day.append(len(books_sim.records("contacts") or []))
        if not errors:
            break
        assert all("daily API budget spent" in e for e in errors), errors
        days += 1
        assert days < 10, "the sync never finished"
        plan.clock.advance(timedelta(days=1))
    assert days >= 2  # it really took several days
    assert created_by_day == sorted(created_by_day) and created_by_day[0] > 0  # progress every day

    # Every HubSpot contact became exactly one Zoho customer, each created once (no record synced twice).
    customers = [c for c in books_sim.records("contacts") or [] if not c["deleted"]]
    assert len(customers) == CONTACTS
    references = [next(f["value"] for f in c["custom_fields"] if f["api_name"] == "cf_syncd_ref") for c in customers]
    assert len(set(references)) == CONTACTS
    links = LinkStore(db)
    linked = []
    for contact in plan.sandbox.simulators["hubspot"].records("contacts") or []:
        link = await links.lookup_crm(MAPPING, "customer", "hubspot", str(contact["id"]))
        assert link is not None and link.state == "linked", contact["id"]
        linked.append(link.acc_id)
    assert sorted(linked) == sorted(str(c["contact_id"]) for c in customers)


async def test_webhook_driven_calls_are_granted_before_a_waiting_poll(world: World) -> None:
    """A poll of one mapping and a webhook-driven sync of another share the Zoho Books connection: once the
    webhook work asks, its calls are granted before the poll's waiting call."""
    customer = await world.zoho.put("contacts", {"contact_name": "Ann Lee", "email": "Ann.Lee@Example.com"})
    for n in range(6):
        await world.salesforce.put("Contact", {"LastName": f"Lee {n}", "Email": f"LEE{n}@example.com"})
    limiter = world.zoho.connector.limiter  # type: ignore[attr-defined]
    granted: list[Priority] = []
    webhook_waiting = asyncio.Event()
    poll_waiting = asyncio.Event()

    def watch(event: str, priority: Priority) -> None:
        if event == "granted":
            granted.append(priority)
        elif priority is Priority.WEBHOOK:
            webhook_waiting.set()
        else:
            poll_waiting.set()

    limiter.watcher = watch
    # Hold every grant until both kinds of work wait, so that the order shown is the limiter's choice.
    limiter.pause(3600)
    reconciler = world.reconciler("salesforce-zohobooks", MAPPING)
    poll = asyncio.create_task(reconciler.run_object("salesforce-zohobooks", "customer", ("crm",)))
    await poll_waiting.wait()
    event = ChangeEvent("zoho-event-1", "contacts", customer, "updated", datetime.now(UTC))
    with webhook_work():
        webhook = asyncio.create_task(reconciler.sync_records(MAPPING, "zohobooks", "contacts", [event]))
    await webhook_waiting.wait()
    polls_granted_before = granted.count(Priority.POLL)
    limiter.resume()
    await asyncio.gather(poll, webhook)
    assert granted[polls_granted_before] is Priority.WEBHOOK
    assert granted.count(Priority.WEBHOOK) >= 1 and granted.count(Priority.POLL) > polls_granted_before

