"""ZohoBooksConnector against the Zoho Books simulator: reads, writes, lookups, actions and describe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from syncd.connectors.base import Connector, Create, FieldValue, Update
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.errors import NotFoundError, SkippableError
from syncd.sandbox.runner import Sandbox
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from tests.connectors.zohobooks_fixtures import ids_of, live, open_zoho, read_all


@pytest.fixture
async def zoho(reset_sandbox: Sandbox) -> AsyncIterator[ZohoBooksConnector]:
    """A started connector against a sandbox with no records."""
    async with open_zoho(reset_sandbox) as connector:
        yield connector


def seed(sandbox: Sandbox, **counts: int) -> None:
    """Seed the Zoho simulator directly (as `POST /_sandbox/seed` does)."""
    full = {"contacts": 0, "companies": 0, "deals": 0, "invoices": 0, "payments": 0, **counts}
    world = SeedWorld.build(7, SeedCounts(**full).size)
    sandbox.simulators["zohobooks"].seed(world, SeedCounts(**full))


async def make_contact(zoho: ZohoBooksConnector, ref: str, **fields: object) -> str:
    """Create a contact through the connector and return its id."""
    body = {"contact_name": f"Contact {ref}", **fields}
    [outcome] = await zoho.create_many("contacts", [Create(ref, body)])  # type: ignore[arg-type]
    assert outcome.ok, outcome.error
    assert outcome.id is not None
    return outcome.id


async def test_is_a_connector(zoho: ZohoBooksConnector) -> None:
    assert isinstance(zoho, Connector)
    assert set(zoho.objects()) == {"contacts", "invoices", "customerpayments", "items", "invoicepayments"}


async def test_reads_every_record_with_typed_fields_and_lines(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox
) -> None:
    seed(reset_sandbox, contacts=25, invoices=12, payments=6)
    started = datetime.now(UTC)
    contacts = await read_all(zoho.changes("contacts", None, timedelta(0)))
    assert sorted(set(ids_of(contacts))) == sorted(live(reset_sandbox, "contacts"))
    first = contacts[0].records[0]
    assert first.modified_at.tzinfo is not None
    assert isinstance(first.fields["email"], str) and "@" in first.fields["email"]
    assert first.fields["primary_contact.email"] == first.fields["email"]
    # Only GET carries addresses: the list row says what it lacks, and get_many reads it.
    assert "billing_address.city" in first.missing and "email" not in first.missing
    assert "billing_address.city" in (await zoho.get_many("contacts", [first.id]))[first.id].fields
    assert contacts[-1].cursor <= started

    invoices = await read_all(zoho.changes("invoices", None, timedelta(0)))
    rows = [r for p in invoices for r in p.records]
    assert sorted({r.id for r in rows}) == sorted(live(reset_sandbox, "invoices"))
    assert all("line_items" in r.missing for r in rows), "list rows omit line items"
    records = list((await zoho.get_many("invoices", [r.id for r in rows])).values())
    for record in records:
        lines = record.fields["line_items"]
        assert isinstance(lines, list) and lines, "list rows omit line items; the connector must GET them"
        assert isinstance(lines[0]["rate"], Decimal)
        assert isinstance(record.fields["total"], Decimal)
        assert isinstance(record.fields["date"], date)
        assert sum(line["item_total"] for line in lines) == record.fields["sub_total"]  # type: ignore[misc]

    payments = await read_all(zoho.changes("customerpayments", None, timedelta(0)))
    paid = await zoho.get_many("customerpayments", [r.id for p in payments for r in p.records])
    applied = [r.fields["invoices"] for r in paid.values()]
    assert len(applied) == len(live(reset_sandbox, "customerpayments"))
    assert all(isinstance(a, list) and a and a[0]["invoice_id"] for a in applied)


async def test_incremental_read_returns_what_changed_since_the_cursor(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox
) -> None:
    seed(reset_sandbox, contacts=15)
    pages = await read_all(zoho.changes("contacts", None, timedelta(0)))
    cursor = pages[-1].cursor
    changed = ids_of(pages)[:2]
    outcomes = await zoho.update_many("contacts", [Update(i, {"notes": "changed"}) for i in changed])
    assert all(o.ok for o in outcomes)
    again = await read_all(zoho.changes("contacts", cursor, timedelta(seconds=0)))
    seen = {r.id: r for p in again for r in p.records}
    assert set(changed) <= set(seen)
    assert all("notes" in seen[i].missing for i in changed)  # list rows carry no notes
    assert all(r.fields["notes"] == "changed" for r in (await zoho.get_many("contacts", changed)).values())


async def test_get_many_reports_deleted_and_unknown_ids_as_absent(zoho: ZohoBooksConnector) -> None:
    kept = await make_contact(zoho, "ref-kept")
    gone = await make_contact(zoho, "ref-gone")
    [deleted] = await zoho.delete_many("contacts", [gone])
    assert deleted.ok
    found = await zoho.get_many("contacts", [kept, gone, "460000000099999"])
    assert set(found) == {kept}
    # Deleting again counts as done: the record is gone either way.
    [again] = await zoho.delete_many("contacts", [gone])
    assert again.ok


async def test_create_is_idempotent_by_reference(zoho: ZohoBooksConnector, reset_sandbox: Sandbox) -> None:
    first = await zoho.create_many("contacts", [Create("ref-1", {"contact_name": "Ada Lovelace"})])
    second = await zoho.create_many("contacts", [Create("ref-1", {"contact_name": "Ada Lovelace"})])
    assert first[0].ok and second[0].ok
    assert first[0].id == second[0].id
    assert not first[0].existed and second[0].existed
    refs = [r["cf_syncd_ref"] for r in live(reset_sandbox, "contacts").values()]
    assert refs == ["ref-1"]


async def test_writes_rebuild_vendor_json_from_flat_fields(zoho: ZohoBooksConnector) -> None:
    contact = await make_contact(
        zoho,
        "ref-w",
        **{
            "primary_contact.first_name": "Grace",
            "email": "grace@navy.mil",
            "billing_address.city": "Arlington",
            "company_name": "Navy",
        },
    )
    [ok] = await zoho.update_many(
        "contacts", [Update(contact, {"phone": "+15550100", "billing_address.zip": "22201"})]
    )
    assert ok.ok, ok.error
    record = (await zoho.get_many("contacts", [contact]))[contact]
    assert record.fields["email"] == "grace@navy.mil"
    assert record.fields["primary_contact.first_name"] == "Grace"
    assert record.fields["phone"] == "+15550100"
    assert record.fields["billing_address.city"] == "Arlington"
    assert record.fields["billing_address.zip"] == "22201"
    assert record.fields["cf_syncd_ref"] == "ref-w"

    lines: list[Mapping[str, FieldValue]] = [
        {"name": "Widget", "quantity": Decimal("3"), "rate": Decimal("19.99")}
    ]
    [inv] = await zoho.create_many(
        "invoices",
        [Create("ref-inv", {"customer_id": contact, "line_items": lines, "date": date(2025, 1, 6)})],
    )
    assert inv.ok, inv.error
    assert inv.id is not None
    invoice = (await zoho.get_many("invoices", [inv.id]))[inv.id]
    assert invoice.fields["total"] == Decimal("59.97")
    assert invoice.fields["reference_number"] == "ref-inv"
    assert invoice.fields["cf_syncd_ref"] == "ref-inv"
    assert invoice.fields["status"] == "draft"

    await zoho.act("invoices", inv.id, "sent")
    payment: dict[str, FieldValue] = {
        "customer_id": contact,
        "payment_mode": "cash",
        "amount": Decimal("20.00"),
        "date": date(2025, 1, 7),
        "invoices": [{"invoice_id": inv.id, "amount_applied": Decimal("20.00")}],
    }
    [pay] = await zoho.create_many("customerpayments", [Create("ref-pay", payment)])
    assert pay.ok, pay.error
    invoice = (await zoho.get_many("invoices", [inv.id]))[inv.id]
    assert invoice.fields["status"] == "partially_paid"
    assert invoice.fields["balance"] == Decimal("39.97")


async def test_invoice_actions_and_unknown_action(zoho: ZohoBooksConnector) -> None:
    contact = await make_contact(zoho, "ref-act")
    lines: list[Mapping[str, FieldValue]] = [{"name": "Service", "rate": Decimal("100")}]
    [inv] = await zoho.create_many(
        "invoices", [Create("ref-a1", {"customer_id": contact, "line_items": lines})]
    )
    assert inv.id is not None
    for action in ("sent", "void", "draft"):
        await zoho.act("invoices", inv.id, action)
        assert (await zoho.get_many("invoices", [inv.id]))[inv.id].fields["status"] == action
    try:
        await zoho.act("invoices", inv.id, "explode")
    except SkippableError as exc:
        assert "explode" in str(exc)
    else:
        raise AssertionError("an unknown action must be refused")
    # A status written as a field goes through the action endpoint.
    [upd] = await zoho.update_many("invoices", [Update(inv.id, {"status": "sent"})])
    assert upd.ok, upd.error
    assert (await zoho.get_many("invoices", [inv.id]))[inv.id].fields["status"] == "sent"


async def test_vendor_errors_are_typed_per_record(zoho: ZohoBooksConnector) -> None:
    [missing] = await zoho.update_many("contacts", [Update("460000000099999", {"notes": "x"})])
    assert isinstance(missing.error, NotFoundError)
    assert missing.error.vendor_code == "1002" and missing.error.record == "460000000099999"
    [bad] = await zoho.create_many("invoices", [Create("ref-bad", {"customer_id": "1", "line_items": []})])
    assert isinstance(bad.error, SkippableError)
    assert bad.error.vendor_message and bad.error.record == "ref-bad"
    [unwritable] = await zoho.update_many("contacts", [Update("1", {"outstanding_receivable_amount": 5})])
    assert isinstance(unwritable.error, SkippableError)


async def test_lookups_match_exactly_the_value_given(zoho: ZohoBooksConnector) -> None:
    tricky = ["o'brien@x.com", "a\\b@x.com", "50%_off@x.com"]
    decoys = ["obrien@x.com", "ab@x.com", "50x_off@x.com", "50%25_off@x.com", "a\\\\b@x.com"]
    ids = {}
    for n, email in enumerate(tricky + decoys):
        ids[email] = await make_contact(zoho, f"ref-l{n}", email=email)
    await make_contact(zoho, "ref-inj", contact_name="x' OR Name != '")
    await make_contact(zoho, "ref-inj2", contact_name="x")

    found = await zoho.find_by_field("contacts", "email", [*tricky, "O'Brien@X.com", "nobody@x.com"])
    for email in tricky:
        assert [r.id for r in found[email]] == [ids[email]]
    assert [r.id for r in found["O'Brien@X.com"]] == [
        ids["o'brien@x.com"]
    ]  # emails compare case-insensitively
    assert found["nobody@x.com"] == []

    names = await zoho.find_by_field("contacts", "contact_name", ["x' OR Name != '"])
    assert [r.fields["contact_name"] for r in names["x' OR Name != '"]] == ["x' OR Name != '"]


async def test_lookup_by_create_reference(zoho: ZohoBooksConnector) -> None:
    contact = await make_contact(zoho, "ref-c")
    other = await make_contact(zoho, "ref-c2")
    lines: list[Mapping[str, FieldValue]] = [{"name": "Thing", "rate": Decimal("5")}]
    [inv] = await zoho.create_many(
        "invoices", [Create("ref-i", {"customer_id": contact, "line_items": lines})]
    )
    by_ref = await zoho.find_by_field("contacts", "cf_syncd_ref", ["ref-c", "ref-c2", "ref-none"])
    assert [r.id for r in by_ref["ref-c"]] == [contact]
    assert [r.id for r in by_ref["ref-c2"]] == [other]
    assert by_ref["ref-none"] == []
    invoices = await zoho.find_by_field("invoices", "cf_syncd_ref", ["ref-i"])
    assert [r.id for r in invoices["ref-i"]] == [inv.id]
    assert "line_items" in invoices["ref-i"][0].missing  # a lookup answers list rows; get_many has the lines


async def test_describe_lists_documented_and_custom_fields(zoho: ZohoBooksConnector) -> None:
    await make_contact(zoho, "ref-d")
    fields = await zoho.describe("contacts")
    assert fields["contact_name"].required
    assert fields["cf_syncd_ref"].unique
    assert fields["billing_address.city"].updateable
    assert not fields["outstanding_receivable_amount"].updateable
    invoice_fields = await zoho.describe("invoices")
    assert invoice_fields["line_items"].type == "lines"
    assert await zoho.deletions("contacts", datetime.now(UTC)) is None


async def test_register_webhooks_is_left_to_workflow_rules_even_on_the_sandbox(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox
) -> None:
    # Zoho Books has no webhook registration API; the sandbox's targets are set from its side (--webhook-url).
    before = list(reset_sandbox.simulator("zohobooks").webhooks.targets)  # type: ignore[attr-defined]
    assert await zoho.register_webhooks("http://127.0.0.1:9/hooks/zoho", {}) is False
    assert reset_sandbox.simulator("zohobooks").webhooks.targets == before  # type: ignore[attr-defined]
