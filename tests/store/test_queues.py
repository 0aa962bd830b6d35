"""Inbox, cursors, dead letters, connection state and the audit log: durable, de-duplicated, upserted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syncd.store import (
    AuditLog,
    ConnectionStore,
    CursorStore,
    Database,
    DeadLetterStore,
    InboxStore,
    StoreNotFoundError,
)


async def test_duplicate_webhook_event_is_stored_once(database: Database) -> None:
    inbox = InboxStore(database)
    assert await inbox.put("hubspot", "evt-1", {"objectId": 101}) is True
    assert await inbox.put("hubspot", "evt-1", {"objectId": 101}) is False
    # The same event id from another connection is a different event.
    assert await inbox.put("hubspot-eu", "evt-1", {"objectId": 7}) is True
    pending = await inbox.pending()
    assert [(e.connection, e.event_id) for e in pending] == [("hubspot", "evt-1"), ("hubspot-eu", "evt-1")]
    assert pending[0].payload == {"objectId": 101}


async def test_processed_events_leave_the_queue_failed_ones_stay(database: Database) -> None:
    inbox = InboxStore(database)
    for n in range(3):
        await inbox.put("zoho", f"e{n}", {"n": n})
    first, second, third = await inbox.pending()
    assert await inbox.mark_processed([first.id, third.id]) == 2
    assert await inbox.mark_processed([first.id]) == 0
    assert (await inbox.mark_failed(second.id, "HubSpot 502")).attempts == 1
    assert (await inbox.mark_failed(second.id, "HubSpot 503")).attempts == 2
    # A failed event backs off (tests/store/test_inbox.py): look an hour ahead, when it is due again.
    (left,) = await inbox.pending(now=datetime.now(UTC) + timedelta(hours=1))
    assert (left.event_id, left.attempts, left.last_error) == ("e1", 2, "HubSpot 503")
    assert await inbox.pending(connection="other") == []
    with pytest.raises(StoreNotFoundError):
        await inbox.mark_failed(999_999, "x")


async def test_cursor_upsert_overwrites(database: Database) -> None:
    cursors = CursorStore(database)
    assert await cursors.get("hubspot", "contact") is None
    await cursors.set("hubspot", "contact", "1000")
    await cursors.set("hubspot", "contact", "2000")
    await cursors.set("hubspot", "deal", "5")
    assert await cursors.get("hubspot", "contact") == "2000"
    assert await cursors.get("hubspot", "deal") == "5"


async def test_parking_a_record_again_counts_attempts_on_one_row(database: Database) -> None:
    letters = DeadLetterStore(database)
    now = datetime.now(UTC)
    await letters.park("zoho", "m", "invoice", "accounting", "INV-1", "bad tax", next_attempt_at=now)
    again = await letters.park(
        "zoho", "m", "invoice", "accounting", "INV-1", "still bad", next_attempt_at=now + timedelta(hours=1)
    )
    assert (again.attempts, again.error) == (2, "still bad")
    assert [d.record_id for d in await letters.list()] == ["INV-1"]
    await letters.park("zoho", "m", "invoice", "accounting", "INV-2", "x", next_attempt_at=now - timedelta(1))
    await letters.park("zoho", "m", "invoice", "accounting", "INV-3", "needs a person", next_attempt_at=None)
    assert [d.record_id for d in await letters.due(now)] == ["INV-2"]
    assert await letters.clear("m", "invoice", "accounting", "INV-2") is True
    assert await letters.clear("m", "invoice", "accounting", "INV-2") is False
    assert {d.record_id for d in await letters.list(object="invoice")} == {"INV-1", "INV-3"}


async def test_of_records_names_only_the_asked_records_of_one_mapping_object_and_side(
    database: Database,
) -> None:
    letters = DeadLetterStore(database)
    now = datetime.now(UTC)
    await letters.park("hub", "m", "customer", "crm", "1", "ambiguous match", next_attempt_at=None)
    await letters.park("hub", "m", "customer", "crm", "2", "HubSpot 503", next_attempt_at=now,
                       error_class="transient", error_code="503", error_message="Service Unavailable")
    await letters.park("hub", "m", "customer", "accounting", "1", "duplicate", next_attempt_at=None)  # other side
    await letters.park("hub", "other", "customer", "crm", "3", "duplicate", next_attempt_at=None)  # other mapping
    await letters.park("hub", "m", "customer", "crm", "4", "duplicate", next_attempt_at=None)
    asked = ["1", "2", "3", "4", *(str(n) for n in range(100, 1300))]  # more than one chunk of ids
    found = await letters.of_records("m", "customer", "crm", asked)
    assert {k: v.error for k, v in found.items()} == {"1": "ambiguous match", "2": "HubSpot 503", "4": "duplicate"}
    assert (found["2"].error_class, found["2"].error_code, found["2"].error_message) == (
        "transient", "503", "Service Unavailable"
    )
    assert await letters.of_records("m", "customer", "crm", []) == {}


async def test_requeue_makes_letters_due_all_or_nothing(database: Database) -> None:
    letters = DeadLetterStore(database)
    later = datetime.now(UTC) + timedelta(hours=1)
    held = await letters.park("zoho", "m", "customer", "crm", "1", "refused", next_attempt_at=None)
    backing_off = await letters.park("zoho", "m", "invoice", "crm", "2", "429", next_attempt_at=later)
    assert await letters.due() == []
    with pytest.raises(StoreNotFoundError, match="dead letter 999 does not exist"):
        await letters.requeue([held.id, 999])
    assert await letters.due() == []  # the known one was not requeued either
    [requeued] = await letters.requeue([held.id])
    assert requeued.next_attempt_at is not None and requeued.attempts == 1
    assert [d.id for d in await letters.due()] == [held.id]
    assert await letters.requeue_all(object="invoice") == 1
    assert {d.id for d in await letters.due()} == {held.id, backing_off.id}
    assert (await letters.get(backing_off.id)).error == "429"
    with pytest.raises(StoreNotFoundError):
        await letters.get(999)


async def test_connection_status_survives_ensure(database: Database) -> None:
    connections = ConnectionStore(database)
    assert (await connections.ensure("zoho", "zohobooks")).status == "ok"
    await connections.set_status("zoho", "needs_reauth", "invalid_grant: refresh token revoked")
    again = await connections.ensure("zoho", "zohobooks")
    assert (again.status, again.last_error) == ("needs_reauth", "invalid_grant: refresh token revoked")
    await connections.ensure("hubspot", "hubspot")
    assert [(c.name, c.status) for c in await connections.list()] == [("hubspot", "ok"), ("zoho", "needs_reauth")]
    assert (await connections.set_status("zoho", "ok")).last_error is None
    with pytest.raises(StoreNotFoundError):
        await connections.set_status("nobody", "disabled")
    assert await connections.get("nobody") is None


async def test_audit_lists_newest_first_with_fields(database: Database) -> None:
    audit = AuditLog(database)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await audit.record("hubspot", "contact", "101", {"phone": None}, {"phone": "+44"}, "from zoho", at=t0)
    await audit.record("zohobooks", "contact", "Z-1", {}, {"email": "a@x"}, "create", at=t0 + timedelta(1))
    entries = await audit.list()
    assert [e.record_id for e in entries] == ["Z-1", "101"]
    assert entries[1].fields_before == {"phone": None} and entries[1].fields_after == {"phone": "+44"}
    assert entries[1].at == t0
    assert [e.cause for e in await audit.list(system="hubspot", record_id="101")] == ["from zoho"]


async def test_a_pair_letter_is_taken_over_with_its_attempts(database: Database) -> None:
    letters = DeadLetterStore(database)
    await letters.park("hub", "m", "customer", "crm", "1", "refused", next_attempt_at=None, counterpart_id="Z1")
    await letters.park("hub", "m", "customer", "crm", "1", "refused", next_attempt_at=None, counterpart_id="Z1")
    assert await letters.take("m", "customer", "crm", "1", counterpart_id="Z9") is None  # another pair's
    taken = await letters.take("m", "customer", "crm", "1", counterpart_id="Z1")
    assert taken is not None and taken.attempts == 2
    again = await letters.park("zoho", "m", "customer", "accounting", "Z1", "refused", next_attempt_at=None,
                               counterpart_id="1", earlier_attempts=taken.attempts)
    assert again.attempts == 3
    assert [d.record_id for d in await letters.list()] == ["Z1"]
