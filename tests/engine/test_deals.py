"""Won deals become one invoice; invoice status, balance and payments come back; lost deals void it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

from syncd.connectors.base import ChangeEvent, FieldValue
from syncd.connectors.hubspot import HubSpotConnector
from syncd.engine.plan import SyncReport
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from tests.engine.conftest import World
from tests.engine.test_customers import ann, next_second, settle

# Deals close today, so that their invoices are not overdue the moment they exist.
TODAY = datetime.now(UTC).date()

# An operator who reviews invoices before they go out: won deals become draft invoices.
DRAFTS = (
    (SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml")
    .read_text()
    .replace('map = { closedwon = "sent", contractsent = "draft" }', 'map = { closedwon = "draft" }')
)


async def hubspot_api(world: World, method: str, path: str, body: Any = None) -> None:
    """Call HubSpot's API as a user's other tool would (for what our connector never does itself)."""
    hub = world.hubspot.connector
    assert isinstance(hub, HubSpotConnector)
    await hub.transport.call(
        f"{method} {path}",
        lambda a, t: a.objects_basic.api_client.call_api(
            path, method, header_params={"Content-Type": "application/json"}, body=body,
            auth_settings=["oauth2"], response_types_map={}, _preload_content=False, _request_timeout=t,
        ),
    )


async def won_deal(
    world: World, lines: list[dict[str, FieldValue]] | None = None, **extra: FieldValue
) -> tuple[str, str]:
    """A HubSpot contact with a won deal of 1200 (and the given line items, if any)."""
    contact = await world.hubspot.put("contacts", ann())
    deal = await world.hubspot.put(
        "deals",
        {
            "dealname": "Big deal",
            "amount": Decimal("1200"),
            "dealstage": "closedwon",
            "closedate": TODAY,
            "associations.contacts": contact,
            **extra,
        },
    )
    for line in lines or ():
        line_id = await world.hubspot.put("line_items", line)
        await hubspot_api(world, "PUT", f"/crm/v4/objects/deals/{deal}/associations/default/line_items/{line_id}")
    return contact, deal


async def sent_invoice_count(world: World) -> int:
    """How many times syncd marked an invoice sent."""
    requests = (await world.zoho.stats())["requests"]
    return sum(n for key, n in requests.items() if key.startswith("POST") and key.endswith("/status/sent"))


async def test_a_won_deal_gets_exactly_one_invoice_for_its_synced_customer(world: World) -> None:
    _, deal = await won_deal(world)
    report = await world.reconciler().run_pass()
    assert not report.errors
    [customer] = await world.zoho.all("contacts")
    [invoice] = await world.zoho.all("invoices")
    assert invoice["customer_id"] == customer["id"]
    assert [(li["name"], li["quantity"], li["rate"]) for li in invoice["line_items"]] == [
        ("Big deal", Decimal(1), Decimal("1200.00"))
    ]
    assert invoice["reference_number"].startswith("syncd-") and invoice["date"] == TODAY
    # A draft for a person to review and send: nothing goes out (or falls overdue) on its own.
    assert invoice["status"] == "draft" and await sent_invoice_count(world) == 0
    await world.reconciler().run_pass()
    fields = await world.hubspot.get("deals", deal)
    assert fields["syncd_invoice_number"] == invoice["invoice_number"] and fields["syncd_invoice_status"] == "draft"
    assert fields["syncd_invoice_balance"] == Decimal("1200.00") and fields["syncd_amount_paid"] == Decimal(0)
    assert fields["syncd_invoice_total"] == Decimal("1200.00")
    assert await settle(world) == 1
    assert await world.zoho.count("invoices") == 1 and await world.zoho.count("contacts") == 1


async def test_a_mapping_that_says_mark_sent_sends_the_new_invoice(world: World, tmp_path: Path) -> None:
    path = tmp_path / "hubspot-zohobooks.toml"
    shipped = (SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
    path.write_text(shipped.replace("mark_sent = false", "mark_sent = true"))
    _, deal = await won_deal(world)
    assert not (await world.reconciler(path).run_pass()).errors
    [invoice] = await world.zoho.all("invoices")
    assert invoice["status"] == "sent" and await sent_invoice_count(world) == 1  # marked sent by its action
    await world.reconciler(path).run_pass()
    assert (await world.hubspot.get("deals", deal))["syncd_invoice_status"] == "sent"
    assert await settle(world, path) == 1 and await sent_invoice_count(world) == 1


async def test_line_items_become_invoice_lines(world: World) -> None:
    lines: list[dict[str, FieldValue]] = [
        {"name": "Seats", "quantity": Decimal(3), "price": Decimal("100")},
        {"name": "Setup", "quantity": Decimal(1), "price": Decimal("50.5")},
    ]
    await won_deal(world, lines=lines)
    await world.reconciler().run_pass()
    [invoice] = await world.zoho.all("invoices")
    assert sorted((li["name"], li["quantity"], li["rate"]) for li in invoice["line_items"]) == [
        ("Seats", Decimal(3), Decimal("100.00")),
        ("Setup", Decimal(1), Decimal("50.50")),
    ]
    assert invoice["total"] == Decimal("350.50")
    assert await settle(world) == 1


async def test_edits_update_a_draft_invoice_but_conflict_once_it_is_sent(world: World, tmp_path: Path) -> None:
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text(DRAFTS)
    _, deal = await won_deal(world)
    await world.reconciler(path).run_pass()
    [invoice] = await world.zoho.all("invoices")
    invoice_id = invoice["id"]
    assert invoice["status"] == "draft"
    await settle(world, path)
    await world.hubspot.update("deals", deal, {"amount": Decimal("1500")})
    await world.reconciler(path).run_pass()
    assert (await world.zoho.get("invoices", invoice_id))["line_items"][0]["rate"] == Decimal("1500.00")
    await world.zoho.connector.act("invoices", invoice_id, "sent")  # the accountant sends it
    await settle(world, path)
    await world.hubspot.update("deals", deal, {"amount": Decimal("1700")})
    report = await world.reconciler(path).run_pass()
    [conflict] = report.of_kind("conflict")
    assert conflict.changes[0].field == "line_items" and "sent" in conflict.reason
    assert (await world.zoho.get("invoices", invoice_id))["line_items"][0]["rate"] == Decimal("1500.00")
    assert [c.field for c in await world.stores.conflicts.list()] == ["line_items"]


async def quiet_down(world: World, path: Path, other: str, amount: int) -> None:
    """Edit another won deal in a later second and poll with no overlap until settled, so that every cursor
    (Zoho Books stamps to the second) passes the first deal and its invoice: from then on they are read
    again only if something says they changed."""
    await next_second(datetime.now(UTC))
    await world.hubspot.update("deals", other, {"amount": Decimal(amount)})
    reconciler = world.reconciler(path, overlap=timedelta(0))
    for _ in range(5):
        report = await reconciler.run_pass()
        assert not report.errors
        if report.settled:
            return
    raise AssertionError("never settled")


async def test_line_item_edits_update_a_draft_invoice_but_conflict_once_it_is_sent(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text(DRAFTS)
    lines: list[dict[str, FieldValue]] = [{"name": "Seats", "quantity": Decimal(3), "price": Decimal("100")}]
    contact, deal = await won_deal(world, lines=lines)
    other = await world.hubspot.put("deals", {"dealname": "Other", "amount": Decimal(10), "dealstage": "closedwon",
                                              "closedate": TODAY, "associations.contacts": contact})
    await settle(world, path)
    number = (await world.hubspot.get("deals", deal))["syncd_invoice_number"]
    [invoice] = [i for i in await world.zoho.all("invoices") if i["invoice_number"] == number]
    assert invoice["status"] == "draft"
    [line_id] = [str(line["id"]) for line in (await world.hubspot.get("deals", deal))["line_items"]]
    await quiet_down(world, path, other, 20)
    # Only the line item changes in HubSpot; the deal keeps its modified date.
    await world.hubspot.update("line_items", line_id, {"quantity": Decimal(4)})
    await world.reconciler(path, overlap=timedelta(0)).run_pass()
    draft = await world.zoho.get("invoices", invoice["id"])
    assert [(li["name"], li["quantity"], li["rate"]) for li in draft["line_items"]] == [
        ("Seats", Decimal(4), Decimal("100.00"))
    ]
    assert draft["total"] == Decimal("400.00")
    await world.zoho.connector.act("invoices", invoice["id"], "sent")  # the accountant sends it
    await settle(world, path)
    await quiet_down(world, path, other, 30)
    await world.hubspot.update("line_items", line_id, {"quantity": Decimal(6)})
    report = await world.reconciler(path, overlap=timedelta(0)).run_pass()
    [conflict] = report.of_kind("conflict")
    assert conflict.changes[0].field == "line_items" and "sent" in conflict.reason
    assert (await world.zoho.get("invoices", invoice["id"]))["line_items"][0]["quantity"] == Decimal(4)
    assert [c.field for c in await world.stores.conflicts.list()] == ["line_items"]


async def pay(world: World, amount: str, *applied: tuple[str, str], reference: str = "P-1") -> str:
    """A customer payment booked in Zoho Books against invoices (invoice id, amount applied)."""
    [customer] = await world.zoho.all("contacts")
    return await world.zoho.put(
        "customerpayments",
        {
            "amount": Decimal(amount),
            "date": TODAY,
            "payment_mode": "banktransfer",
            "reference_number": reference,
            "customer_id": customer["id"],
            "invoices": [{"invoice_id": i, "amount_applied": Decimal(a)} for i, a in applied],
        },
    )


async def test_payments_are_reflected_on_the_deal_once(world: World) -> None:
    _, deal = await won_deal(world)
    await world.reconciler().run_pass()
    [invoice] = await world.zoho.all("invoices")
    await settle(world)
    await pay(world, "500", (invoice["id"], "500"))
    await world.reconciler().run_pass()
    fields = await world.hubspot.get("deals", deal)
    assert fields["syncd_amount_paid"] == Decimal("500.00") and fields["syncd_invoice_balance"] == Decimal("700.00")
    assert fields["syncd_invoice_status"] == "partially_paid"
    assert fields["syncd_last_payment_amount"] == Decimal("500.00")
    assert fields["syncd_last_payment_reference"] == "P-1"
    writes = await world.writes()
    assert await settle(world) == 1
    assert await world.writes() == writes  # reflected exactly once


async def test_a_deal_lost_after_invoicing_voids_its_invoice(world: World) -> None:
    _, deal = await won_deal(world)
    await world.reconciler().run_pass()
    [invoice] = await world.zoho.all("invoices")
    await settle(world)
    await world.hubspot.update("deals", deal, {"dealstage": "closedlost"})
    report = await world.reconciler().run_pass()
    assert [a.kind for a in report.actions if a.writes] == ["void", "update"]
    assert (await world.zoho.get("invoices", invoice["id"]))["status"] == "void"
    # The voided status comes back onto the deal.
    assert (await world.hubspot.get("deals", deal))["syncd_invoice_status"] == "void"
    assert await settle(world) == 1
    assert await world.zoho.count("invoices") == 1


async def test_a_lost_deal_never_gets_an_invoice(world: World) -> None:
    await won_deal(world, dealstage="closedlost")
    report = await world.reconciler().run_pass()
    assert await world.zoho.count("invoices") == 0
    assert any(a.reason == "filtered out by the mapping" for a in report.of_kind("skip"))


async def move_deal(world: World, deal: str, old_contact: str, new_contact: str) -> None:
    """Associate a deal with another contact instead (HubSpot keeps several; the connector reads the first)."""
    await hubspot_api(world, "DELETE", f"/crm/v4/objects/deals/{deal}/associations/contacts/{old_contact}")
    await hubspot_api(world, "PUT", f"/crm/v4/objects/deals/{deal}/associations/default/contacts/{new_contact}")


async def announce_move(world: World, deal: str, path: Path | None = None) -> SyncReport:
    """What the daemon does with HubSpot's `deal.associationChange` webhook: an association change leaves the
    deal's modified date alone, so polling (which trusts that date) does not see it; the event does."""
    event = ChangeEvent(f"assoc-{uuid4().hex[:8]}", "deals", deal, "updated", datetime.now(UTC))
    reconciler = world.reconciler(path) if path is not None else world.reconciler()
    return await reconciler.sync_records("hubspot-zohobooks", "hubspot", "deals", [event])


async def test_a_deal_moved_to_another_contact_moves_its_draft_invoice(world: World, tmp_path: Path) -> None:
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text(DRAFTS)
    contact, deal = await won_deal(world)
    await settle(world, path)
    [invoice] = await world.zoho.all("invoices")
    bob = await world.hubspot.put("contacts", ann(email="bob@example.com", firstname="Bob", lastname="Ray"))
    await move_deal(world, deal, contact, bob)
    report = await announce_move(world, deal, path)
    assert not report.errors
    bob_customer = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", bob)
    assert bob_customer is not None and bob_customer.acc_id is not None  # synced first, as a dependency
    assert (await world.zoho.get("invoices", invoice["id"]))["customer_id"] == bob_customer.acc_id
    assert await settle(world, path) == 1
    # Once the invoice is sent, moving the deal again is a conflict for a person, not a silent rewrite.
    await world.zoho.connector.act("invoices", invoice["id"], "sent")
    await settle(world, path)
    await move_deal(world, deal, bob, contact)
    report = await announce_move(world, deal, path)
    [conflict] = report.of_kind("conflict")
    assert conflict.changes[0].field == "customer" and "sent" in conflict.reason
    assert (await world.zoho.get("invoices", invoice["id"]))["customer_id"] == bob_customer.acc_id
    assert await world.zoho.count("invoices") == 1
