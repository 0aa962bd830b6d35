"""No lost update: an edit landing on a target between syncd's read and its write is compared three-way, never
silently overwritten, and the audit row's `before` is what the target held (HubSpot ↔ Zoho Books, sandbox)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from syncd.connectors.base import FieldValue
from syncd.engine.context import PipelineHooks
from syncd.engine.reconcile import Reconciler
from tests.engine.conftest import World
from tests.engine.test_customers import ann, next_second, settle

ZOHO_CONTACT = "GET /books/v3/contacts/{contact_id}"


class EditBeforeWrite:
    """A person editing a Zoho customer after syncd read it and before syncd writes it (once)."""

    def __init__(self, world: World, fields: Mapping[str, FieldValue], *, after: datetime | None = None) -> None:
        self.world = world
        self.fields = fields
        self.after = after  # an edit the person's must be later than (Zoho Books stamps whole seconds)
        self.done = False

    async def __call__(self, targets: Mapping[str, Sequence[str]]) -> None:
        """The hook: edit the first Zoho customer the batch is about to update."""
        if self.done or not targets.get("zohobooks"):
            return
        self.done = True
        if self.after is not None:
            await next_second(self.after)
        await self.world.zoho.update("contacts", targets["zohobooks"][0], self.fields)


async def linked_ann(world: World) -> tuple[str, str]:
    """Ann in HubSpot, created in Zoho Books and linked; her ids there."""
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world)
    [customer] = await world.zoho.all("contacts")
    return hub_id, str(customer["id"])


async def zoho_reads(world: World) -> int:
    """Single-customer reads Zoho Books has served."""
    return int((await world.zoho.stats())["requests"].get(ZOHO_CONTACT, 0))


def checking(world: World, edit: EditBeforeWrite) -> Reconciler:
    """A reconciler with the edit injected; every target is checked before its write, as when the planning read
    is older than the default bound (the hook stands in for the time a batch of writes takes)."""
    return world.reconciler(hooks=PipelineHooks(before_write=edit), recheck_after=timedelta(0))


async def test_a_manual_phone_edited_on_zoho_while_syncd_writes_becomes_a_conflict(world: World) -> None:
    # The finding: a phone changed on the HubSpot contact and, differently, on the Zoho customer after
    # syncd read it; the phone's rule is `manual`, yet Zoho was overwritten with a stale audit `before`.
    hub_id, zoho_id = await linked_ann(world)
    await world.hubspot.update("contacts", hub_id, {"phone": "+1 415 555 0111", "firstname": "Anna"})
    edit = EditBeforeWrite(world, {"primary_contact.phone": "+1 415 555 0122"})
    reads = await zoho_reads(world)
    report = await checking(world, edit).run_pass()
    assert edit.done and not report.errors
    # Neither edit is lost: the phone is parked for a person with both values; the other field still syncs.
    zoho = await world.zoho.get("contacts", zoho_id)
    assert zoho["primary_contact.phone"] == "+1 415 555 0122"
    assert zoho["primary_contact.first_name"] == "Anna"
    assert (await world.hubspot.get("contacts", hub_id))["phone"] == "+1 415 555 0111"
    [conflict] = await world.stores.conflicts.list("open")
    assert (conflict.field, conflict.crm_value, conflict.acc_value) == ("phone", "+14155550111", "+14155550122")
    [reported] = report.of_kind("conflict")
    assert reported.changes[0].field == "phone"
    [update] = report.of_kind("update")
    assert [c.field for c in update.changes] == ["first_name"]
    # The audit row says what Zoho really held before the write (the phone is not among what was written).
    [row] = [e for e in await world.stores.audit.list(system="zohobooks") if e.fields_before]
    assert row.fields_before == {"primary_contact.first_name": "Ann"}
    assert row.fields_after == {"primary_contact.first_name": "Anna"}
    # The check cost one read of the customer: syncd read it twice (the planning read and the check; its write
    # builds the contact persons from the check's read). The hook's edit goes through the same connector within
    # the second, so it stands on the planning read; this test's own read is the last.
    assert await zoho_reads(world) - reads == 2 + 1
    assert await settle(world) == 1


async def test_a_rule_field_edited_while_syncd_writes_is_decided_by_its_rule_and_audited(world: World) -> None:
    # city's rule is `accounting` and last_name's `latest`: Zoho's edits, landing after syncd read the customer
    # (and in a later second than HubSpot's), win; what HubSpot loses by those rules is its audit row's `before`.
    hub_id, zoho_id = await linked_ann(world)
    await world.hubspot.update("contacts", hub_id, {"city": "Hubtown", "lastname": "Hub"})
    edited = (await world.hubspot.connector.get_many("contacts", [hub_id]))[hub_id].modified_at
    edit = EditBeforeWrite(
        world, {"billing_address.city": "Zedville", "primary_contact.last_name": "Zed"}, after=edited
    )
    await checking(world, edit).run_pass()
    assert edit.done
    hub, zoho = await world.hubspot.get("contacts", hub_id), await world.zoho.get("contacts", zoho_id)
    assert hub["city"] == zoho["billing_address.city"] == "Zedville"
    assert hub["lastname"] == zoho["primary_contact.last_name"] == "Zed"
    assert [e for e in await world.stores.audit.list(system="zohobooks") if e.fields_before] == []
    [back] = [e for e in await world.stores.audit.list(system="hubspot") if e.fields_before]
    assert back.fields_before == {"city": "Hubtown", "lastname": "Hub"}
    assert back.fields_after == {"city": "Zedville", "lastname": "Zed"}
    assert not await world.stores.conflicts.list("open")
    assert await settle(world) == 1


async def test_a_fresh_planning_read_is_written_without_reading_again(world: World) -> None:
    # Within the bound (here an hour, so that a slow machine cannot make the read look old), a target read in
    # the same batch is trusted: a one-sided edit costs the planning read and the write, as without the check
    # (the connector builds the contact persons from that read, made a moment before).
    hub_id, zoho_id = await linked_ann(world)
    await world.hubspot.update("contacts", hub_id, {"phone": "+1 415 555 0111"})
    reads = await zoho_reads(world)
    await world.reconciler(recheck_after=timedelta(hours=1)).run_pass()
    assert (await world.zoho.get("contacts", zoho_id))["primary_contact.phone"] == "+14155550111"
    assert await zoho_reads(world) - reads == 1 + 1  # the last one is this test's own read above
