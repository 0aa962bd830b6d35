"""The admin listener: health and readiness, Prometheus metrics, and the conflicts/links API."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from syncd.settings import AdminSettings, Settings
from syncd.store import (
    ConflictStore,
    ConnectionStore,
    Database,
    DeadLetterStore,
    InboxStore,
    LinkStore,
    upgrade_database,
)
from syncd.web.admin import build_admin_app
from syncd.web.metrics import Metrics

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
TOKEN = "admin-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings(token: str | None = TOKEN) -> Settings:
    """Settings with (or without) an admin token."""
    return Settings(admin=AdminSettings(token=None if token is None else SecretStr(token)))


@pytest.fixture
async def app(database: Database) -> web.Application:
    """The admin app over the test store, with an admin token."""
    return build_admin_app(db=database, settings=settings(), metrics=Metrics())


@pytest.fixture
async def admin(aiohttp_client: ClientFactory, app: web.Application) -> TestClient[Any, Any]:
    """The admin app on loopback, called with the admin token as an API client would."""
    return await aiohttp_client(app, headers=AUTH)


@pytest.fixture
async def anonymous(aiohttp_client: ClientFactory, app: web.Application) -> TestClient[Any, Any]:
    """The same app called without any token."""
    return await aiohttp_client(app)


async def make_link(database: Database, crm_id: str) -> int:
    """A linked contact pair."""
    links = LinkStore(database)
    pending = await links.intend(
        "contacts", "contact", "hubspot", crm_id, "zohobooks", f"Z-{crm_id}", f"ref-{crm_id}"
    )
    return (await links.bind(pending.id, base={"phone": "1"})).id


async def open_conflict(database: Database, crm_id: str = "101") -> int:
    """An open conflict on the phone field of a new link."""
    conflict = await ConflictStore(database).open_conflict(
        await make_link(database, crm_id), "phone", "1", "2", "3"
    )
    return conflict.id


async def test_healthz_answers_while_the_process_runs(anonymous: TestClient[Any, Any]) -> None:
    response = await anonymous.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/conflicts"),
        ("GET", "/api/links"),
        ("GET", "/api/inbox?status=all"),
        ("POST", "/api/conflicts/1/resolve"),
        ("POST", "/api/inbox/1/retry"),
        ("GET", "/api/nothing-here"),
    ],
)
async def test_every_api_route_needs_the_token_while_probes_and_scrapes_stay_open(
    anonymous: TestClient[Any, Any], database: Database, method: str, path: str
) -> None:
    await open_conflict(database)  # something a reader without the token must not see
    for headers in ({}, {"Authorization": "Bearer guess"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await anonymous.request(method, path, headers=headers)
        assert response.status == 401, (path, headers)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "+" not in await response.text() and "phone" not in await response.text()
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert (await anonymous.get(open_path)).status == 200


async def test_readyz_names_connections_needing_reauthorisation(
    admin: TestClient[Any, Any], database: Database
) -> None:
    connections = ConnectionStore(database)
    await connections.ensure("hs", "hubspot")
    await connections.ensure("zb", "zohobooks")
    await connections.set_status("zb", "needs_reauth", "grant revoked")
    response = await admin.get("/readyz")
    body = await response.json()
    assert response.status == 200
    assert body["ready"] is True and body["needs_reauth"] == ["zb"]


async def test_readyz_is_503_until_the_schema_is_created(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        client = await aiohttp_client(build_admin_app(db=db, settings=settings(), metrics=Metrics()))
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503 and body["ready"] is False
        assert "syncd db upgrade" in body["reason"]
    finally:
        await db.close()


async def test_metrics_parse_and_count_webhooks_and_pending_inbox_events(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    metrics = Metrics()
    metrics.count_webhook("hs", "accepted")
    metrics.count_webhook("hs", "accepted")
    metrics.count_webhook("hs", "rejected")
    inbox = InboxStore(database)
    for event_id in ("e1", "e2", "e3"):
        await inbox.put("hs", event_id, {"kind": "updated"})
    first = (await inbox.pending(limit=1))[0]
    await inbox.mark_processed([first.id])
    client = await aiohttp_client(build_admin_app(db=database, settings=settings(), metrics=metrics))
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }
    assert samples[("syncd_webhooks_received_total", (("connection", "hs"), ("outcome", "accepted")))] == 2
    assert samples[("syncd_webhooks_received_total", (("connection", "hs"), ("outcome", "rejected")))] == 1
    assert samples[("syncd_inbox_pending", ())] == 2


async def test_conflicts_are_listed_by_status(admin: TestClient[Any, Any], database: Database) -> None:
    open_id = await open_conflict(database, "101")
    settled = await open_conflict(database, "102")
    await ConflictStore(database).resolve(settled, "crm", by="alice")
    listed = await (await admin.get("/api/conflicts")).json()
    assert [(c["id"], c["crm_value"], c["acc_value"]) for c in listed] == [(open_id, "2", "3")]
    resolved = await (await admin.get("/api/conflicts?status=resolved")).json()
    assert [(c["id"], c["resolved_by"]) for c in resolved] == [(settled, "alice")]
    assert len(await (await admin.get("/api/conflicts?status=all")).json()) == 2
    refused = await admin.get("/api/conflicts?status=maybe")
    assert refused.status == 400
    assert await refused.json() == {"error": "status must be open, resolved or all"}


async def test_resolving_needs_the_admin_token(anonymous: TestClient[Any, Any], database: Database) -> None:
    conflict_id = await open_conflict(database)
    body = {"resolution": "crm", "by": "mallory"}
    missing = await anonymous.post(f"/api/conflicts/{conflict_id}/resolve", json=body)
    wrong = await anonymous.post(
        f"/api/conflicts/{conflict_id}/resolve", json=body, headers={"Authorization": "Bearer guess"}
    )
    assert (missing.status, wrong.status) == (401, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await ConflictStore(database).get(conflict_id)).status == "open"


async def test_without_a_configured_token_resolving_is_refused(
    aiohttp_client: ClientFactory, database: Database
) -> None:
    conflict_id = await open_conflict(database)
    client = await aiohttp_client(build_admin_app(db=database, settings=settings(None), metrics=Metrics()))
    response = await client.post(
        f"/api/conflicts/{conflict_id}/resolve",
        json={"resolution": "crm", "by": "a"},
        headers={"Authorization": "Bearer "},
    )
    assert response.status == 401
    assert "not configured" in (await response.json())["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"resolution": "mine", "by": "alice"},
        {"resolution": "crm"},
        {"resolution": "crm", "by": "  "},
        {"resolution": "value", "by": "alice"},
        {"resolution": "crm", "value": "x", "by": "alice"},
        ["crm"],
    ],
)
async def test_a_bad_resolve_body_is_400_and_changes_nothing(
    admin: TestClient[Any, Any], database: Database, body: Any
) -> None:
    conflict_id = await open_conflict(database)
    response = await admin.post(f"/api/conflicts/{conflict_id}/resolve", json=body, headers=AUTH)
    assert response.status == 400
    assert (await ConflictStore(database).get(conflict_id)).status == "open"


async def test_a_non_json_resolve_body_is_400(admin: TestClient[Any, Any], database: Database) -> None:
    conflict_id = await open_conflict(database)
    response = await admin.post(f"/api/conflicts/{conflict_id}/resolve", data=b"crm please", headers=AUTH)
    assert response.status == 400


async def test_resolve_chooses_a_value_once_and_refuses_a_second_decision(
    admin: TestClient[Any, Any], database: Database
) -> None:
    conflict_id = await open_conflict(database)
    url = f"/api/conflicts/{conflict_id}/resolve"
    first = await admin.post(
        url, json={"resolution": "value", "value": "+44 20 7946 0000", "by": "alice"}, headers=AUTH
    )
    assert first.status == 200
    body = await first.json()
    assert (body["status"], body["resolved_value"], body["resolved_by"]) == (
        "resolved",
        "+44 20 7946 0000",
        "alice",
    )
    second = await admin.post(url, json={"resolution": "crm", "by": "bob"}, headers=AUTH)
    assert second.status == 409
    assert (await ConflictStore(database).get(conflict_id)).resolved_by == "alice"


async def test_resolving_an_unknown_conflict_is_404(admin: TestClient[Any, Any]) -> None:
    response = await admin.post(
        "/api/conflicts/9999/resolve", json={"resolution": "crm", "by": "a"}, headers=AUTH
    )
    assert response.status == 404


async def test_links_are_paged_and_filtered(admin: TestClient[Any, Any], database: Database) -> None:
    ids = [await make_link(database, crm_id) for crm_id in ("101", "102", "103")]
    await LinkStore(database).intend("contacts", "contact", "hubspot", "104", "zohobooks", None, "ref-104")
    first = await (await admin.get("/api/links?limit=2&state=linked")).json()
    assert [link["id"] for link in first["links"]] == ids[:2] and first["next_offset"] == 2
    rest = await (await admin.get("/api/links?limit=2&offset=2&state=linked")).json()
    assert [link["id"] for link in rest["links"]] == ids[2:] and rest["next_offset"] is None
    assert rest["links"][0]["crm_id"] == "103" and rest["links"][0]["acc_id"] == "Z-103"
    pending = await (await admin.get("/api/links?state=pending")).json()
    assert [(link["crm_id"], link["acc_id"]) for link in pending["links"]] == [("104", None)]
    too_small = await admin.get("/api/links?limit=0")
    assert too_small.status == 400 and "limit must be an integer" in (await too_small.json())["error"]
    assert (await admin.get("/api/links?state=gone")).status == 400


async def test_api_calls_during_a_store_outage_are_503(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    db = await Database.open(f"sqlite:///{folder / 'syncd.db'}")
    try:
        await upgrade_database(db)
        client = await aiohttp_client(build_admin_app(db=db, settings=settings(), metrics=Metrics()), headers=AUTH)
        await db.close()
        shutil.rmtree(folder)
        assert (await client.get("/api/conflicts")).status == 503
        assert (await client.get("/api/inbox")).status == 503
        assert (await client.post("/api/inbox/1/retry", headers=AUTH)).status == 503
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == 200  # scrapes go on, the gauge keeps its last value
    finally:
        await db.close()


async def give_up(database: Database, connection: str, event_id: str, error: str = "HubSpot 502") -> int:
    """A webhook event the inbox gave up on; returns its id."""
    inbox = InboxStore(database)
    await inbox.put(connection, event_id, {"kind": "updated", "object": "contacts", "record_id": event_id})
    [event] = [e for e in await inbox.pending() if e.event_id == event_id]
    await inbox.give_up(event.id, error)
    return event.id


async def test_inbox_events_are_listed_by_status(admin: TestClient[Any, Any], database: Database) -> None:
    stuck = await give_up(database, "hs", "e1", "HubSpot 502: bad gateway")
    await InboxStore(database).put("hs", "e2", {"kind": "created"})
    await give_up(database, "zb", "e3")
    # Given-up events by default, latest first, with the whole error.
    listed = await (await admin.get("/api/inbox")).json()
    assert [(e["event_id"], e["status"]) for e in listed] == [("e3", "given_up"), ("e1", "given_up")]
    assert (listed[1]["id"], listed[1]["last_error"], listed[1]["attempts"]) == (stuck, "HubSpot 502: bad gateway", 1)
    assert listed[1]["payload"]["record_id"] == "e1" and listed[1]["processed_at"] is not None
    pending = await (await admin.get("/api/inbox?status=pending")).json()
    assert [(e["event_id"], e["status"], e["next_attempt_at"]) for e in pending] == [("e2", "pending", None)]
    assert len(await (await admin.get("/api/inbox?status=all")).json()) == 3
    one = await (await admin.get("/api/inbox?status=all&connection=zb")).json()
    assert [e["event_id"] for e in one] == ["e3"]
    assert (await admin.get("/api/inbox?status=given-up")).status == 400
    assert (await admin.get("/api/inbox?limit=0")).status == 400


async def test_retrying_a_given_up_event_puts_it_back_in_the_queue(
    admin: TestClient[Any, Any], database: Database
) -> None:
    stuck = await give_up(database, "hs", "e1")
    response = await admin.post(f"/api/inbox/{stuck}/retry", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert (body["id"], body["status"], body["attempts"], body["last_error"]) == (stuck, "pending", 0, "HubSpot 502")
    inbox = InboxStore(database)
    assert [e.id for e in await inbox.pending()] == [stuck] and await inbox.given_up() == []
    # Now pending, it cannot be requeued again.
    again = await admin.post(f"/api/inbox/{stuck}/retry", headers=AUTH)
    assert again.status == 409 and "still pending" in (await again.json())["error"]


async def test_retrying_an_unknown_or_processed_event_is_refused(
    admin: TestClient[Any, Any], database: Database
) -> None:
    inbox = InboxStore(database)
    await inbox.put("hs", "done", {})
    [done] = await inbox.pending()
    await inbox.mark_processed([done.id])
    processed = await admin.post(f"/api/inbox/{done.id}/retry", headers=AUTH)
    assert processed.status == 409 and "was processed" in (await processed.json())["error"]
    assert (await admin.post("/api/inbox/9999/retry", headers=AUTH)).status == 404
    assert (await admin.post("/api/inbox/e1/retry", headers=AUTH)).status == 404
    assert await inbox.pending() == []


async def test_retrying_needs_the_admin_token(aiohttp_client: ClientFactory, database: Database) -> None:
    stuck = await give_up(database, "hs", "e1")
    admin = await aiohttp_client(build_admin_app(db=database, settings=settings(), metrics=Metrics()))
    missing = await admin.post(f"/api/inbox/{stuck}/retry")
    wrong = await admin.post(f"/api/inbox/{stuck}/retry", headers={"Authorization": "Bearer guess"})
    assert (missing.status, wrong.status) == (401, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    unconfigured = await aiohttp_client(build_admin_app(db=database, settings=settings(None), metrics=Metrics()))
    refused = await unconfigured.post(f"/api/inbox/{stuck}/retry", headers=AUTH)
    assert refused.status == 401 and "not configured" in (await refused.json())["error"]
    assert [e.id for e in await InboxStore(database).given_up()] == [stuck]


async def test_the_given_up_gauge_is_measured_at_each_scrape(admin: TestClient[Any, Any], database: Database) -> None:
    async def scraped() -> dict[str, float]:
        text = await (await admin.get("/metrics")).text()
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith("syncd_inbox_")
        }

    assert await scraped() == {"syncd_inbox_pending": 0, "syncd_inbox_given_up": 0}
    first = await give_up(database, "hs", "e1")
    await give_up(database, "zb", "e2")
    await InboxStore(database).put("hs", "e3", {})
    assert await scraped() == {"syncd_inbox_pending": 1, "syncd_inbox_given_up": 2}
    assert (await admin.post(f"/api/inbox/{first}/retry", headers=AUTH)).status == 200
    assert await scraped() == {"syncd_inbox_pending": 2, "syncd_inbox_given_up": 1}


@pytest.mark.parametrize("query", [f"offset={2**63}", f"offset={10**26}", "offset=" + "9" * 5000,
                                   f"limit={2**63}", "offset=-1"])
async def test_huge_or_negative_paging_numbers_are_400(admin: TestClient[Any, Any], query: str) -> None:
    for path in ("/api/conflicts", "/api/links", "/api/inbox"):
        response = await admin.get(f"{path}?{query}")
        assert response.status == 400, (path, query)
        assert "offset an integer 0.." in (await response.json())["error"]


@pytest.mark.parametrize("record_id", [str(2**63), str(10**26), "9" * 5000])
async def test_ids_no_row_can_have_are_404(admin: TestClient[Any, Any], record_id: str) -> None:
    for path, what in ((f"/api/conflicts/{record_id}/resolve", "conflict"), (f"/api/inbox/{record_id}/retry",
                                                                               "inbox event")):
        response = await admin.post(path, json={"resolution": "crm", "by": "ops"}, headers=AUTH)
        assert response.status == 404, path
        assert (await response.json())["error"].startswith(f"{what} {record_id[:24]}")


async def test_a_deeply_nested_or_oversized_resolve_body_is_refused(
    admin: TestClient[Any, Any], database: Database
) -> None:
    conflict_id = await open_conflict(database)
    nested = await admin.post(f"/api/conflicts/{conflict_id}/resolve", data=b"[" * 30_000 + b"]" * 30_000,
                              headers={**AUTH, "Content-Type": "application/json"})
    assert nested.status == 400 and "must be JSON" in (await nested.json())["error"]
    big = await admin.post(f"/api/conflicts/{conflict_id}/resolve", data=b" " * 100_000,
                           headers={**AUTH, "Content-Type": "application/json"})
    assert big.status == 413
    assert [c.id for c in await ConflictStore(database).list(status="open")] == [conflict_id]


async def test_dead_letters_are_listed_and_requeued_with_the_admin_token(
    admin: TestClient[Any, Any], anonymous: TestClient[Any, Any], database: Database
) -> None:
    letters = DeadLetterStore(database)
    refused = await letters.park(
        "hs", "hubspot-zohobooks", "customer", "crm", "1001",
        "zohobooks refused the update of contacts 4600: Invalid value passed for first_name (code 4)",
        next_attempt_at=None, error_class="validation", error_code="4",
        error_message="Invalid value passed for first_name", counterpart_id="4600",
    )
    await letters.park("hs", "hubspot-zohobooks", "invoice", "crm", "D-7", "customer not linked yet",
                       next_attempt_at=None, error_class="validation")
    listed = await (await admin.get("/api/deadletters?object=customer", headers=AUTH)).json()
    assert [(d["id"], d["status"], d["error_code"], d["error_message"]) for d in listed] == [
        (refused.id, "parked", "4", "Invalid value passed for first_name")
    ]
    assert len(await (await admin.get("/api/deadletters", headers=AUTH)).json()) == 2
    assert (await admin.get("/api/deadletters?limit=0", headers=AUTH)).status == 400

    assert (await anonymous.post(f"/api/deadletters/{refused.id}/retry")).status == 401
    assert (await anonymous.get("/api/deadletters")).status == 401
    assert await letters.due() == []
    response = await admin.post(f"/api/deadletters/{refused.id}/retry", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert (body["id"], body["status"], body["attempts"]) == (refused.id, "due", 1)
    assert [d.id for d in await letters.due()] == [refused.id]
    assert (await admin.post("/api/deadletters/9999/retry", headers=AUTH)).status == 404
