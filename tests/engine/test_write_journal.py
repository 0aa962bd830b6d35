"""A write whose commit a crash lost: each write is journalled (a pending audit row) before it is sent, so the
pass after a process died between its writes and its commit knows what was written, moves the link's base to
what the target holds, and a later one-sided edit wins instead of being decided by a rule (HubSpot ↔ Zoho
Books, sandbox; the death is a raise from the commit point, the writes having been sent and answered)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from syncd.engine.context import PipelineHooks
from syncd.engine.journal import RECOVERED, UNCONFIRMED
from syncd.store import AuditEntry
from tests.engine.conftest import World
from tests.engine.test_customers import settle
from tests.engine.test_deals import won_deal
from tests.engine.test_lost_update import linked_ann


class ProcessDied(Exception):
    """Stands for a SIGKILL between a batch's writes and its commit."""


def die_before_commit(obj: str) -> None:
    """The hook: the process stops once its writes are answered, before the store records them."""
    raise ProcessDied(obj)


async def requests(world: World) -> dict[str, Counter[str]]:
    """Every API request each system has served so far, by route."""
    return {name: Counter((await system.stats())["requests"])
            for name, system in (("hubspot", world.hubspot), ("zohobooks", world.zoho))}  # fmt: skip


def spent(after: dict[str, Counter[str]], before: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    """The requests served between two snapshots, by system and route (control-plane routes left out)."""
    return {
        name: {route: n for route, n in (after[name] - before[name]).items() if "/_sandbox/" not in route}
        for name in after
    }


async def zoho_rows(world: World) -> list[AuditEntry]:
    """The audit rows of writes to Zoho Books that changed fields, oldest first."""
    return [e for e in reversed(await world.stores.audit.list(system="zohobooks")) if e.fields_before]


async def killed_while_writing(world: World, hub_id: str, fields: dict[str, Any]) -> None:
    """A HubSpot edit that a pass writes to Zoho Books before it dies, its commit lost."""
    await world.hubspot.update("contacts", hub_id, fields)
    with pytest.raises(ProcessDied):
        await world.reconciler(hooks=PipelineHooks(before_commit=die_before_commit)).run_pass()


async def test_a_write_whose_commit_was_lost_is_recovered_and_a_later_one_sided_edit_wins(world: World) -> None:
    # The chaos finding: a write reached the target, the process died before its commit, the link's base stayed
    # at the old value and no audit row said so; a later one-sided edit then met a rule (city: `accounting`)
    # and the value the dead process wrote was written back over the person's edit.
    hub_id, zoho_id = await linked_ann(world)
    await killed_while_writing(world, hub_id, {"city": "Cambridge"})
    assert (await world.zoho.get("contacts", zoho_id))["billing_address.city"] == "Cambridge"
    [journalled] = await zoho_rows(world)
    assert journalled.status == "pending"
    assert (journalled.fields_before, journalled.fields_after) == (
        {"billing_address.city": "Boston"}, {"billing_address.city": "Cambridge"}
    )
    # The person edits the city in HubSpot again; a new process starts.
    await world.hubspot.update("contacts", hub_id, {"city": "Somerville"})
    before = await requests(world)
    report = await world.reconciler().run_pass()
    assert not report.errors
    hub, zoho = await world.hubspot.get("contacts", hub_id), await world.zoho.get("contacts", zoho_id)
    assert hub["city"] == zoho["billing_address.city"] == "Somerville"
    assert not await world.stores.conflicts.list("open")
    [update] = report.of_kind("update")
    assert update.target.startswith("zohobooks") and [c.field for c in update.changes] == ["city"]
    # The killed write is in the audit log, marked recovered; the edit's write after it, done.
    recovered, edit = await zoho_rows(world)
    assert recovered.id == journalled.id and recovered.status == "recovered"
    assert recovered.cause.endswith(f"({RECOVERED})")
    assert (edit.status, edit.fields_before, edit.fields_after) == (
        "done", {"billing_address.city": "Cambridge"}, {"billing_address.city": "Somerville"}
    )
    assert [e for e in await world.stores.audit.list(system="hubspot") if e.fields_before] == []
    # The recovery cost one read of the customer (one batch read per object and side); the rest is what a
    # one-sided HubSpot edit costs: the search, the planning read of the customer, the connector's read of its
    # contact persons and the update.
    calls = spent(await requests(world), before)
    assert calls["zohobooks"] == {
        "GET /books/v3/contacts": 1,  # the idle lists of each object
        "GET /books/v3/invoices": 1,
        "GET /books/v3/customerpayments": 1,
        "GET /books/v3/contacts/{contact_id}": 1 + 2,
        "PUT /books/v3/contacts/{contact_id}": 1,
    }
    assert calls["hubspot"] == {
        "POST /crm/v3/objects/{object_type}/search": 3,  # the idle searches: contacts, deals, lines
        "POST /crm/v3/objects/{object_type}/batch/read": 1,  # the changed contact, in full
    }


async def test_a_write_the_target_no_longer_holds_is_unconfirmed_and_the_base_stays(world: World) -> None:
    # The Zoho customer was edited after the dead process wrote it: the journal cannot confirm its write, so
    # the base stays at what both last held and both sides' edits meet the field's rule (city: `accounting`).
    hub_id, zoho_id = await linked_ann(world)
    await killed_while_writing(world, hub_id, {"city": "Cambridge"})
    await world.zoho.update("contacts", zoho_id, {"billing_address.city": "Quincy"})
    report = await world.reconciler().run_pass()
    assert not report.errors
    hub, zoho = await world.hubspot.get("contacts", hub_id), await world.zoho.get("contacts", zoho_id)
    assert hub["city"] == zoho["billing_address.city"] == "Quincy"
    [unconfirmed] = await zoho_rows(world)
    assert unconfirmed.status == "unconfirmed" and unconfirmed.cause.endswith(f"({UNCONFIRMED})")
    [by_rule] = [e for e in await world.stores.audit.list(system="hubspot") if e.fields_before]
    assert (by_rule.status, by_rule.fields_before, by_rule.fields_after) == (
        "done", {"city": "Cambridge"}, {"city": "Quincy"}
    )


async def test_passes_without_a_crash_complete_every_journal_row(world: World) -> None:
    # Every write's row is completed by its own commit: nothing is left for a later pass to read (the idle
    # passes of tests/engine/test_economy.py count the calls, unchanged by the journal).
    hub_id, _ = await linked_ann(world)
    await world.hubspot.update("contacts", hub_id, {"city": "Cambridge", "phone": "+1 415 555 0111"})
    await settle(world)
    statuses = [e.status for e in await world.stores.audit.list()]
    assert statuses and set(statuses) == {"done"}
    assert await world.stores.journal.pending("hubspot-zohobooks") == []


async def test_a_void_whose_record_was_lost_is_recovered_and_not_sent_again(world: World) -> None:
    # A deal lost after invoicing: the invoice is voided and the process dies before the void is recorded.
    _, deal = await won_deal(world)
    await settle(world)
    [invoice] = await world.zoho.all("invoices")
    await world.hubspot.update("deals", deal, {"dealstage": "closedlost"})

    def die_after_the_void(obj: str) -> None:
        if obj == "invoice":
            raise ProcessDied(obj)

    with pytest.raises(ProcessDied):
        await world.reconciler(hooks=PipelineHooks(before_commit=die_after_the_void)).run_pass()
    assert (await world.zoho.get("invoices", invoice["id"]))["status"] == "void"
    [journalled] = await world.stores.audit.list(system="zohobooks", object="invoices", status="pending")
    before = await requests(world)
    report = await world.reconciler().run_pass()
    assert not report.errors and not report.of_kind("void")
    [voided] = [e for e in await world.stores.audit.list(system="zohobooks", object="invoices")
                if e.fields_after == {"status": "void"}]  # fmt: skip
    assert (voided.id, voided.status, voided.fields_before) == (journalled.id, "recovered", {"status": "draft"})
    calls = spent(await requests(world), before)["zohobooks"]
    # Voided once, by the dead process: no write now. The recovery read the invoice once; the other two reads
    # are what the lost deal read again costs without a crash (measured with the recovery switched off).
    assert calls == {
        "GET /books/v3/contacts": 1, "GET /books/v3/invoices": 1, "GET /books/v3/customerpayments": 1,
        "GET /books/v3/invoices/{invoice_id}": 1 + 2,
    }
    assert await settle(world) == 1
