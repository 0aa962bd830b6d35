"""The inbox's retries: a failed event waits out an exponential back-off, and is given up after too many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.store import Database, InboxStore, StoreConflictError, StoreNotFoundError
from syncd.store.columns import UTCDateTime
from syncd.store.inbox import InboxRetryPolicy
from syncd.store.schema import head_revision, schema_state, upgrade, upgrade_database
from syncd.store.tables import INBOX

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def no_jitter(database: Database, **policy: Any) -> InboxStore:
    """An inbox whose back-off always takes the full delay, so times are exact."""
    return InboxStore(database, InboxRetryPolicy(**policy), draw=lambda: 0.0)


async def test_a_failed_event_is_not_pending_until_its_back_off_has_passed(database: Database) -> None:
    inbox = no_jitter(database)
    await inbox.put("hub", "bad", {"n": 1})
    await inbox.put("hub", "good", {"n": 2})
    [bad, good] = await inbox.pending(now=T0)

    failed = await inbox.mark_failed(bad.id, "HubSpot 502", now=T0)
    assert (failed.attempts, failed.last_error, failed.next_attempt_at) == (1, "HubSpot 502", T0 + timedelta(seconds=5))
    # The events beside it are unaffected.
    assert [e.event_id for e in await inbox.pending(now=T0)] == ["good"]
    assert [e.event_id for e in await inbox.pending(now=T0 + timedelta(seconds=4.9))] == ["good"]
    # Due again: back in arrival order, with its history.
    [again, _] = await inbox.pending(now=T0 + timedelta(seconds=5))
    assert (again.event_id, again.attempts, again.last_error) == ("bad", 1, "HubSpot 502")
    # Still counted as waiting (the metrics gauge) while it backs off.
    assert await InboxStore(database).pending_count() == 2
    assert good.attempts == 0 and good.next_attempt_at is None


async def test_the_back_off_doubles_from_5_s_and_is_capped_at_15_min(database: Database) -> None:
    inbox = no_jitter(database, max_attempts=12)
    await inbox.put("hub", "e", {})
    [event] = await inbox.pending(now=T0)
    waits = []
    now = T0
    for _ in range(11):
        failed = await inbox.mark_failed(event.id, "timeout", now=now)
        assert failed.next_attempt_at is not None
        waits.append((failed.next_attempt_at - now).total_seconds())
        now = failed.next_attempt_at
    assert waits == [5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]


async def test_jitter_only_shortens_a_delay_and_never_below_the_previous_one(database: Database) -> None:
    inbox = InboxStore(database, InboxRetryPolicy(max_attempts=12))  # the real random draw
    await inbox.put("hub", "e", {})
    [event] = await inbox.pending(now=T0)
    full = [5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]
    previous = 0.0
    for ceiling in full:
        failed = await inbox.mark_failed(event.id, "timeout", now=T0)
        assert failed.next_attempt_at is not None
        wait = (failed.next_attempt_at - T0).total_seconds()
        assert 0.8 * ceiling <= wait <= ceiling
        if ceiling < 900:
            assert wait > previous
        previous = wait


def test_a_retry_policy_that_makes_no_sense_is_refused() -> None:
    bad: dict[str, Any]
    for bad in ({"first_delay_s": 0}, {"first_delay_s": 60, "max_delay_s": 30}, {"max_attempts": 0},
                {"jitter": 1.0}, {"jitter": -0.1}):
        with pytest.raises(ValueError):
            InboxRetryPolicy(**bad)


async def test_after_the_last_attempt_the_event_is_given_up_not_processed(database: Database) -> None:
    inbox = no_jitter(database, max_attempts=3)
    await inbox.put("hub", "poison", {"n": 1})
    await inbox.put("hub", "fine", {"n": 2})
    [poison, fine] = await inbox.pending(now=T0)
    for attempt in (1, 2):
        assert (await inbox.mark_failed(poison.id, f"HubSpot 500 #{attempt}", now=T0)).gave_up is False
    last = await inbox.mark_failed(poison.id, "HubSpot 500 #3", now=T0)
    assert (last.attempts, last.gave_up, last.processed_at, last.next_attempt_at) == (3, True, T0, None)

    # Gone from the queue for good, and from the gauge; the operators' list has it with the reason.
    assert [e.event_id for e in await inbox.pending(now=T0 + timedelta(days=365))] == ["fine"]
    assert await InboxStore(database).pending_count() == 1
    [listed] = await inbox.given_up()
    assert (listed.connection, listed.event_id, listed.last_error) == ("hub", "poison", "HubSpot 500 #3")
    assert await inbox.given_up(connection="other") == []
    # A processed event is not mistaken for a given-up one.
    await inbox.mark_processed([fine.id])
    assert [e.event_id for e in await inbox.given_up()] == ["poison"]
    # Neither can fail again: they are no longer pending.
    for done in (poison, fine):
        with pytest.raises(StoreNotFoundError, match="no longer pending"):
            await inbox.mark_failed(done.id, "late", now=T0)


async def test_give_up_stops_retrying_at_once(database: Database) -> None:
    inbox = InboxStore(database)
    await inbox.put("hub", "garbled", {"kind": "???"})
    [event] = await inbox.pending()
    gone = await inbox.give_up(event.id, "unknown change kind '???'")
    assert (gone.attempts, gone.gave_up, gone.next_attempt_at) == (1, True, None)
    assert gone.processed_at is not None
    assert await inbox.pending(now=datetime.now(UTC) + timedelta(days=1)) == []
    assert [e.event_id for e in await inbox.given_up()] == ["garbled"]


async def test_retry_now_makes_the_named_connections_backing_off_events_due_and_no_others(
    database: Database,
) -> None:
    inbox = no_jitter(database)
    for connection, name in (("hub", "waiting"), ("hub", "garbled"), ("sf", "elsewhere")):
        await inbox.put(connection, name, {})
    waiting, garbled, elsewhere = await inbox.pending(now=T0)
    await inbox.mark_failed(waiting.id, "Zoho Books grant revoked", now=T0)
    await inbox.give_up(garbled.id, "unreadable", now=T0)
    await inbox.mark_failed(elsewhere.id, "Salesforce 503", now=T0)  # another vendor's outage: its back-off stands
    assert await inbox.pending(now=T0) == []

    assert await inbox.retry_now(["hub", "books"]) == 1
    [due] = await inbox.pending(now=T0)
    assert (due.event_id, due.attempts, due.next_attempt_at) == ("waiting", 1, None)
    assert [e.event_id for e in await inbox.given_up()] == ["garbled"]


async def test_given_up_events_are_listed_most_recent_first(database: Database) -> None:
    inbox = InboxStore(database)
    for name in ("a", "b", "c"):
        await inbox.put("zoho", name, {})
    events = await inbox.pending()
    for hours, event in zip((1, 3, 2), events, strict=True):
        await inbox.give_up(event.id, "bad", now=T0 + timedelta(hours=hours))
    assert [e.event_id for e in await inbox.given_up()] == ["b", "c", "a"]
    assert [e.event_id for e in await inbox.given_up(limit=1)] == ["b"]


# The inbox table as revision 0001 created it, to write rows the way an older syncd did.
INBOX_0001 = sa.table(
    "inbox",
    sa.column("connection", sa.String()),
    sa.column("event_id", sa.String()),
    sa.column("payload", sa.JSON()),
    sa.column("received_at", UTCDateTime()),
    sa.column("processed_at", UTCDateTime()),
    sa.column("attempts", sa.Integer()),
    sa.column("last_error", sa.Text()),
)


async def test_upgrading_a_0001_store_keeps_its_pending_events_due(empty_database: Database, database_url: str) -> None:
    await upgrade_database(empty_database, "0001")
    rows = [
        {"connection": "hub", "event_id": "new", "payload": {"n": 1}, "received_at": T0, "processed_at": None,
         "attempts": 0, "last_error": None},
        {"connection": "hub", "event_id": "failing", "payload": {"n": 2}, "received_at": T0, "processed_at": None,
         "attempts": 4, "last_error": "HubSpot 502"},
        {"connection": "books", "event_id": "done", "payload": {"n": 3}, "received_at": T0, "processed_at": T0,
         "attempts": 0, "last_error": None},
    ]
    async with empty_database.engine.begin() as conn:
        await conn.execute(sa.insert(INBOX_0001), rows)
    assert (await schema_state(empty_database)).current == "0001"

    # What `syncd db upgrade` runs.
    assert (await upgrade(database_url)).current == head_revision()

    inbox = InboxStore(empty_database)
    pending = await inbox.pending()
    assert [(e.event_id, e.attempts, e.last_error, e.next_attempt_at, e.gave_up) for e in pending] == [
        ("new", 0, None, None, False),
        ("failing", 4, "HubSpot 502", None, False),
    ]
    assert await inbox.given_up() == []
    # The old events take part in the new retries.
    assert (await inbox.mark_failed(pending[1].id, "HubSpot 503")).attempts == 5
    assert [e.event_id for e in await inbox.pending()] == ["new"]


async def given_up_and_processed(inbox: InboxStore) -> tuple[int, int, int, int]:
    """Four events of connection `hub` (and one of `zoho`): two given up, one processed, one still pending."""
    for name in ("poison", "garbled", "fine", "waiting"):
        await inbox.put("hub", name, {"n": name})
    await inbox.put("zoho", "other", {})
    poison, garbled, fine, waiting, other = await inbox.pending(now=T0)
    await inbox.mark_failed(poison.id, "HubSpot 500 #1", now=T0)
    await inbox.mark_failed(poison.id, "HubSpot 500 #2", now=T0)
    await inbox.give_up(garbled.id, "unknown change kind", now=T0)
    await inbox.give_up(poison.id, "HubSpot 500 #3", now=T0 + timedelta(hours=1))
    await inbox.give_up(other.id, "Zoho Books 500", now=T0 + timedelta(hours=2))
    await inbox.mark_processed([fine.id])
    return poison.id, garbled.id, fine.id, waiting.id


async def test_a_requeued_event_is_due_at_once_with_its_attempts_from_zero(database: Database) -> None:
    inbox = no_jitter(database, max_attempts=3)
    poison, _, _, _ = await given_up_and_processed(inbox)
    assert await inbox.given_up_count() == 3

    [requeued] = await inbox.requeue([poison])
    assert (requeued.id, requeued.attempts, requeued.gave_up, requeued.processed_at, requeued.next_attempt_at) == (
        poison, 0, False, None, None
    )
    # The reason it was given up stays visible until the next attempt replaces it.
    assert requeued.last_error == "HubSpot 500 #3"
    assert [e.event_id for e in await inbox.pending(now=T0)] == ["poison", "waiting"]
    assert [e.event_id for e in await inbox.given_up()] == ["other", "garbled"]
    assert await inbox.given_up_count() == 2
    assert await InboxStore(database).pending_count() == 2

    # It gets the whole retry policy again: three more attempts before it is given up a second time.
    for attempt in (1, 2):
        assert (await inbox.mark_failed(poison, f"HubSpot 502 #{attempt}", now=T0)).gave_up is False
    again = await inbox.mark_failed(poison, "HubSpot 502 #3", now=T0)
    assert (again.attempts, again.gave_up, again.last_error) == (3, True, "HubSpot 502 #3")


async def test_requeue_is_all_or_nothing_and_says_why(database: Database) -> None:
    inbox = no_jitter(database)
    poison, garbled, fine, waiting = await given_up_and_processed(inbox)
    before = await inbox.events("all")

    with pytest.raises(StoreNotFoundError, match=r"inbox event 9999 does not exist"):
        await inbox.requeue([poison, 9999])
    with pytest.raises(StoreConflictError, match=rf"inbox event {fine} was processed, not given up"):
        await inbox.requeue([garbled, fine])
    with pytest.raises(StoreConflictError, match=rf"inbox event {waiting} is still pending, not given up"):
        await inbox.requeue([waiting])
    # None of the good ids named beside a bad one was requeued.
    assert await inbox.events("all") == before

    # Twice the same id is one event; the second requeue finds it no longer given up.
    assert [e.id for e in await inbox.requeue([garbled, poison, garbled])] == sorted([poison, garbled])
    with pytest.raises(StoreConflictError, match="still pending"):
        await inbox.requeue([poison])
    assert await inbox.requeue([]) == []


async def test_requeue_given_up_takes_every_one_or_one_connections(database: Database) -> None:
    inbox = no_jitter(database)
    await given_up_and_processed(inbox)
    assert await inbox.requeue_given_up(connection="nobody") == 0
    assert await inbox.requeue_given_up(connection="zoho") == 1
    assert {(e.connection, e.event_id) for e in await inbox.given_up()} == {("hub", "poison"), ("hub", "garbled")}
    assert await inbox.requeue_given_up() == 2
    assert await inbox.given_up() == [] and await inbox.given_up_count() == 0
    # The normally processed event stays processed.
    assert sorted(e.event_id for e in await inbox.pending(now=T0)) == ["garbled", "other", "poison", "waiting"]
    assert await inbox.requeue_given_up() == 0


async def test_events_are_listed_by_status_for_operators(database: Database) -> None:
    inbox = no_jitter(database)
    await given_up_and_processed(inbox)
    await inbox.mark_failed((await inbox.events("pending"))[0].id, "timeout", now=T0)  # backing off: still listed
    assert [e.event_id for e in await inbox.events("pending")] == ["waiting"]
    assert [e.event_id for e in await inbox.events("given_up")] == ["other", "poison", "garbled"]
    assert [e.event_id for e in await inbox.events("given_up", connection="hub")] == ["poison", "garbled"]
    everything = [e.event_id for e in await inbox.events("all")]
    assert everything == ["other", "waiting", "fine", "garbled", "poison"]
    assert [e.event_id for e in await inbox.events("all", limit=2, offset=1)] == ["waiting", "fine"]


async def test_pruning_deletes_only_events_processed_before_the_cutoff(database: Database) -> None:
    inbox = no_jitter(database, max_attempts=1)
    for event_id in ("old-done", "new-done", "old-given-up", "waiting"):
        await inbox.put("hub", event_id, {})
    by_id = {e.event_id: e for e in await inbox.pending(now=T0)}
    await inbox.mark_processed([by_id["old-done"].id, by_id["new-done"].id])
    await inbox.give_up(by_id["old-given-up"].id, "HubSpot 400", now=T0)
    async with database.transaction() as session:
        for event_id, processed in (("old-done", T0 - timedelta(days=8)), ("new-done", T0 - timedelta(days=6)),
                                    ("old-given-up", T0 - timedelta(days=30))):
            await session.execute(sa.update(INBOX).where(INBOX.c.event_id == event_id).values(processed_at=processed))
    assert await inbox.prune_processed(T0 - timedelta(days=7)) == 1
    assert await inbox.prune_processed(T0 - timedelta(days=7)) == 0
    async with database.engine.connect() as conn:
        left = sorted((await conn.execute(sa.text("SELECT event_id FROM inbox"))).scalars())
    # The given-up event stays for an operator to retry; the pending one is still to be done.
    assert left == ["new-done", "old-given-up", "waiting"]
