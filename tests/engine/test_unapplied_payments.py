"""A payment taken off an invoice in Zoho Books (the payment stays, its amount now unused credit): its application
is gone from `invoicepayments`, and one polling pass, or the payment's webhook alone, takes the amount back on
the CRM, exactly once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.engine.daemon import Daemon
from tests.engine.conftest import World
from tests.engine.test_customers import settle
from tests.engine.test_daemon import eventually
from tests.engine.test_deals import pay, won_deal
from tests.engine.test_payment_webhooks import (
    MAPPING,
    causes,
    daemon,
    deal_writes,
    invoice_webhooks,
    invoiced_deal_under_daemon,
    last_audit_id,
    quiet,
)
from tests.engine.test_payments import SALESFORCE, invoice_of, payments_of, second_deal, won_opportunities

__all__ = ["daemon", "invoice_webhooks"]


async def unapply(world: World, invoice: str, payment: str) -> None:
    """Delete the payment's invoice payment on the invoice in Zoho Books, as a user would (the connector never
    does): found through the invoice's list of payments, removed by its `invoice_payment_id`."""
    zoho = world.zoho.connector
    assert isinstance(zoho, ZohoBooksConnector)
    http = await zoho._client()
    listed = (await http.call("GET", f"invoices/{invoice}/payments")).body["payments"]
    [row] = [r for r in listed if r["payment_id"] == payment]
    await http.call("DELETE", f"invoices/{invoice}/payments/{row['invoice_payment_id']}")


async def applications(world: World) -> list[tuple[str, str, Decimal]]:
    """Every application the connector reads from the start: (payment, invoice, amount applied)."""
    found = []
    async for page in world.zoho.connector.changes("invoicepayments", None, timedelta(0)):
        for r in page.records:
            found.append(
                (str(r.fields["payment_id"]), str(r.fields["invoice_id"]), Decimal(str(r.fields["amount_applied"])))
            )
    return sorted(found)


async def test_a_payment_taken_off_the_invoice_takes_the_amount_paid_back_once(world: World) -> None:
    _, deal = await won_deal(world)
    await settle(world)
    invoice = await invoice_of(world, deal)
    payment = await pay(world, "500", (invoice, "500"), reference="WIRE-9")
    await settle(world)
    fields = await world.hubspot.get("deals", deal)
    assert (fields["syncd_amount_paid"], fields["syncd_invoice_status"]) == (Decimal("500.00"), "partially_paid")

    await unapply(world, invoice, payment)
    # The application is gone, read in bulk or by id; the payment stays with its amount unused.
    assert await applications(world) == []
    assert await world.zoho.connector.get_many("invoicepayments", [f"{payment}:{invoice}"]) == {}
    kept = await world.zoho.get("customerpayments", payment)
    assert kept["amount"] == Decimal("500") and kept["unused_amount"] == Decimal("500")

    before = await last_audit_id(world)
    report = await world.reconciler().run_pass()
    assert not report.errors
    fields = await world.hubspot.get("deals", deal)
    assert fields["syncd_amount_paid"] == Decimal(0) and fields["syncd_invoice_balance"] == Decimal("1200.00")
    assert fields["syncd_invoice_status"] == "sent"
    # One write to the deal, from its invoice; the next pass has nothing left to write.
    assert causes(await deal_writes(world, deal, before)) == ["invoice"]
    writes = await world.writes()
    assert await settle(world) == 1
    assert await world.writes() == writes


async def test_taken_off_one_of_two_invoices_only_that_deal_goes_back(world: World) -> None:
    contact, first = await won_deal(world)
    second = await second_deal(world, contact, "300")
    await settle(world)
    one, two = await invoice_of(world, first), await invoice_of(world, second)
    payment = await pay(world, "1500", (one, "1200"), (two, "300"))
    await settle(world)

    await unapply(world, one, payment)
    assert await applications(world) == [(payment, two, Decimal("300"))]
    before = await last_audit_id(world)
    await world.reconciler().run_pass()
    fields = await world.hubspot.get("deals", first)
    assert (fields["syncd_amount_paid"], fields["syncd_invoice_balance"], fields["syncd_invoice_status"]) == (
        Decimal(0), Decimal("1200.00"), "sent")  # fmt: skip
    other = await world.hubspot.get("deals", second)
    assert (other["syncd_amount_paid"], other["syncd_invoice_status"]) == (Decimal("300.00"), "paid")
    assert causes(await deal_writes(world, first, before)) == ["invoice"]
    assert await deal_writes(world, second, before) == []
    assert await settle(world) == 1


async def test_salesforce_loses_the_payment_row_of_the_invoice_it_was_taken_off(world: World) -> None:
    _, (first, second) = await won_opportunities(world, "1200", "300")
    await settle(world, SALESFORCE)
    one, two = await invoice_of(world, first), await invoice_of(world, second)
    payment = await pay(world, "1500", (one, "1200"), (two, "300"))
    await settle(world, SALESFORCE)
    assert len(await payments_of(world)) == 2

    await unapply(world, one, payment)
    report = await world.reconciler(SALESFORCE).run_pass()
    # The mapping's delete policy removes the row of the vanished application, and only that one.
    assert len(report.of_kind("delete")) == 1
    [row] = await payments_of(world)
    assert (row["Opportunity__c"], row["Amount__c"]) == (second, Decimal("300.00"))
    fields = await world.salesforce.get("Opportunity", first)
    assert fields["Amount_Paid__c"] == Decimal(0) and fields["Invoice_Status__c"] == "sent"
    assert await settle(world, SALESFORCE) == 1
    assert await world.salesforce.count("Payment__c") == 2  # the deleted row is not made again


async def test_a_payment_taken_off_the_invoice_reaches_the_deal_by_webhook_alone(
    world: World, invoice_webhooks: bool, daemon: Daemon
) -> None:
    deal, invoice, polls = await invoiced_deal_under_daemon(world, daemon)
    payment = await pay(world, "500", (invoice, "500"))

    async def paid(amount: str) -> dict[str, Any] | None:
        fields = await world.hubspot.get("deals", deal)
        return fields if fields["syncd_amount_paid"] == Decimal(amount) else None

    await eventually(lambda: paid("500.00"), "the payment on the deal")
    await quiet(world)
    before = await last_audit_id(world)

    # Zoho sends only `customerpayment_updated` (its applications now empty), maybe `invoice_updated` too.
    await unapply(world, invoice, payment)
    fields = await eventually(lambda: paid("0"), "the amount paid to go back")
    assert fields["syncd_invoice_balance"] == Decimal("1200.00") and fields["syncd_invoice_status"] == "sent"
    await quiet(world)
    assert causes(await deal_writes(world, deal, before)) == ["invoice"]
    link = await world.stores.links.lookup_acc(MAPPING, "payment", "zohobooks", f"{payment}:{invoice}")
    assert link is not None and link.state == "deleted"
    assert daemon.scheduler.runs_completed == polls, "a poll ran: the change did not come by webhook alone"
