"""Payments on the sandbox: full, partial, several per invoice, one across several invoices, deleted and
refunded, each reflected on the CRM exactly once (HubSpot deal properties, Salesforce Payment__c rows)."""

from __future__ import annotations

from decimal import Decimal

from syncd.connectors.zohobooks import ZohoBooksConnector
from tests.engine.conftest import World
from tests.engine.test_customers import ann, settle
from tests.engine.test_deals import TODAY, pay, won_deal

SALESFORCE = "salesforce-zohobooks"


async def refund(world: World, payment_id: str, amount: str) -> None:
    """Pay back part of a payment's unused amount in Zoho Books (the connector never refunds)."""
    zoho = world.zoho.connector
    assert isinstance(zoho, ZohoBooksConnector)
    http = await zoho._client()
    await http.call(
        "POST",
        f"customerpayments/{payment_id}/refunds",
        body={"date": TODAY.isoformat(), "amount": float(amount), "refund_mode": "banktransfer"},
    )


async def second_deal(world: World, contact: str, amount: str) -> str:
    """Another won deal of the same HubSpot contact."""
    return await world.hubspot.put(
        "deals",
        {"dealname": "Second deal", "amount": Decimal(amount), "dealstage": "closedwon", "closedate": TODAY,
         "associations.contacts": contact},
    )  # fmt: skip


async def invoice_of(world: World, deal_or_opportunity: str) -> str:
    """The Zoho invoice linked to a deal/opportunity."""
    for mapping in ("hubspot-zohobooks", SALESFORCE):
        for system in ("hubspot", "salesforce"):
            link = await world.stores.links.lookup_crm(mapping, "invoice", system, deal_or_opportunity)
            if link is not None and link.acc_id is not None:
                return link.acc_id
    raise AssertionError(f"{deal_or_opportunity} has no invoice")


async def test_one_payment_across_two_invoices_reaches_each_deal_once(world: World) -> None:
    contact, first = await won_deal(world)
    second = await second_deal(world, contact, "300")
    await settle(world)
    await pay(world, "1500", (await invoice_of(world, first), "1200"), (await invoice_of(world, second), "300"))
    await world.reconciler().run_pass()
    one, two = await world.hubspot.get("deals", first), await world.hubspot.get("deals", second)
    assert (one["syncd_amount_paid"], one["syncd_invoice_balance"], one["syncd_invoice_status"]) == (
        Decimal("1200.00"), Decimal(0), "paid")
    assert (two["syncd_amount_paid"], two["syncd_invoice_balance"], two["syncd_invoice_status"]) == (
        Decimal("300.00"), Decimal(0), "paid")
    # Each deal shows what the payment paid on its own invoice.
    assert one["syncd_last_payment_amount"] == Decimal("1200.00")
    assert two["syncd_last_payment_amount"] == Decimal("300.00")
    assert one["syncd_last_payment_reference"] == two["syncd_last_payment_reference"] == "P-1"
    writes = await world.writes()
    assert await settle(world) == 1
    assert await world.writes() == writes  # exactly once


async def test_several_partial_payments_add_up_and_the_last_one_shows(world: World) -> None:
    _, deal = await won_deal(world)
    await settle(world)
    invoice = await invoice_of(world, deal)
    await pay(world, "200", (invoice, "200"), reference="P-1")
    await world.reconciler().run_pass()
    assert (await world.hubspot.get("deals", deal))["syncd_invoice_status"] == "partially_paid"
    await pay(world, "1000", (invoice, "1000"), reference="P-2")
    await world.reconciler().run_pass()
    fields = await world.hubspot.get("deals", deal)
    assert fields["syncd_amount_paid"] == Decimal("1200.00") and fields["syncd_invoice_balance"] == Decimal(0)
    assert fields["syncd_invoice_status"] == "paid"
    assert fields["syncd_last_payment_reference"] == "P-2"
    assert fields["syncd_last_payment_amount"] == Decimal("1000.00")
    writes = await world.writes()
    assert await settle(world) == 1
    assert await world.writes() == writes


async def test_a_deleted_payment_takes_the_amount_paid_back(world: World) -> None:
    _, deal = await won_deal(world)
    await settle(world)
    payment = await pay(world, "500", (await invoice_of(world, deal), "500"))
    await settle(world)
    assert (await world.hubspot.get("deals", deal))["syncd_amount_paid"] == Decimal("500.00")
    await world.zoho.remove("customerpayments", payment)
    await world.reconciler().run_pass()
    fields = await world.hubspot.get("deals", deal)
    assert fields["syncd_amount_paid"] == Decimal(0) and fields["syncd_invoice_balance"] == Decimal("1200.00")
    assert fields["syncd_invoice_status"] == "sent"
    assert await settle(world) == 1


async def test_a_refund_is_reflected_on_the_deal(world: World) -> None:
    _, deal = await won_deal(world)
    await settle(world)
    # 600 received, 500 of it applied: 100 is unused and may be refunded.
    payment = await pay(world, "600", (await invoice_of(world, deal), "500"))
    await settle(world)
    await refund(world, payment, "100")
    await world.reconciler().run_pass()
    fields = await world.hubspot.get("deals", deal)
    assert fields["syncd_last_payment_refunded"] == Decimal("100.00")
    assert fields["syncd_amount_paid"] == Decimal("500.00")
    assert await settle(world) == 1


# --- Salesforce: one Payment__c per application, linked to the opportunity whose invoice it pays ---------


async def won_opportunities(world: World, *amounts: str) -> tuple[str, list[str]]:
    """A Salesforce contact (at an account) and one won opportunity per amount with that primary contact."""
    account = await world.salesforce.put("Account", {"Name": "Acme Corp", "BillingCity": "Boston"})
    contact = await world.salesforce.put(
        "Contact", {"FirstName": "Ann", "LastName": "Lee", "Email": "ann@example.com", "AccountId": account}
    )
    opportunities = [
        await world.salesforce.put(
            "Opportunity",
            {"Name": f"Deal {n}", "AccountId": account, "ContactId": contact, "StageName": "Closed Won",
             "CloseDate": TODAY, "Amount": Decimal(amount)},
        )
        for n, amount in enumerate(amounts, 1)
    ]
    return contact, opportunities


async def payments_of(world: World) -> list[dict[str, object]]:
    """Live Payment__c rows."""
    return sorted(await world.salesforce.all("Payment__c"), key=lambda p: str(p["Opportunity__c"]))


async def test_a_salesforce_opportunity_invoice_and_a_payment_across_two_invoices(world: World) -> None:
    _, (first, second) = await won_opportunities(world, "1200", "300")
    assert await settle(world, SALESFORCE) <= 3
    [customer] = await world.zoho.all("contacts")
    assert customer["contact_name"] == "Ann Lee" and customer["primary_contact.email"] == "ann@example.com"
    invoices = {o: await invoice_of(world, o) for o in (first, second)}
    await pay(world, "1500", (invoices[first], "1200"), (invoices[second], "300"))
    await world.reconciler(SALESFORCE).run_pass()
    rows = await payments_of(world)
    assert sorted((str(r["Opportunity__c"]), r["Amount__c"]) for r in rows) == sorted(
        [(first, Decimal("1200.00")), (second, Decimal("300.00"))]
    )
    assert all(r["Reference__c"] == "P-1" and r["Name"] == "Zoho Books payment P-1" for r in rows)
    one, two = await world.salesforce.get("Opportunity", first), await world.salesforce.get("Opportunity", second)
    assert (one["Amount_Paid__c"], one["Invoice_Balance__c"], one["Invoice_Status__c"]) == (
        Decimal("1200.00"), Decimal(0), "paid")
    assert (two["Amount_Paid__c"], two["Invoice_Status__c"]) == (Decimal("300.00"), "paid")
    writes = await world.writes()
    assert await settle(world, SALESFORCE) == 1
    assert await world.writes() == writes and await world.salesforce.count("Payment__c") == 2


async def test_a_deleted_payment_deletes_its_salesforce_payments_by_policy(world: World) -> None:
    _, (first, second) = await won_opportunities(world, "1200", "300")
    await settle(world, SALESFORCE)
    payment = await pay(
        world, "1500", (await invoice_of(world, first), "1200"), (await invoice_of(world, second), "300")
    )
    await settle(world, SALESFORCE)
    assert len(await payments_of(world)) == 2
    await world.zoho.remove("customerpayments", payment)
    report = await world.reconciler(SALESFORCE).run_pass()
    assert len(report.of_kind("delete")) == 2
    assert await payments_of(world) == []
    for opportunity, balance in ((first, "1200.00"), (second, "300.00")):
        fields = await world.salesforce.get("Opportunity", opportunity)
        assert fields["Amount_Paid__c"] == Decimal(0) and fields["Invoice_Balance__c"] == Decimal(balance)
    assert await settle(world, SALESFORCE) == 1
    assert await world.salesforce.count("Payment__c") == 2  # deleted, never created again


async def test_a_refund_updates_the_salesforce_payment(world: World) -> None:
    _, (first,) = await won_opportunities(world, "1200")
    await settle(world, SALESFORCE)
    payment = await pay(world, "700", (await invoice_of(world, first), "500"))
    await settle(world, SALESFORCE)
    await refund(world, payment, "200")
    await world.reconciler(SALESFORCE).run_pass()
    [row] = await payments_of(world)
    assert row["Amount_Refunded__c"] == Decimal("200.00") and row["Amount__c"] == Decimal("500.00")
    assert await settle(world, SALESFORCE) == 1


async def test_hubspot_and_salesforce_payments_reach_their_own_crm_only(world: World) -> None:
    """With both pair files active, a payment on a HubSpot deal's invoice never becomes a Payment__c."""
    _, deal = await won_deal(world)
    both = ("hubspot-zohobooks", SALESFORCE)
    assert await settle(world, *both) <= 3
    await pay(world, "500", (await invoice_of(world, deal), "500"))
    assert await settle(world, *both) <= 3
    assert (await world.hubspot.get("deals", deal))["syncd_amount_paid"] == Decimal("500.00")
    assert await world.salesforce.count("Payment__c") == 0 and await world.salesforce.count("Opportunity") == 0
    assert ann()["email"] == (await world.salesforce.all("Contact"))[0]["Email"]
