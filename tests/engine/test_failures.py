"""Writes the systems refuse, on the sandbox: counted and reported as errors with the system's code and message
(never as creates or updates), and their class deciding what happens next: a validation error waits for a
change of the record, its counterpart or the mapping; a rate limit waits out its Retry-After; a refused grant
pauses the connection."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from syncd.connectors.base import WriteOutcome
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.engine.context import PipelineHooks
from syncd.engine.plan import render_table, report_data
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.sandbox.faults import Faults
from syncd.settings import RateLimitSettings
from syncd.store import ConnectionStore
from syncd.store.columns import utcnow
from tests.engine.conftest import World, _connection
from tests.engine.test_customers import ann, next_second, settle
from tests.engine.test_deals import pay, won_deal

MAPPING = "hubspot-zohobooks"
#: Zoho Books keeps a person's first name to 100 characters; HubSpot takes longer ones.
TOO_LONG = "Maximiliana" * 10
REFUSED = "Invalid value passed for first_name"


def hooked_after_create(action: object) -> PipelineHooks:
    """Hooks that do `action()` right after a batch's creates, before its updates are sent."""

    def after_create(system: str, obj: str, outcomes: Sequence[WriteOutcome]) -> None:
        assert all(o.ok for o in outcomes)
        action()  # type: ignore[operator]

    return PipelineHooks(after_create=after_create)


async def test_a_create_zoho_refuses_is_an_error_with_its_code_and_waits_until_the_record_changes(
    world: World,
) -> None:
    jennifer = await world.hubspot.put("contacts", ann(
        firstname="Jennifer", lastname="Mitchell", email="Jennifer.Mitchell@Example.com"))
    refused = await world.hubspot.put("contacts", ann(
        firstname=TOO_LONG, lastname="Mitchell", email="m.mitchell@example.com"))
    reconciler = world.reconciler(retry_after=timedelta(0))
    report = await reconciler.run_pass()

    # The summary counts what happened: one create, one error with Zoho's message and code.
    assert report.counts() == {"create": 1, "error": 1}
    assert [a.source for a in report.of_kind("create")] == [f"hubspot contacts {jennifer}"]
    [failure] = report.failures
    assert failure.source == f"hubspot contacts {refused}" and failure.target == "zohobooks contacts (new)"
    assert f"{REFUSED} (code 4)" in failure.reason and "parked until the record" in failure.reason
    assert report.error_count == 1
    data = report_data(report)
    assert data["counts"] == {"create": 1, "error": 1} and data["error_count"] == 1
    [line] = data["errors"]
    assert line.startswith(f"hubspot contacts {refused}: zohobooks refused") and REFUSED in line
    shown = Console(file=io.StringIO(), width=300)
    render_table(report, shown)
    assert "Done: 1 create, 1 error" in shown.file.getvalue()  # type: ignore[attr-defined]

    # The dead letter names the system's code and message; nothing claims the create happened.
    [letter] = await world.stores.dead_letters.list()
    assert (letter.side, letter.record_id, letter.error_class) == ("crm", refused, "validation")
    assert (letter.error_code, letter.error_message) == ("4", REFUSED)
    assert letter.next_attempt_at is None
    [customer] = await world.zoho.all("contacts")
    [created] = await world.stores.audit.list(system="zohobooks")
    assert created.record_id == customer["id"] and jennifer in created.cause
    assert await world.stores.links.pending() == []  # no intent to look up again on every pass

    # The next pass re-reads it (the overlap window) but does not try again: not one write to Zoho Books.
    writes = await world.zoho.writes()
    again = await reconciler.run_pass()
    assert await world.zoho.writes() == writes
    assert again.error_count == 0 and again.settled
    assert any(a.source == f"hubspot contacts {refused}" and "held back" in a.reason for a in again.of_kind("skip"))
    assert (await world.stores.dead_letters.list())[0].attempts == 1

    # Once the record changes, it is tried again, and created.
    await world.hubspot.update("contacts", refused, {"firstname": "Maxi"})
    fixed = await reconciler.run_pass()
    assert [a.source for a in fixed.of_kind("create")] == [f"hubspot contacts {refused}"]
    assert await world.stores.dead_letters.list() == []
    assert len(await world.stores.audit.list(system="zohobooks")) == 2
    assert await settle(world) == 1


async def test_an_update_zoho_refuses_waits_until_the_record_its_counterpart_or_the_mapping_changes(
    world: World, tmp_path: Path
) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world)
    [customer] = await world.zoho.all("contacts")
    await world.hubspot.update("contacts", hub_id, {"firstname": TOO_LONG})
    reconciler = world.reconciler(retry_after=timedelta(0))
    report = await reconciler.run_pass()
    assert report.counts() == {"error": 1}
    [failure] = report.failures
    assert failure.target == f"zohobooks contacts {customer['id']}" and f"{REFUSED} (code 4)" in failure.reason
    [letter] = await world.stores.dead_letters.list()
    assert (letter.record_id, letter.counterpart_id, letter.error_code) == (hub_id, customer["id"], "4")
    assert await world.stores.audit.list() == await world.stores.audit.list(system="zohobooks")  # no new row
    link = await world.stores.links.lookup_crm(MAPPING, "customer", "hubspot", hub_id)
    assert link is not None and link.base["first_name"] == "Ann"  # base moves only with a successful write

    # Neither record re-read unchanged (the overlap window) brings the refused write back.
    writes = await world.zoho.writes()
    held = await reconciler.run_pass()
    assert await world.zoho.writes() == writes and held.error_count == 0
    assert len([a for a in held.of_kind("skip") if "held back" in a.reason]) == 2

    # The counterpart changes (someone edits the customer in Zoho Books): the pair is planned again; the
    # phone reaches HubSpot (audited), and Zoho Books refuses the first name again.
    await next_second(letter.updated_at)  # Zoho Books stamps edits to the second
    await world.zoho.update("contacts", customer["id"], {"primary_contact.phone": "+1 415 555 0199"})
    freed = await reconciler.run_pass()
    # HubSpot's unchanged record, read first, is still held back; Zoho's changed one frees the pair.
    assert freed.counts() == {"skip": 1, "update": 1, "error": 1}
    assert (await world.hubspot.get("contacts", hub_id))["phone"] == "+14155550199"
    [phone_row] = await world.stores.audit.list(system="hubspot", record_id=hub_id, limit=1)
    assert phone_row.fields_after == {"phone": "+14155550199"}
    [letter] = await world.stores.dead_letters.list()
    assert letter.attempts == 2
    writes = await world.zoho.writes()
    assert (await reconciler.run_pass()).error_count == 0
    assert await world.zoho.writes() == writes

    # The mapping changes (first names now only come from Zoho Books): the record is free, and in step.
    text = (SHIPPED_MAPPINGS_DIR / f"{MAPPING}.toml").read_text()
    edited = tmp_path / f"{MAPPING}.toml"
    edited.write_text(text.replace(
        '[objects.customer.fields.first_name]\n',
        '[objects.customer.fields.first_name]\ndirection = "accounting_to_crm"\n',
    ))
    changed = await world.reconciler(edited, retry_after=timedelta(0)).run_pass()
    assert changed.error_count == 0
    assert await world.zoho.writes() == writes
    assert await world.stores.dead_letters.list() == []


#: Customers one way, HubSpot to Zoho Books: a pass reads Zoho Books only to plan, and its updates are the
#: pass's last Zoho calls.
ONE_WAY = """
name = "customers-one-way"

[mapping]
crm = "hubspot"
accounting = "zohobooks"

[objects.customer]
crm_object = "contacts"
acc_object = "contacts"
direction = "crm_to_accounting"
match_keys = ["email"]
crm_filter = 'not is_empty(email)'

[objects.customer.create]
crm_to_accounting = true
acc_ref_field = "cf_syncd_ref"
acc_values = { contact_type = "customer", contact_name = "${first_name} ${last_name}" }

[objects.customer.fields.email]
crm = "email"
acc = "primary_contact.email"
transform = "email"

[objects.customer.fields.first_name]
crm = "firstname"
acc = "primary_contact.first_name"
transform = "trim"

[objects.customer.fields.last_name]
crm = "lastname"
acc = "primary_contact.last_name"
transform = "trim"
"""


async def test_a_rate_limited_write_backs_off_for_its_retry_after(world: World, tmp_path: Path) -> None:
    # Zoho Books' documented window (a minute), and a connector that waits in line at most a second: the
    # 60 s Retry-After of a refused write is handed to the engine instead of slept through.
    settings = _connection(world.sandbox, "zohobooks").model_copy(
        update={"rate_limit": RateLimitSettings(window_s=60, window_max=100_000)}
    )
    patient_a_second = ZohoBooksConnector(
        "zoho", settings,  # type: ignore[arg-type]
        policy=RetryPolicy(attempts=3, initial_s=0.01, max_s=0.05, jitter_s=0.0, longest_wait_s=1.0),
    )
    # The next `sync --once` is a new process: a new connector, whose limiter knows nothing of the 429.
    next_process = ZohoBooksConnector("zoho", settings)  # type: ignore[arg-type]
    mapping = tmp_path / "customers-one-way.toml"
    mapping.write_text(ONE_WAY)
    try:
        await rate_limited_then_requeued(world, mapping, patient_a_second, next_process)
    finally:
        await patient_a_second.close()
        await next_process.close()


async def rate_limited_then_requeued(
    world: World, mapping: Path, patient_a_second: ZohoBooksConnector, next_process: ZohoBooksConnector
) -> None:
    """The scenario of the test above, with its Zoho connectors."""
    await world.zoho.connector.close()
    world.zoho.connector = patient_a_second
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world, mapping)
    [customer] = await world.zoho.all("contacts")
    await world.hubspot.update("contacts", hub_id, {"firstname": "Annie"})
    newcomer = await world.hubspot.put("contacts", ann(firstname="Bob", email="BOB@example.com"))
    zoho = world.sandbox.zohobooks
    # Zoho Books starts answering 429 once the batch's create is through, before its update is sent.
    limited = world.reconciler(mapping, retry_after=timedelta(0), hooks=hooked_after_create(
        lambda: zoho.faults.assign(Faults(rate_limit_rate=1.0))))
    before = utcnow()
    try:
        report = await limited.run_pass()
    finally:
        zoho.faults.assign(Faults())
    assert not report.errors
    assert report.counts() == {"create": 1, "error": 1}
    assert report.of_kind("create")[0].source == f"hubspot contacts {newcomer}"
    [failure] = report.failures
    assert "(code 44)" in failure.reason and "retried after 60 s" in failure.reason
    [letter] = await world.stores.dead_letters.list()
    assert (letter.record_id, letter.error_class, letter.error_code) == (hub_id, "transient", "44")
    assert letter.next_attempt_at is not None and letter.next_attempt_at >= before + timedelta(seconds=60)

    # Zoho Books answers again, but the record waits out the back-off it was given, re-read or not.
    world.zoho.connector = next_process
    reconciler = world.reconciler(mapping, retry_after=timedelta(0))
    writes = await world.zoho.writes()
    waiting = await reconciler.run_pass()
    assert await world.zoho.writes() == writes
    assert any("held back until" in a.reason for a in waiting.of_kind("skip"))
    # An operator requeues it: the next pass writes it.
    await world.stores.dead_letters.requeue([letter.id])
    done = await reconciler.run_pass()
    assert [a.target for a in done.of_kind("update")] == [f"zohobooks contacts {customer['id']}"]
    assert (await world.zoho.get("contacts", customer["id"]))["primary_contact.first_name"] == "Annie"
    assert await world.stores.dead_letters.list() == []


async def test_a_refused_grant_pauses_the_connection(world: World) -> None:
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world)
    await world.hubspot.update("contacts", hub_id, {"firstname": "Annie"})
    await world.hubspot.put("contacts", ann(firstname="Bob", email="bob@example.com"))
    zoho = world.sandbox.zohobooks
    zoho_connection = world.zoho.connector.name
    await ConnectionStore(world.db).ensure(zoho_connection, "zohobooks")

    def revoke() -> None:
        zoho.revoke_tokens()
        zoho.expire_tokens()

    report = await world.reconciler(hooks=hooked_after_create(revoke)).run_pass()
    [failure] = report.failures
    assert f"connection {zoho_connection} paused" in failure.reason
    state = await ConnectionStore(world.db).get(zoho_connection)
    assert state is not None and state.status == "needs_reauth"
    assert state.last_error is not None and "paused" in state.last_error
    [letter] = await world.stores.dead_letters.list()
    assert (letter.record_id, letter.error_class) == (hub_id, "authorisation")
    assert letter.next_attempt_at is not None


async def test_a_void_zoho_refuses_is_an_error_not_a_void(world: World) -> None:
    _, deal = await won_deal(world)
    await world.reconciler().run_pass()
    [invoice] = await world.zoho.all("invoices")
    await settle(world)
    await pay(world, "500", (invoice["id"], "500"))
    await settle(world)
    await world.hubspot.update("deals", deal, {"dealstage": "closedlost"})
    report = await world.reconciler().run_pass()
    assert not report.of_kind("void")
    [failure] = report.failures
    assert failure.target == f"zohobooks invoices {invoice['id']}"
    assert "Invoices with payments recorded cannot be voided" in failure.reason
    assert (await world.zoho.get("invoices", invoice["id"]))["status"] == "partially_paid"
    assert not [row for row in await world.stores.audit.list(system="zohobooks", object="invoices")
                if row.fields_after.get("status") == "void"]
