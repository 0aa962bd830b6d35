"""Signals a person must hear about: one log line per conflict opened, naming the record and field; outgoing
notifications, signed, to a receiver on loopback, for conflicts opened, records parked and connections needing
re-authorisation, with a failing receiver logged once."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from syncd.engine.notifications import Notifier, StoreWatcher
from syncd.errors import ConfigError
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.settings import load_settings
from syncd.store import ConflictStore, Database, DeadLetterStore, LinkStore
from syncd.store.columns import utcnow
from tests.engine.conftest import World
from tests.engine.test_customers import ann, settle

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
SECRET = "notify-secret-4711"


def conflicts_logged(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if str(e["event"]).startswith("conflict opened")]


async def test_a_new_conflict_is_one_log_line_naming_the_record_and_field(world: World) -> None:
    path = SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml"
    hub_id = await world.hubspot.put("contacts", ann())
    await settle(world, path)
    [customer] = await world.zoho.all("contacts")
    await world.hubspot.update("contacts", hub_id, {"phone": "+1 415 555 0111"})
    await world.zoho.update("contacts", customer["id"], {"primary_contact.phone": "+1 415 555 0122"})
    with capture_logs() as logs:
        await world.reconciler(path).run_pass()
    [line] = conflicts_logged(logs)
    [conflict] = await world.stores.conflicts.list()
    person = await world.hubspot.get("contacts", hub_id)
    assert line["log_level"] == "warning" and line["field"] == "phone" and line["conflict"] == conflict.id
    assert line["record"] == f"{person['firstname']} {person['lastname']} <{person['email'].lower()}>"
    assert (line["mapping"], line["object"], line["crm_id"]) == ("hubspot-zohobooks", "customer", hub_id)
    # Still open on the next pass: not announced again.
    with capture_logs() as logs:
        await world.reconciler(path).run_pass()
    assert conflicts_logged(logs) == []


class Receiver:
    """A notification receiver on loopback that keeps what it was sent, answering `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(event, data) of each delivery whose signature checks out; a bad signature fails the test."""
        found = []
        for headers, body in self.received:
            expected = hmac.new(SECRET.encode(), headers["X-Syncd-Timestamp"].encode() + b"." + body,
                                hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["X-Syncd-Signature"], f"sha256={expected}")
            payload = json.loads(body)
            assert headers["X-Syncd-Event"] == payload["event"]
            found.append((payload["event"], payload["data"]))
        return found


@pytest.fixture
async def receiver(aiohttp_server: ServerFactory) -> tuple[Receiver, str]:
    app = web.Application()
    target = Receiver()
    app.router.add_post("/hooks/syncd", target.handle)
    server = await aiohttp_server(app)
    return target, str(server.make_url("/hooks/syncd"))


async def linked_customer(db: Database, crm_id: str, email: str) -> int:
    links = LinkStore(db)
    pending = await links.intend("hubspot-zohobooks", "customer", "hubspot", crm_id, "zohobooks", f"46{crm_id}",
                                 f"r{crm_id}")
    base = {"first_name": "Ann", "last_name": "Lee", "email": email}
    return (await links.bind(pending.id, base=base)).id


async def test_what_is_new_in_the_store_is_notified_once_and_signed(
    db: Database, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    conflicts, letters = ConflictStore(db), DeadLetterStore(db)
    known = await linked_customer(db, "1001", "ann.lee@example.com")
    await conflicts.open_conflict(known, "phone", "1", "2", "3")  # from before the daemon started: not notified
    notifier = Notifier(url, SECRET)
    notifier.start()
    watcher = StoreWatcher(db, notifier)
    try:
        await watcher.start()
        new = await linked_customer(db, "1002", "ann.lee@other.example")
        opened = await conflicts.open_conflict(new, "phone", "+15125550100", "+15125550101", "+15125550199")
        parked = await letters.park("books", "hubspot-zohobooks", "invoice", "crm", "9001",
                                    "its customer is not linked yet", next_attempt_at=utcnow())
        await watcher.check()
        # The same record failing again is the same spell of failing: not a new notification.
        await letters.park("books", "hubspot-zohobooks", "invoice", "crm", "9001", "still not linked",
                           next_attempt_at=utcnow())
        watcher.reauthorisation_needed("books", "zohobooks", "Zoho: invalid_code")
        await watcher.check()
        await notifier.drained()
    finally:
        await notifier.stop()
    events = target.events()
    assert [e for e, _ in events] == ["conflict.opened", "record.parked", "connection.needs_reauth"]
    conflict, letter, reauth = (data for _, data in events)
    assert (conflict["conflict"], conflict["record"], conflict["field"]) == (
        opened.id, "Ann Lee <ann.lee@other.example>", "phone")
    assert (letter["dead_letter"], letter["record_id"], letter["reason"]) == (
        parked.id, "9001", "its customer is not linked yet")
    assert (reauth["connection"], reauth["run"]) == ("books", "syncd auth books")


async def test_a_failing_receiver_is_logged_once_until_it_recovers(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    target.status = 503
    notifier = Notifier(url, SECRET)
    notifier.start()
    try:
        with capture_logs() as logs:
            for n in range(3):
                notifier.send("record.parked", {"n": n})
            await notifier.drained()
            target.status = 200
            notifier.send("record.parked", {"n": 3})
            await notifier.drained()
    finally:
        await notifier.stop()
    assert len(target.received) == 4 and notifier.sent == 1
    messages = [e["event"] for e in logs if "notification" in str(e["event"])]
    assert messages == ["notification not delivered; later failures are not logged until one succeeds",
                        "notifications delivered again"]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('url = "https://hooks.example.com/x"', "secret is required"),
        ('url = "ftp://hooks.example.com/x"\nsecret = "s"', "http:// or https://"),
    ],
)
def test_notification_settings_are_checked(tmp_path: Path, table: str, problem: str) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(f"[notifications]\n{table}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert problem in str(raised.value.problems[0])
