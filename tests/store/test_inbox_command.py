"""`syncd inbox`: what an operator sees of the webhook inbox, requeueing given-up events, and the exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.store import Database, InboxStore, upgrade_database
from tests.store.test_reports import Syncd, write_config

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LONG_ERROR = "Zoho Books 500: " + "the server had a very bad day, " * 10 + "THE END"


@pytest.fixture
def syncd(database_url: str, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Syncd:
    """`syncd` pointed at the migrated test store."""
    return Syncd(write_config(tmp_path, database_url), capsys)


async def seed(database: Database) -> dict[str, int]:
    """Inbox ids by event id: `stuck` (HubSpot, given up after 3 failures), `garbled` (Zoho, unreadable),
    `waiting` (backing off), `new` (due) and `done` (processed)."""
    inbox = InboxStore(database, draw=lambda: 0.0)  # no jitter: the back-off's end is exact
    await inbox.put("hubs", "stuck", {"kind": "updated", "object": "contacts", "record_id": "101"})
    await inbox.put("zoho", "garbled", {"kind": "teleported", "object": "invoices"})
    await inbox.put("hubs", "waiting", {"kind": "deleted", "object": "deals", "record_id": "D-7"})
    await inbox.put("hubs", "new", {"kind": "created", "object": "contacts", "record_id": "102"})
    await inbox.put("hubs", "done", {"kind": "updated", "object": "contacts", "record_id": "103"})
    ids = {e.event_id: e.id for e in await inbox.pending(now=T0)}
    for attempt in (1, 2):
        await inbox.mark_failed(ids["stuck"], f"HubSpot 502 #{attempt}", now=T0)
    await inbox.give_up(ids["stuck"], "HubSpot 502 #3", now=T0 + timedelta(minutes=1))
    await inbox.give_up(ids["garbled"], LONG_ERROR, now=T0 + timedelta(minutes=2))
    await inbox.mark_failed(ids["waiting"], "timeout", now=T0)
    await inbox.mark_processed([ids["done"]])
    return ids


async def test_given_up_events_are_listed_with_their_last_error(syncd: Syncd, database: Database) -> None:
    ids = await seed(database)
    code, out, _ = await syncd("inbox", "list", "--status", "given-up", "--json")
    assert code == 0
    listed = json.loads(out)
    # Latest given up first, the whole error and payload kept.
    assert [(e["id"], e["status"], e["attempts"]) for e in listed] == [
        (ids["garbled"], "given_up", 1),
        (ids["stuck"], "given_up", 3),
    ]
    assert listed[0]["last_error"] == LONG_ERROR
    assert listed[1]["payload"] == {"kind": "updated", "object": "contacts", "record_id": "101"}
    assert listed[1]["processed_at"].startswith("2026-12-01T09:01:00")

    code, out, _ = await syncd("inbox", "list", "--status", "given-up")
    assert code == 0
    assert "updated contacts 101" in out and "teleported invoices" in out
    assert "given up 2026-12-01T09:01:00" in out and "HubSpot 502 #3" in out
    # The table cuts a long error; JSON has it whole.
    assert "Zoho Books 500: the server" in out and "THE END" not in out
    assert "waiting" not in out and "done" not in out


async def test_pending_events_by_default_all_events_and_one_connections(syncd: Syncd, database: Database) -> None:
    ids = await seed(database)
    # What is waiting is what an operator asks about first: listed without any option.
    for args in ((), ("--status", "pending")):
        code, out, _ = await syncd("inbox", "list", *args, "--json")
        assert code == 0
        assert [(e["event_id"], e["status"]) for e in json.loads(out)] == [("waiting", "pending"), ("new", "pending")]
    code, out, _ = await syncd("inbox", "list")
    assert "deleted deals D-7" in out and "due 2026-12-01T09:00:05" in out and "timeout" in out
    assert "due now" in out

    code, out, _ = await syncd("inbox", "list", "--status", "all", "--json")
    assert {e["event_id"]: e["status"] for e in json.loads(out)} == {
        "stuck": "given_up", "garbled": "given_up", "waiting": "pending", "new": "pending", "done": "processed"
    }
    code, out, _ = await syncd("inbox", "list", "--status", "all", "--connection", "zoho", "--json")
    assert [e["id"] for e in json.loads(out)] == [ids["garbled"]]
    code, out, _ = await syncd("inbox", "list", "--status", "all", "--limit", "2", "--json")
    assert [e["event_id"] for e in json.loads(out)] == ["done", "new"]
    code, out, _ = await syncd("inbox", "list", "--connection", "nowhere")
    assert (code, out.strip()) == (0, "no pending inbox events for connection nowhere")


async def test_retry_requeues_the_named_events(syncd: Syncd, database: Database) -> None:
    ids = await seed(database)
    code, out, _ = await syncd("inbox", "retry", str(ids["stuck"]), str(ids["garbled"]))
    assert code == 0
    assert out.startswith(f"requeued 2 given-up events ({ids['stuck']}, {ids['garbled']})")
    assert "next inbox round" in out
    inbox = InboxStore(database)
    assert await inbox.given_up() == []
    due = {e.event_id: e for e in await inbox.pending(now=T0)}
    assert set(due) == {"stuck", "garbled", "new"}
    assert (due["stuck"].attempts, due["stuck"].last_error, due["stuck"].next_attempt_at) == (0, "HubSpot 502 #3", None)


async def test_retry_all_given_up_of_one_connection_or_all(syncd: Syncd, database: Database) -> None:
    await seed(database)
    code, out, _ = await syncd("inbox", "retry", "--all-given-up", "--connection", "zoho")
    assert (code, out.split(";")[0]) == (0, "requeued 1 given-up event of connection zoho")
    assert [e.event_id for e in await InboxStore(database).given_up()] == ["stuck"]
    code, out, _ = await syncd("inbox", "retry", "--all-given-up")
    assert (code, out.split(";")[0]) == (0, "requeued 1 given-up event")
    code, out, _ = await syncd("inbox", "retry", "--all-given-up")
    assert (code, out.strip()) == (0, "no given-up events to requeue")


async def test_retrying_an_unknown_or_not_given_up_event_changes_nothing_exit_1(
    syncd: Syncd, database: Database
) -> None:
    ids = await seed(database)
    before = await InboxStore(database).events("all")
    code, out, err = await syncd("inbox", "retry", str(ids["stuck"]), "9999")
    assert (code, out) == (1, "")
    assert "inbox event 9999 does not exist" in err
    code, _, err = await syncd("inbox", "retry", str(ids["stuck"]), str(ids["done"]))
    assert code == 1 and f"inbox event {ids['done']} was processed, not given up" in err
    code, _, err = await syncd("inbox", "retry", str(ids["waiting"]))
    assert code == 1 and "still pending" in err
    assert await InboxStore(database).events("all") == before


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("1", "--all-given-up"),
        ("1", "--connection", "hubs"),
        ("not-a-number",),
        ("0",),
    ],
)
async def test_retry_usage_errors_exit_2_and_change_nothing(
    syncd: Syncd, database: Database, args: tuple[str, ...]
) -> None:
    await seed(database)
    code, _, err = await syncd("inbox", "retry", *args)
    assert code == 2 and err
    assert len(await InboxStore(database).given_up()) == 2


async def test_a_bad_status_exits_2(syncd: Syncd, database: Database) -> None:
    code, _, err = await syncd("inbox", "list", "--status", "given_up")
    assert code == 2 and "given-up" in err


async def test_an_outdated_store_is_a_clear_error_exit_1(
    empty_database: Database, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await upgrade_database(empty_database, "0001")  # what an older syncd left
    syncd = Syncd(write_config(tmp_path, database_url), capsys)
    for args in (("inbox", "list"), ("inbox", "retry", "--all-given-up")):
        code, out, err = await syncd(*args)
        assert code == 1 and out == ""
        assert "syncd db upgrade" in err
