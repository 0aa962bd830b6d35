"""A write whose commit a crash lost: each write is journalled (a pending audit row) before it is sent, so the
pass after a process died between its writes and its commit knows what was written, moves the link's base to
what the target holds, and a later one-sided edit wins instead of being decided by a rule (HubSpot ↔ Zoho
Books, sandbox; the death is a raise from the commit point, the writes having been sent and answered). The
status action marking a new invoice sent is journalled too, references written are confirmed with the fields,
and a pass never resolves the rows of a writer still running (another pass, or another process)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest

from syncd.connectors.base import ChangeEvent
from syncd.engine.context import PipelineHooks
from syncd.engine.journal import RECOVERED, UNCONFIRMED
from syncd.engine.snapshot import decode_base
from syncd.engine.vanished import reference_mark
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.store import AuditEntry, Database
from tests.engine.conftest import World
from tests.engine.test_customers import ann, settle
from tests.engine.test_deals import DRAFTS, announce_move, move_deal, pay, sent_invoice_count, won_deal
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


def die_with(name: str) -> PipelineHooks:
    """Hooks that stop the process once the writes of object `name` are answered, before they are recorded."""

    def die(obj: str) -> None:
        if obj == name:
            raise ProcessDied(obj)

    return PipelineHooks(before_commit=die)


async def test_an_invoice_marked_sent_whose_record_was_lost_is_recovered_and_not_sent_again(
    world: World, tmp_path: Path
) -> None:
    # mark_sent: the invoice is created, then marked sent by its status action; the process dies before the
    # commit. The create is repaired from its intent (by its reference) and the action from its journal row.
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text((SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
                    .replace("mark_sent = false", "mark_sent = true"))  # fmt: skip
    _, deal = await won_deal(world)
    with pytest.raises(ProcessDied):
        await world.reconciler(path, hooks=die_with("invoice")).run_pass()
    [invoice] = await world.zoho.all("invoices")
    assert invoice["status"] == "sent" and await sent_invoice_count(world) == 1
    [journalled] = await world.stores.audit.list(system="zohobooks", object="invoices", status="pending")
    assert (journalled.record_id, journalled.fields_before, journalled.fields_after) == (
        invoice["id"], {"status": "draft"}, {"status": "sent"}
    )
    before = await requests(world)
    report = await world.reconciler(path).run_pass()
    assert not report.errors
    rows = {e.id: e for e in await world.stores.audit.list(system="zohobooks", object="invoices")}
    marked = rows.pop(journalled.id)
    assert (marked.status, marked.cause.endswith(f"({RECOVERED})")) == ("recovered", True)
    [created] = rows.values()  # the create, repaired from its intent by the reference lookup
    assert created.status == "recovered" and created.record_id == invoice["id"]
    assert await world.stores.audit.list(status="pending") == []
    calls = spent(await requests(world), before)["zohobooks"]
    # Sent once, by the dead process: no action now. The intent's reference lookup (a list, then the invoice in
    # full) and the journal's read of the invoice; the rest is the pass's idle lists and the new invoice read
    # in detail.
    assert calls == {
        "GET /books/v3/contacts": 1, "GET /books/v3/invoices": 1 + 1, "GET /books/v3/customerpayments": 1,
        "GET /books/v3/invoices/{invoice_id}": 1 + 1 + 1,
    }, calls
    assert await settle(world, path) == 1 and await sent_invoice_count(world) == 1
    assert (await world.hubspot.get("deals", deal))["syncd_invoice_status"] == "sent"


@pytest.mark.parametrize("moved_on", [True, False], ids=["paid in part", "voided and drafted again"])
async def test_an_invoice_marked_sent_is_confirmed_by_a_later_status_never_by_a_draft(
    world: World, tmp_path: Path, moved_on: bool
) -> None:
    # Before the next pass the invoice moved on (a part payment: `partially_paid`), which confirms it was sent;
    # or the accountant voided it and made it a draft again (Zoho Books drafts only a void invoice), after
    # which nothing tells that it was ever sent.
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text((SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml").read_text()
                    .replace("mark_sent = false", "mark_sent = true"))  # fmt: skip
    await won_deal(world)
    with pytest.raises(ProcessDied):
        await world.reconciler(path, hooks=die_with("invoice")).run_pass()
    [invoice] = await world.zoho.all("invoices")
    if moved_on:
        await pay(world, "200", (invoice["id"], "200"))
        assert (await world.zoho.get("invoices", invoice["id"]))["status"] == "partially_paid"
    else:
        await world.zoho.connector.act("invoices", invoice["id"], "void")
        await world.zoho.connector.act("invoices", invoice["id"], "draft")
    [journalled] = await world.stores.audit.list(system="zohobooks", object="invoices", status="pending")
    assert not (await world.reconciler(path).run_pass()).errors
    [row] = [e for e in await world.stores.audit.list(system="zohobooks") if e.id == journalled.id]
    assert (row.status, row.cause.endswith(f"({RECOVERED if moved_on else UNCONFIRMED})")) == (
        "recovered" if moved_on else "unconfirmed", True
    )
    assert await sent_invoice_count(world) == 1  # never sent again by syncd


async def test_a_moved_reference_whose_record_was_lost_is_confirmed_and_a_move_back_is_carried(
    world: World, tmp_path: Path
) -> None:
    # A deal moved from Ann to Bob: the draft invoice's customer is written, the process dies before the
    # commit. Recovery confirms the reference (the invoice holds Bob's customer) and moves both of its marks
    # in the base; the deal moved back to Ann is then a move, carried to the invoice. Left at Ann, the base
    # would take the move back for no change, and the invoice would stay Bob's.
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text(DRAFTS)
    ann_contact, deal = await won_deal(world)
    bob = await world.hubspot.put("contacts", ann(email="bob@example.com", firstname="Bob", lastname="Ray"))
    await settle(world, path)
    [invoice] = await world.zoho.all("invoices")
    ann_customer = invoice["customer_id"]
    bob_link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", bob)
    assert bob_link is not None and bob_link.acc_id is not None
    await move_deal(world, deal, ann_contact, bob)
    with pytest.raises(ProcessDied):
        # HubSpot's association change, announced (as tests/engine/test_deals.py announce_move sends it).
        moved = ChangeEvent(f"assoc-{uuid4().hex[:8]}", "deals", deal, "updated", datetime.now(UTC))
        await world.reconciler(path, hooks=die_with("invoice")).sync_records(
            "hubspot-zohobooks", "hubspot", "deals", [moved]
        )
    assert (await world.zoho.get("invoices", invoice["id"]))["customer_id"] == bob_link.acc_id
    [journalled] = await world.stores.audit.list(object="invoices", status="pending")
    assert journalled.fields_after == {"customer_id": bob_link.acc_id}
    # The deal moves back to Ann; the webhook's delivery is the next process's first work.
    await move_deal(world, deal, bob, ann_contact)
    before = await requests(world)
    report = await announce_move(world, deal, path)
    assert not report.errors
    # What a move costs (the invoice read to plan it, the write), plus the recovery's read of the invoice.
    calls = spent(await requests(world), before)["zohobooks"]
    assert calls == {"GET /books/v3/invoices/{invoice_id}": 1 + 1, "PUT /books/v3/invoices/{invoice_id}": 1}
    assert (await world.zoho.get("invoices", invoice["id"]))["customer_id"] == ann_customer
    [recovered] = [e for e in await world.stores.audit.list(object="invoices") if e.id == journalled.id]
    assert recovered.status == "recovered"
    [moved_back] = [e for e in await world.stores.audit.list(object="invoices", status="done")
                    if e.fields_after == {"customer_id": ann_customer}]  # fmt: skip
    assert moved_back.fields_before == {"customer_id": bob_link.acc_id}
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "invoice", "hubspot", deal)
    assert link is not None
    base = decode_base(link.base)
    assert (base[reference_mark("crm", "customer")], base[reference_mark("accounting", "customer")]) == (
        ann_contact, ann_customer
    )


async def test_a_pass_leaves_the_rows_of_a_writer_still_running_alone(
    world: World, control_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # Two processes on one store: one writes a batch (Zoho Books slowed to 300 ms a call, so its rows stay
    # pending for a while), the other handles a webhook meanwhile, which starts by resolving rows left pending.
    # The writer is alive: its rows are not the other's to resolve (they were marked unconfirmed, and the
    # writer's commit then could not complete them: an audit log saying "not confirmed" of a write made).
    hub_id, zoho_id = await linked_ann(world)
    await world.hubspot.update("contacts", hub_id, {"city": "Cambridge"})
    faults = f"{world.sandbox.control_url('zohobooks')}/_sandbox/faults"
    async with control_session.post(faults, json={"latency_ms": [300, 300]}) as response:
        assert response.status == 200
    writer = asyncio.create_task(world.reconciler().run_pass())
    deadline = asyncio.get_running_loop().time() + 30
    while not await world.stores.journal.pending("hubspot-zohobooks"):
        assert not writer.done(), writer
        assert asyncio.get_running_loop().time() < deadline, "no write was journalled"
        await asyncio.sleep(0.002)
    elsewhere = await Database.open(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        other = replace(world, db=elsewhere).reconciler()
        report = await other.sync_records("hubspot-zohobooks", "hubspot", "contacts", [])
        assert not report.errors
        assert [w.owner is not None for w in await world.stores.journal.pending("hubspot-zohobooks")] == [True]
    finally:
        await elsewhere.close()
    assert not (await writer).errors
    async with control_session.post(faults, json={"latency_ms": [0, 0]}) as response:
        assert response.status == 200
    assert (await world.zoho.get("contacts", zoho_id))["billing_address.city"] == "Cambridge"
    [row] = await zoho_rows(world)
    assert (row.status, row.fields_after) == ("done", {"billing_address.city": "Cambridge"})
    assert await world.stores.journal.pending("hubspot-zohobooks") == []


async def test_a_create_recovered_from_its_intent_is_followed_by_no_write(world: World, tmp_path: Path) -> None:
    path = tmp_path / "hubspot-zohobooks.toml"
    path.write_text(DRAFTS)
    await won_deal(world)
    with pytest.raises(ProcessDied):
        await world.reconciler(path, hooks=die_with("invoice")).run_pass()
    await settle(world, path)
    [invoice] = await world.zoho.all("invoices")
    rows = await world.stores.audit.list(system="zohobooks", object="invoices")
    assert [(e.status, e.record_id) for e in rows] == [("recovered", invoice["id"])]
