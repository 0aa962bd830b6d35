"""Customers across HubSpot and Zoho Books on the sandbox: creates, matches, three-way edits, conflicts, crashes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.connectors.base import FieldValue
from syncd.engine.context import PipelineHooks
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from tests.engine.conftest import World


def ann(**extra: FieldValue) -> dict[str, FieldValue]:
    """A HubSpot contact."""
    return {
        "email": "ann@example.com",
        "firstname": "Ann",
        "lastname": "Lee",
        "phone": "+1 415 555 0100",
        "company": "Acme",
        "city": "Boston",
        **extra,
    }


async def settle(world: World, *files: str | Path) -> int:
    """Run passes until one plans no write; return how many passes it took."""
    reconciler = world.reconciler(*files)
    for count in range(1, 6):
        report = await reconciler.run_pass()
        assert not report.errors
        if report.settled:
            return count
    raise AssertionError("never settled")


async def next_second(after: datetime) -> None:
    """Wait until the wall clock is in a later whole second than `after`: Zoho Books stamps edits to the
    second, so an edit meant to be the later one must land in a later second (polled with a deadline)."""
    target = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    deadline = asyncio.get_running_loop().time() + 3
    while datetime.now(UTC) < target:
        assert asyncio.get_running_loop().time() < deadline, "the clock did not move on"
        await asyncio.sleep(0.02)


async def test_a_new_hubspot_contact_becomes_one_zoho_customer_and_settles(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    report = await world.reconciler().run_pass()
    assert [a.kind for a in report.actions if a.writes] == ["create"]
    [customer] = await world.zoho.all("contacts")
    assert customer["primary_contact.email"] == "ann@example.com"
    assert customer["contact_name"] == "Ann Lee" and customer["contact_type"] == "customer"
    assert customer["primary_contact.phone"] == "+14155550100"
    assert customer["cf_syncd_ref"].startswith("syncd-")
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", hub_id)
    assert link is not None and link.state == "linked" and link.acc_id == customer["id"]
    writes = await world.writes()
    assert await settle(world) == 1  # our own write read back plans nothing: no echo
    assert await world.writes() == writes
    audit = await world.stores.audit.list(system="zohobooks")
    assert [e.record_id for e in audit] == [customer["id"]] and "created from hubspot" in audit[0].cause


async def test_an_edit_on_one_side_is_copied_and_not_echoed(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world)
    [customer] = await world.zoho.all("contacts")
    # A person edits a customer seconds after syncd created it at the soonest; an edit in the very second of
    # the create would read as the create's own echo (README, "Calls near the minimum": the risk weighed).
    await next_second(datetime.now(UTC))
    await world.zoho.update("contacts", customer["id"], {"primary_contact.first_name": "Annie"})
    report = await world.reconciler().run_pass()
    [update] = report.of_kind("update")
    assert update.target.startswith("hubspot contacts") and update.changes[0].old == "Ann"
    assert (await world.hubspot.get("contacts", hub_id))["firstname"] == "Annie"
    writes = await world.writes()
    assert await settle(world) == 1
    assert await world.writes() == writes


async def test_first_linking_matches_email_trimmed_and_case_insensitively(world: World) -> None:
    zoho_id = await world.zoho.put(
        "contacts",
        {
            "contact_type": "customer",
            "contact_name": "Ann Lee",
            "primary_contact.email": "ANN@Example.com",
            "primary_contact.first_name": "Ann",
        },
    )
    # Zoho Books refuses an address with spaces around it; HubSpot keeps what it is given.
    hub_id = await world.hubspot.put("contacts", ann(email=" ann@example.com "))
    report = await world.reconciler().run_pass()
    assert report.of_kind("create") == []
    assert [a.kind for a in report.actions if a.kind == "link"] == ["link"]
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", hub_id)
    assert link is not None and link.acc_id == zoho_id
    assert await world.zoho.count("contacts") == 1 and await world.hubspot.count("contacts") == 1
    assert await settle(world) == 1


async def test_an_ambiguous_match_is_reported_and_parked_never_guessed(world: World) -> None:
    for name in ("Ann One", "Ann Two"):
        await world.zoho.put(
            "contacts",
            {"contact_type": "customer", "contact_name": name, "primary_contact.email": "ann@example.com"},
        )
    hub_id = await world.hubspot.put("contacts", ann())
    report = await world.reconciler().run_pass()
    skips = [a for a in report.of_kind("skip") if a.source.endswith(hub_id)]
    assert skips and "ambiguous match on email" in skips[0].reason
    assert await world.zoho.count("contacts") == 2
    # Seen from Zoho Books each customer has one match, but the same one: neither is paired with it either.
    letters = await world.stores.dead_letters.list()
    assert hub_id in {d.record_id for d in letters} and len(letters) == 3
    assert all("ambiguous" in d.error and d.next_attempt_at is None for d in letters)
    assert await world.stores.links.list() == []
    assert await settle(world) == 1  # parked records are not planned again until they change


async def test_both_sides_changed_latest_wins_and_a_rule_field_keeps_accounting(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world)
    [customer] = await world.zoho.all("contacts")
    await world.hubspot.update("contacts", hub_id, {"lastname": "Hub", "city": "Hubtown"})
    edited = await world.hubspot.connector.get_many("contacts", [hub_id])
    await next_second(edited[hub_id].modified_at)
    await world.zoho.update(
        "contacts", customer["id"], {"primary_contact.last_name": "Zoho", "billing_address.city": "Zedville"}
    )
    await world.reconciler().run_pass()
    # last_name: `latest` → the later edit (Zoho's); city: rule `accounting` → Zoho's value, on both sides.
    hub = await world.hubspot.get("contacts", hub_id)
    assert hub["lastname"] == "Zoho" and hub["city"] == "Zedville"
    assert (await world.zoho.get("contacts", customer["id"]))["billing_address.city"] == "Zedville"
    assert await settle(world) == 1


async def test_manual_parks_only_that_field_and_a_resolution_is_applied_next_pass(world: World) -> None:
    # The shipped file leaves a phone changed differently on both sides to a person.
    path = SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml"
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world, path)
    [customer] = await world.zoho.all("contacts")
    zoho_id = customer["id"]
    await world.hubspot.update("contacts", hub_id, {"phone": "+1 415 555 0111", "firstname": "Anna"})
    await world.zoho.update("contacts", zoho_id, {"primary_contact.phone": "+1 415 555 0122"})
    report = await world.reconciler(path).run_pass()
    [conflict_action] = report.of_kind("conflict")
    assert conflict_action.changes[0].field == "phone"
    # The other field of the same record kept syncing.
    zoho = await world.zoho.get("contacts", zoho_id)
    assert zoho["primary_contact.first_name"] == "Anna"
    assert zoho["primary_contact.phone"] == "+1 415 555 0122"
    assert (await world.hubspot.get("contacts", hub_id))["phone"] == "+1 415 555 0111"
    [conflict] = await world.stores.conflicts.list()
    assert (conflict.crm_value, conflict.acc_value) == ("+14155550111", "+14155550122")
    # Still open: another pass neither writes nor loses either edit, nor reports the same conflict as new.
    again = await world.reconciler(path).run_pass()
    assert again.settled and not again.of_kind("conflict")
    assert any("still open" in a.reason for a in again.of_kind("skip"))
    await world.stores.conflicts.resolve(conflict.id, "crm", by="test")
    await world.reconciler(path).run_pass()
    assert (await world.zoho.get("contacts", zoho_id))["primary_contact.phone"] == "+14155550111"
    assert await world.stores.conflicts.resolved_unapplied() == []
    assert await settle(world, path) == 1


async def test_a_crash_between_create_and_link_commit_binds_instead_of_creating_again(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())

    class Crash(Exception):
        pass

    def crash(system: str, obj: str, outcomes: object) -> None:
        raise Crash(f"power cut after creating {system} {obj}")

    with pytest.raises(Crash):
        await world.reconciler(hooks=PipelineHooks(after_create=crash)).run_pass()
    assert await world.zoho.count("contacts") == 1
    [pending] = await world.stores.links.pending()
    assert pending.crm_id == hub_id and pending.acc_id is None
    report = await world.reconciler().run_pass()
    assert [a.kind for a in report.actions if a.kind == "link"] == ["link"]
    assert "recovered" in report.of_kind("link")[0].reason
    [customer] = await world.zoho.all("contacts")
    assert await world.zoho.count("contacts") == 1
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", hub_id)
    assert link is not None and link.state == "linked" and link.acc_id == customer["id"]
    # The create is audited although its pass died before writing the row: the row says it was recovered.
    [audited] = await world.stores.audit.list(system="zohobooks")
    assert (audited.object, audited.record_id, audited.fields_before) == ("contacts", customer["id"], {})
    assert f"created from hubspot contacts {hub_id}" in audited.cause
    assert f"recovered an interrupted create by its reference {pending.reference}" in audited.cause
    assert audited.status == "recovered"
    assert audited.fields_after["primary_contact.email"] == "ann@example.com"
    assert audited.fields_after["cf_syncd_ref"] == pending.reference
    assert await settle(world) == 1


async def test_a_refused_write_is_dead_lettered_and_waits_until_the_record_changes(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world)
    [customer] = await world.zoho.all("contacts")
    # HubSpot takes a first name Zoho Books refuses (its person names stop at 100 characters).
    await world.hubspot.update("contacts", hub_id, {"firstname": "A" * 150})
    reconciler = world.reconciler(retry_after=timedelta(0))
    report = await reconciler.run_pass()
    assert not report.errors and [a.kind for a in report.actions] == ["error"]
    [letter] = await world.stores.dead_letters.list()
    assert letter.record_id == hub_id and "Invalid value passed for first_name" in letter.error
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", hub_id)
    assert link is not None and link.base["first_name"] == "Ann"  # base moves only with a successful write
    writes = await world.zoho.writes()
    await reconciler.run_pass()  # a validation error is not retried as long as nothing changed
    assert (await world.stores.dead_letters.list())[0].attempts == 1
    assert await world.zoho.writes() == writes
    await world.hubspot.update("contacts", hub_id, {"firstname": "Annie"})
    await reconciler.run_pass()
    assert (await world.zoho.get("contacts", customer["id"]))["primary_contact.first_name"] == "Annie"
    assert await world.stores.dead_letters.list() == []


async def test_a_counterpart_that_vanished_is_reported(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world)
    [customer] = await world.zoho.all("contacts")
    await world.hubspot.update("contacts", hub_id, {"firstname": "Annie"})
    await world.zoho.remove("contacts", customer["id"])  # Zoho Books lists no deletions
    report = await world.reconciler().run_pass()
    assert any("no longer exists" in a.reason for a in report.of_kind("skip"))
    assert await world.zoho.count("contacts") == 1


async def test_a_second_zoho_customer_for_a_linked_person_is_parked_never_linked_twice(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    assert await settle(world) <= 2
    [first] = await world.zoho.all("contacts")
    # Someone keys the same person into Zoho Books again; its only match is already linked to `first`.
    duplicate = await world.zoho.put("contacts", {
        "contact_name": "Ann Lee (2)", "contact_type": "customer", "primary_contact.email": "ANN@example.com",
        "primary_contact.first_name": "Ann", "primary_contact.last_name": "Lee",
    })
    other = await world.hubspot.put("contacts", ann(email="bob@example.com", firstname="Bob"))
    report = await world.reconciler().run_pass()
    assert not report.errors  # the duplicate stops nothing else
    [parked] = [a for a in report.actions if a.kind == "skip" and duplicate in a.source]
    assert "already linked to another record" in parked.reason
    assert any(a.kind == "create" and other in a.source for a in report.actions)
    link = await world.stores.links.lookup_crm("hubspot-zohobooks", "customer", "hubspot", hub_id)
    assert link is not None and link.acc_id == first["id"]
    assert await world.stores.links.lookup_acc("hubspot-zohobooks", "customer", "zohobooks", duplicate) is None
    [letter] = [d for d in await world.stores.dead_letters.list() if d.record_id == duplicate]
    assert "merge the duplicates" in letter.error
    assert await world.hubspot.count("contacts") == 2  # no third HubSpot contact for the duplicate
    assert await settle(world) == 1
