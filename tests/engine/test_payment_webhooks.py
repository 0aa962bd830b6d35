"""A Zoho Books payment reaches the HubSpot deal through webhooks alone (polling set to an hour), and deleting it
takes the amount paid back, each exactly once; with and without Zoho following the payment with the invoice's
own webhook, which is not verified for live Zoho."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncd.engine.daemon import Daemon
from syncd.sandbox.zohobooks.app import ZohoBooksSimulator
from syncd.store import AuditEntry, InboxStore
from syncd.web.receiver import webhook_url
from tests.engine.conftest import World
from tests.engine.test_customers import settle
from tests.engine.test_daemon import eventually, settings_for, settled_start
from tests.engine.test_deals import pay, won_deal
from tests.engine.test_payments import invoice_of

MAPPING = "hubspot-zohobooks"


@pytest.fixture
async def daemon(tmp_path: Path, world: World) -> AsyncIterator[Daemon]:
    """`syncd run` over the world's store and sandbox: webhooks on, polling once an hour (so only its start-up
    polls run); stopped at the end."""
    running = Daemon(await settings_for(tmp_path, world.sandbox, interval_s=3600, webhooks=True),
                     inbox_interval_s=0.5, health_interval_s=0.5)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(params=[True, False], ids=["invoice-webhooks-too", "payment-webhooks-only"])
def invoice_webhooks(request: pytest.FixtureRequest, world: World) -> Iterator[bool]:
    """Whether the Zoho simulator follows a payment with `invoice_updated` for the invoices it changed."""
    books = world.sandbox.zohobooks
    assert isinstance(books, ZohoBooksSimulator)
    books.payment_routes.invoice_webhooks = bool(request.param)
    yield bool(request.param)
    books.payment_routes.invoice_webhooks = True


async def deal_writes(world: World, deal: str, after: int) -> list[AuditEntry]:
    """The writes syncd made to the deal since audit entry `after`, oldest first."""
    entries = await world.stores.audit.list(system="hubspot", object="deals", record_id=deal, limit=1000)
    return sorted((e for e in entries if e.id > after), key=lambda e: e.id)


async def last_audit_id(world: World) -> int:
    """The newest audit entry's id (0 when there is none)."""
    newest = await world.stores.audit.list(limit=1)
    return newest[0].id if newest else 0


async def quiet(world: World) -> None:
    """Every Zoho webhook delivered and every stored event processed."""
    await world.sandbox.zohobooks.drain_webhooks(10)
    inbox = InboxStore(world.db)

    async def empty() -> bool:
        return not await inbox.pending()

    await eventually(empty, "the inbox to empty")


def causes(entries: list[AuditEntry]) -> list[str]:
    """Which mapped object each write came from (`invoice`, `payment`), in order."""
    return [e.cause.split(":")[1] for e in entries]


async def invoiced_deal_under_daemon(world: World, daemon: Daemon) -> tuple[str, str, int]:
    """A won deal with its invoice in Zoho Books, linked by an earlier sync, then the daemon started and
    settled: the deal, the invoice, and the polls run so far."""
    _, deal = await won_deal(world)
    await settle(world)
    invoice = await invoice_of(world, deal)
    await daemon.start()
    assert daemon.webhook_listener is not None
    # Zoho Books has no API to register webhooks: an admin's workflow rule points them at syncd, here the
    # sandbox's side (as `syncd sandbox --webhook-url` does).
    world.sandbox.simulator("zohobooks").set_webhook_targets([webhook_url(daemon.webhook_listener.url, "books")])
    return deal, invoice, await settled_start(daemon)


async def test_a_zoho_payment_and_its_deletion_reach_the_deal_by_webhook_once(
    world: World, invoice_webhooks: bool, daemon: Daemon
) -> None:
    deal, invoice, polls = await invoiced_deal_under_daemon(world, daemon)
    assert daemon.webhook_listener is not None
    before = await last_audit_id(world)

    # Someone records a payment in Zoho Books.
    payment = await pay(world, "500", (invoice, "500"), reference="WIRE-7")

    async def shows_payment() -> dict[str, Any] | None:
        fields = await world.hubspot.get("deals", deal)
        return fields if fields["syncd_last_payment_amount"] == Decimal("500.00") and \
            fields["syncd_amount_paid"] == Decimal("500.00") else None

    fields = await eventually(shows_payment, "the payment on the deal")
    assert fields["syncd_invoice_balance"] == Decimal("700.00")
    assert fields["syncd_invoice_status"] == "partially_paid"
    assert fields["syncd_last_payment_reference"] == "WIRE-7"
    await quiet(world)
    writes = await deal_writes(world, deal, before)
    # The invoice's new balance and the payment itself, each written once (an invoice webhook, when Zoho
    # sends one too, finds nothing left to do).
    assert sorted(causes(writes)) == ["invoice", "payment"], writes
    link = await world.stores.links.lookup_acc(MAPPING, "payment", "zohobooks", f"{payment}:{invoice}")
    assert link is not None and link.state == "linked"

    # The payment is deleted in Zoho Books: the deal's invoice figures go back.
    before = await last_audit_id(world)
    await world.zoho.remove("customerpayments", payment)

    async def reversed_() -> dict[str, Any] | None:
        fields = await world.hubspot.get("deals", deal)
        return fields if fields["syncd_amount_paid"] == Decimal(0) else None

    fields = await eventually(reversed_, "the amount paid to go back")
    assert fields["syncd_invoice_balance"] == Decimal("1200.00") and fields["syncd_invoice_status"] == "sent"
    await quiet(world)
    assert causes(await deal_writes(world, deal, before)) == ["invoice"]
    # The application's link is closed (the mapping's delete policy leaves the deal's last-payment fields).
    link = await world.stores.links.lookup_acc(MAPPING, "payment", "zohobooks", f"{payment}:{invoice}")
    assert link is not None and link.state == "deleted"
    assert daemon.scheduler.runs_completed == polls, "a poll ran: the changes did not come by webhook alone"
