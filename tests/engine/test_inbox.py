"""The inbox dispatcher on the sandbox: a failing event backs off and is given up after its last attempt, an
unreadable one is given up at once, and events that keep failing never hold up newer ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from structlog.testing import capture_logs

from syncd.connectors.base import ChangeEvent
from syncd.engine.inbox import InboxDispatcher, InboxRound
from syncd.engine.scheduler import MappingLocks
from syncd.store import InboxEvent, InboxStore
from syncd.store.inbox import InboxRetryPolicy
from syncd.web.events import event_payload
from tests.engine.conftest import World

# Salesforce answers a query naming this id with MALFORMED_ID, every time: an event that can never succeed.
MALFORMED_SALESFORCE_ID = "not-an-id"


class Clock:
    """A clock the test moves by hand, so back-offs pass without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


def dispatcher(world: World, clock: Callable[[], datetime], **options: Any) -> InboxDispatcher:
    """A dispatcher over both shipped mappings (HubSpot and Salesforce each with Zoho Books)."""
    reconciler = world.reconciler("hubspot-zohobooks", "salesforce-zohobooks")
    return InboxDispatcher(world.db, reconciler, MappingLocks(), clock=clock, **options)


async def receive(world: World, connection: str, obj: str, record_id: str) -> str:
    """Store a change event the way the webhook receiver does; returns its event id."""
    event = ChangeEvent(f"evt-{uuid4().hex[:12]}", obj, record_id, "updated", datetime.now(UTC))
    assert await InboxStore(world.db).put(connection, event.event_id, event_payload(event))
    return event.event_id


async def inbox_event(world: World, event_id: str) -> InboxEvent:
    """One unprocessed or given-up event as it stands, due or not."""
    inbox = InboxStore(world.db)
    found = [e for e in await inbox.pending(1000, now=datetime.now(UTC) + timedelta(days=3650))
             if e.event_id == event_id]
    found += [e for e in await inbox.given_up(1000) if e.event_id == event_id]
    [event] = found
    return event


def salesforce_queries(world: World) -> int:
    """SOQL queries the Salesforce simulator has answered (how syncd fetches the records an event names)."""
    return sum(n for route, n in world.sandbox.salesforce.stats.requests.items() if "/query" in route)


async def test_a_failed_event_is_not_retried_before_its_back_off_and_is_after(world: World) -> None:
    clock = Clock()
    inbox = dispatcher(world, clock)
    poison = await receive(world, "sale", "Contact", MALFORMED_SALESFORCE_ID)

    assert await inbox.run_round() == InboxRound(failed=1)
    failed = await inbox_event(world, poison)
    assert failed.attempts == 1 and failed.last_error is not None and failed.next_attempt_at is not None
    # 5 s, shortened by at most the 20 % jitter.
    assert timedelta(seconds=4) <= failed.next_attempt_at - clock.now <= timedelta(seconds=5)

    queries = salesforce_queries(world)
    clock.advance(3.9)
    assert await inbox.run_round() == InboxRound()
    assert salesforce_queries(world) == queries, "the event was tried again before it was due"
    assert (await inbox_event(world, poison)).attempts == 1

    clock.advance(1.1)
    assert await inbox.run_round() == InboxRound(failed=1)
    assert salesforce_queries(world) > queries
    retried = await inbox_event(world, poison)
    assert retried.attempts == 2 and retried.next_attempt_at is not None
    # The second wait is about twice the first.
    assert timedelta(seconds=8) <= retried.next_attempt_at - clock.now <= timedelta(seconds=10)


async def test_after_its_last_attempt_an_event_is_given_up_and_logged_once(world: World) -> None:
    clock = Clock()
    inbox = dispatcher(world, clock, retry=InboxRetryPolicy(max_attempts=3))
    poison = await receive(world, "sale", "Contact", MALFORMED_SALESFORCE_ID)

    with capture_logs() as logs:
        assert await inbox.run_round() == InboxRound(failed=1)
        clock.advance(5)
        assert await inbox.run_round() == InboxRound(failed=1)
        clock.advance(10)
        assert await inbox.run_round() == InboxRound(failed=1, gave_up=1)
        # Given up for good: no later round reads it again, however long after.
        clock.advance(24 * 3600)
        queries = salesforce_queries(world)
        assert await inbox.run_round() == InboxRound()
        assert salesforce_queries(world) == queries

    gone = await inbox_event(world, poison)
    assert gone.gave_up and gone.attempts == 3 and gone.processed_at is not None
    assert [e.event_id for e in await InboxStore(world.db).given_up()] == [poison]
    [error] = [line for line in logs if line["log_level"] == "error"]
    assert error["event"].startswith("inbox event given up")
    assert (error["connection"], error["event_id"], error["attempts"]) == ("sale", poison, 3)
    assert error["error"] == gone.last_error


async def test_an_unreadable_payload_is_given_up_at_once(world: World) -> None:
    inbox = dispatcher(world, Clock())
    store = InboxStore(world.db)
    await store.put("hubs", "garbled", {"kind": "teleported", "object": "contacts"})
    await store.put("hubs", "truncated", {"kind": "updated", "object": "contacts"})

    with capture_logs() as logs:
        assert await inbox.run_round() == InboxRound(gave_up=2)
    assert await store.pending(now=datetime.now(UTC) + timedelta(days=1)) == []
    given_up = {e.event_id: e for e in await store.given_up()}
    assert set(given_up) == {"garbled", "truncated"}
    assert all(e.attempts == 1 for e in given_up.values())
    assert "unknown change kind 'teleported'" in (given_up["garbled"].last_error or "")
    assert "malformed payload" in (given_up["truncated"].last_error or "")
    assert sorted(line["event_id"] for line in logs if line["log_level"] == "error") == ["garbled", "truncated"]


async def test_events_that_keep_failing_do_not_hold_up_a_newer_good_one(world: World) -> None:
    clock = Clock()
    limit = 3
    inbox = dispatcher(world, clock, round_limit=limit)
    for _ in range(limit + 1):
        await receive(world, "sale", "Contact", MALFORMED_SALESFORCE_ID)
    hub_id = await world.hubspot.put(
        "contacts", {"email": "newer@example.com", "firstname": "Nora", "lastname": "Newer"}
    )
    good = await receive(world, "hubs", "contacts", hub_id)

    # A full round of failing events: the good one does not fit in it...
    assert await inbox.run_round() == InboxRound(failed=limit)
    # ...and is in the very next one, with the last failing event; the others are backing off.
    assert await inbox.run_round() == InboxRound(processed=1, failed=1)
    [customer] = await world.zoho.all("contacts")
    assert customer["primary_contact.email"] == "newer@example.com"
    later = datetime.now(UTC) + timedelta(days=1)
    assert good not in [e.event_id for e in await InboxStore(world.db).pending(now=later)]

    # Once their back-off has passed, the failing ones are tried again, a round's worth at a time.
    clock.advance(5)
    assert [await inbox.run_round() for _ in range(3)] == [InboxRound(failed=limit), InboxRound(failed=1), InboxRound()]


async def test_events_waiting_for_a_dead_grant_do_not_crowd_out_the_others(world: World) -> None:
    limit = 3
    # Salesforce's grant died: its events can only wait, however many pile up.
    inbox = dispatcher(world, Clock(), round_limit=limit, usable=lambda connection: connection != "sale")
    waiting = [await receive(world, "sale", "Contact", f"003{n:012d}") for n in range(limit + 2)]
    hub_id = await world.hubspot.put(
        "contacts", {"email": "meanwhile@example.com", "firstname": "Mae", "lastname": "Anwhile"}
    )
    await receive(world, "hubs", "contacts", hub_id)

    assert await inbox.run_round() == InboxRound(processed=1)
    [customer] = await world.zoho.all("contacts")
    assert customer["primary_contact.email"] == "meanwhile@example.com"
    # Untouched, still pending, not counted as attempts: they go once the grant is back.
    still = [await inbox_event(world, event_id) for event_id in waiting]
    assert [(e.attempts, e.next_attempt_at, e.processed_at) for e in still] == [(0, None, None)] * len(waiting)


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_wake_ups_do_not_retry_an_event_before_it_is_due(world: World) -> None:
    # The dispatcher running in the background as the daemon runs it; time stands still for the test.
    inbox = dispatcher(world, Clock(), interval_s=3600)
    poison = await receive(world, "sale", "Contact", MALFORMED_SALESFORCE_ID)
    inbox.start()
    try:
        await eventually(lambda: inbox.rounds_completed >= 1, "the first round")
        assert (await inbox_event(world, poison)).attempts == 1
        queries = salesforce_queries(world)
        # Webhooks keep arriving, each waking the dispatcher: they are processed, the failed event is not due.
        for n in range(3):
            rounds = inbox.rounds_completed
            await receive(world, "hubs", "contacts", f"gone-{n}")
            inbox.wake()
            await eventually(lambda rounds=rounds: inbox.rounds_completed > rounds, "a woken round")
            assert await InboxStore(world.db).pending() == []
        assert salesforce_queries(world) == queries
        assert (await inbox_event(world, poison)).attempts == 1
    finally:
        await inbox.stop()


async def test_a_requeued_event_is_tried_again_on_the_next_round(world: World) -> None:
    clock = Clock()
    inbox = dispatcher(world, clock, retry=InboxRetryPolicy(max_attempts=1))
    poison = await receive(world, "sale", "Contact", MALFORMED_SALESFORCE_ID)
    assert await inbox.run_round() == InboxRound(failed=1, gave_up=1)
    given_up = await inbox_event(world, poison)
    assert given_up.gave_up and given_up.processed_at is not None
    clock.advance(24 * 3600)
    queries = salesforce_queries(world)
    assert await inbox.run_round() == InboxRound()
    assert salesforce_queries(world) == queries

    # What `syncd inbox retry ID` does: the very next round fetches it again, with the whole retry policy.
    await InboxStore(world.db).requeue([given_up.id])
    assert await inbox.run_round() == InboxRound(failed=1, gave_up=1)
    assert salesforce_queries(world) > queries
    again = await inbox_event(world, poison)
    assert (again.gave_up, again.attempts) == (True, 1)
    # Given up anew, a day after the first time.
    assert again.processed_at is not None and again.processed_at > given_up.processed_at


async def test_an_event_given_up_during_an_outage_syncs_its_change_once_requeued(world: World) -> None:
    inbox = dispatcher(world, Clock())
    hub_id = await world.hubspot.put(
        "contacts", {"email": "requeued@example.com", "firstname": "Rex", "lastname": "Queued"}
    )
    event_id = await receive(world, "hubs", "contacts", hub_id)
    # The state ten failed attempts during a Zoho Books outage leave (the failing itself is tested above).
    store = InboxStore(world.db)
    stuck = await inbox_event(world, event_id)
    await store.give_up(stuck.id, "Zoho Books 503: service unavailable")
    assert await inbox.run_round() == InboxRound()
    assert await world.zoho.all("contacts") == []

    # The operator requeues that connection's given-up events once the outage is over.
    assert await store.requeue_given_up(connection="hubs") == 1
    assert await inbox.run_round() == InboxRound(processed=1)
    [customer] = await world.zoho.all("contacts")
    assert customer["primary_contact.email"] == "requeued@example.com"
    assert await store.given_up() == [] and await store.pending() == []
