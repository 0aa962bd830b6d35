"""A deal moved to another contact: carried to its invoice three-way (only a move made in the CRM), raised as
a conflict once the invoice is sent, and applied once, as resolved, without being raised again."""

from __future__ import annotations

from pathlib import Path

from syncd.engine.snapshot import decode_value
from syncd.engine.vanished import reference_mark
from syncd.store import Conflict
from tests.engine.conftest import World
from tests.engine.test_customers import ann, settle
from tests.engine.test_deals import DRAFTS, announce_move, move_deal, won_deal

MAPPING = "hubspot-zohobooks"


async def contact(world: World, first: str) -> tuple[str, str]:
    """A HubSpot contact synced to a Zoho Books customer: (contact id, customer id)."""
    contact_id = await world.hubspot.put(
        "contacts", ann(email=f"{first.lower()}@example.com", firstname=first, lastname="Ray")
    )
    await settle(world)
    link = await world.stores.links.lookup_crm(MAPPING, "customer", "hubspot", contact_id)
    assert link is not None and link.acc_id is not None
    return contact_id, link.acc_id


async def customer_of(world: World, invoice_id: str) -> str:
    """The customer an invoice is made out to, as Zoho Books says."""
    return str((await world.zoho.get("invoices", invoice_id))["customer_id"])


async def sent_invoice_moved(world: World) -> tuple[str, str, str, Conflict]:
    """A won deal invoiced (a draft, which the accountant sends), then moved from Ann to Bob in HubSpot:
    (invoice id, Ann's customer id, Bob's customer id, the conflict the move raised)."""
    ann_contact, deal = await won_deal(world)
    await settle(world)
    [draft] = await world.zoho.all("invoices")
    await world.zoho.connector.act("invoices", draft["id"], "sent")
    await settle(world)
    [invoice] = await world.zoho.all("invoices")
    assert invoice["status"] == "sent"
    bob, bob_customer = await contact(world, "Bob")
    await move_deal(world, deal, ann_contact, bob)
    report = await announce_move(world, deal)
    assert not report.errors
    [raised] = report.of_kind("conflict")
    assert raised.changes[0].field == "customer" and "sent" in raised.reason
    [conflict] = await world.stores.conflicts.list()
    assert decode_value(conflict.crm_value) == bob_customer
    assert decode_value(conflict.acc_value) == invoice["customer_id"]
    return invoice["id"], invoice["customer_id"], bob_customer, conflict


async def test_resolving_a_moved_deal_for_the_crm_moves_the_sent_invoice(world: World) -> None:
    invoice_id, _, bob_customer, conflict = await sent_invoice_moved(world)
    await world.stores.conflicts.resolve(conflict.id, "crm", by="test")
    report = await world.reconciler().run_pass()
    assert not report.errors and not report.of_kind("conflict")
    assert await customer_of(world, invoice_id) == bob_customer  # written although the invoice is sent
    assert (await world.stores.conflicts.get(conflict.id)).applied_at is not None
    assert await settle(world) == 1
    assert await world.stores.conflicts.list() == []
    assert await world.zoho.count("invoices") == 1


async def test_resolving_a_moved_deal_for_accounting_keeps_the_invoice_and_is_not_raised_again(
    world: World,
) -> None:
    invoice_id, ann_customer, _, conflict = await sent_invoice_moved(world)
    await world.stores.conflicts.resolve(conflict.id, "accounting", by="test")
    writes = await world.zoho.writes()
    report = await world.reconciler().run_pass()
    assert not report.errors and not report.of_kind("conflict")
    assert (await world.stores.conflicts.get(conflict.id)).applied_at is not None
    for _ in range(2):  # later passes read the deal again and see nothing new
        report = await world.reconciler().run_pass()
        assert not report.errors and not report.of_kind("conflict") and report.settled
    assert await world.stores.conflicts.list() == []
    assert await customer_of(world, invoice_id) == ann_customer
    assert await world.zoho.writes() == writes
    # The decision covered that move only: moving the deal once more is a new question for a person.
    [deal] = await world.hubspot.all("deals")
    cy, _ = await contact(world, "Cy")
    bob = deal["associations.contacts"]
    await move_deal(world, deal["id"], bob, cy)
    report = await announce_move(world, deal["id"])
    [raised] = report.of_kind("conflict")
    assert raised.changes[0].field == "customer"
    assert [c.field for c in await world.stores.conflicts.list()] == ["customer"]


async def test_a_customer_changed_on_the_invoice_in_zoho_alone_is_not_overwritten(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text(DRAFTS)
    ann_contact, deal = await won_deal(world)
    await settle(world, path)
    [invoice] = await world.zoho.all("invoices")
    assert invoice["status"] == "draft"  # editable: the old two-way check would have moved it back
    _, bob_customer = await contact(world, "Bob")
    await world.zoho.update("invoices", invoice["id"], {"customer_id": bob_customer})  # the accountant's edit
    assert await settle(world, path) == 1  # read back, nothing to write
    assert await customer_of(world, invoice["id"]) == bob_customer
    assert (await world.hubspot.get("deals", deal))["associations.contacts"] == ann_contact
    assert await world.stores.conflicts.list() == []
    # A move made in HubSpot afterwards is still carried.
    cy, cy_customer = await contact(world, "Cy")
    await move_deal(world, deal, ann_contact, cy)
    report = await announce_move(world, deal, path)
    assert not report.errors and not report.of_kind("conflict")
    assert await customer_of(world, invoice["id"]) == cy_customer
    assert await settle(world, path) == 1


async def test_a_link_without_reference_marks_still_carries_a_move(world: World, tmp_path: Path) -> None:
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text(DRAFTS)
    ann_contact, deal = await won_deal(world)
    await settle(world, path)
    [invoice] = await world.zoho.all("invoices")
    link = await world.stores.links.lookup_crm(MAPPING, "invoice", "hubspot", deal)
    assert link is not None and reference_mark("crm", "customer") in link.base
    # A link made before the base kept what each side refers to.
    unmarked = {k: v for k, v in link.base.items() if not k.startswith("@")}
    await world.stores.links.update_base(link.id, unmarked, link.version)
    bob, bob_customer = await contact(world, "Bob")
    await move_deal(world, deal, ann_contact, bob)
    report = await announce_move(world, deal, path)
    assert not report.errors and not report.of_kind("conflict")
    assert await customer_of(world, invoice["id"]) == bob_customer
    assert await settle(world, path) == 1
    link = await world.stores.links.get(link.id)
    assert link.base[reference_mark("crm", "customer")] == bob


async def test_a_resolution_naming_a_customer_zoho_does_not_have_is_refused_and_reopened(
    world: World,
) -> None:
    invoice_id, ann_customer, bob_customer, conflict = await sent_invoice_moved(world)
    _, cy_customer = await contact(world, "Cy")
    await world.stores.conflicts.resolve(conflict.id, "value", "no-such-customer", by="test")
    report = await world.reconciler().run_pass()
    [error] = report.errors
    assert f"conflict {conflict.id}" in error and "no-such-customer" in error
    assert await customer_of(world, invoice_id) == ann_customer  # nothing written
    # The same conflict is open again for a person, without the refused decision; said once, not every pass.
    [again] = await world.stores.conflicts.list()
    assert (again.id, again.status, again.resolution, again.applied_at) == (conflict.id, "open", None, None)
    assert decode_value(again.crm_value) == bob_customer
    assert not (await world.reconciler().run_pass()).errors
    # A value naming a customer Zoho has is applied (a third one: the operator's call).
    await world.stores.conflicts.resolve(again.id, "value", cy_customer, by="test")
    report = await world.reconciler().run_pass()
    assert not report.errors and not report.of_kind("conflict")
    assert await customer_of(world, invoice_id) == cy_customer
    assert (await world.stores.conflicts.get(conflict.id)).applied_at is not None
    assert await settle(world) == 1
    assert await world.stores.conflicts.list() == []
