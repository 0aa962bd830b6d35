"""The conflict review pages: sign-in with the admin token, the list named by record and filtered, the detail view,
resolving (one, typed, a whole field), retries, re-authorisation, CSRF, and the gauges on /metrics."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from yarl import URL

from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.settings import AdminSettings, Settings
from syncd.store import (
    ConflictStore,
    ConnectionStore,
    Database,
    DeadLetterStore,
    InboxStore,
    LinkStore,
)
from syncd.store.columns import utcnow
from syncd.web.admin import build_admin_app
from syncd.web.metrics import Metrics
from syncd.web.session import COOKIE

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
TOKEN = "review-token-0123456789"
MAPPING = "hubspot-zohobooks"
OBJECTS = {(MAPPING, "customer"): ("contacts", "contacts"), (MAPPING, "invoice"): ("deals", "invoices")}
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def settings(token: str = TOKEN) -> Settings:
    """An admin token, and a HubSpot connection that says how to open its contacts in HubSpot's UI."""
    hubspot = HubSpotConnection(
        system="hubspot", client_id="app", client_secret=SecretStr("app-secret"),
        record_urls={"contacts": "https://app.hubspot.com/contacts/62515/record/0-1/{id}"},
    )
    return Settings(admin=AdminSettings(token=SecretStr(token)), connections={"hub": hubspot})


class Requeued:
    """Counts the app's calls to wake the inbox after a requeue."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def requeued() -> Requeued:
    return Requeued()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, database: Database, requeued: Requeued) -> TestClient[Any, Any]:
    """A browser-like client (it keeps cookies) on the admin app."""
    app = build_admin_app(db=database, settings=settings(), metrics=Metrics(), on_requeue=requeued, objects=OBJECTS)
    return await aiohttp_client(app)


async def customer(database: Database, crm_id: str, first: str, last: str, email: str, phone: str) -> int:
    """A linked customer whose base snapshot holds its name, e-mail and phone."""
    links = LinkStore(database)
    pending = await links.intend(MAPPING, "customer", "hubspot", crm_id, "zohobooks", f"46000{crm_id}", f"r-{crm_id}")
    base = {"first_name": first, "last_name": last, "email": email, "phone": phone, "city": "Austin"}
    return (await links.bind(pending.id, base=base)).id


async def invoice(database: Database, deal_id: str, number: str) -> int:
    """A linked invoice; its base holds the Zoho invoice number and a tagged total."""
    links = LinkStore(database)
    pending = await links.intend(MAPPING, "invoice", "hubspot", deal_id, "zohobooks", f"INV{deal_id}", f"r-{deal_id}")
    base = {"invoice_number": number, "total": {"$dec": "120.00"}, "due_date": {"$date": "2024-06-30"}}
    return (await links.bind(pending.id, base=base)).id


class Desk:
    """A realistic review desk: two customers both called Ann Lee (mixed-case e-mail), an invoice, and an old
    conflict from before."""

    def __init__(self, ann: int, other_ann: int, bill: int, phone: int, other_phone: int, city: int, due: int,
                 old: int) -> None:
        self.ann, self.other_ann, self.bill = ann, other_ann, bill
        self.phone, self.other_phone, self.city, self.due, self.old = phone, other_phone, city, due, old


@pytest.fixture
async def desk(database: Database) -> Desk:
    conflicts = ConflictStore(database)
    ann = await customer(database, "101", "Ann", "Lee", "Ann.Lee@Example.com", "+15125550100")
    other_ann = await customer(database, "102", "Ann", "Lee", "ann.lee@other.example", "+15125550200")
    old_customer = await customer(database, "103", "Bo", "Ek", "bo@example.com", "+15125550300")
    bill = await invoice(database, "9001", "INV-000012")
    old = (await conflicts.open_conflict(old_customer, "phone", "+15125550300", "+15125550301", "+15125550302",
                                         detected_at=utcnow() - timedelta(days=3))).id
    phone = (await conflicts.open_conflict(ann, "phone", "+15125550100", "+15125550101", "+15125550199")).id
    other_phone = (await conflicts.open_conflict(other_ann, "phone", "+15125550200", "+15125550201", None)).id
    city = (await conflicts.open_conflict(ann, "city", "Austin", "Dallas", "<script>alert(1)</script>")).id
    due = (await conflicts.open_conflict(bill, "due_date", {"$date": "2024-06-30"}, {"$date": "2024-07-15"},
                                         {"$date": "2024-07-31"})).id
    return Desk(ann, other_ann, bill, phone, other_phone, city, due, old)


async def sign_in(client: TestClient[Any, Any], who: str = "Alice Martin") -> str:
    """Sign in through the form; returns the CSRF token the pages' forms carry."""
    response = await client.post("/review/login", data={"token": TOKEN, "who": who, "next": "/review"})
    assert response.status == 200 and response.url.path == "/review"
    [csrf, *_] = CSRF.findall(await response.text())
    return csrf


async def page(client: TestClient[Any, Any], path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


def rows(html: str) -> list[str]:
    """The ids of the conflict rows in the open-conflicts table."""
    return re.findall(r'<tr id="conflict-(\d+)"', html)


async def test_the_pages_need_a_sign_in_and_a_wrong_token_is_refused(
    client: TestClient[Any, Any], desk: Desk, database: Database
) -> None:
    first = await client.get("/review/conflicts/1?x=1", allow_redirects=False)
    location = URL(first.headers["Location"])
    assert first.status == 303
    assert (location.path, location.query["next"]) == ("/review/login", "/review/conflicts/1?x=1")
    refused = await client.post(f"/review/conflicts/{desk.phone}/resolve", data={"choice": "crm"})
    assert refused.status == 403
    wrong = await client.post("/review/login", data={"token": "guess", "who": "Mallory"})
    assert wrong.status == 401 and "not the admin token" in await wrong.text()
    assert COOKIE not in client.session.cookie_jar.filter_cookies(client.make_url("/review"))
    nameless = await client.post("/review/login", data={"token": TOKEN, "who": "  "})
    assert nameless.status == 400 and "Give your name" in await nameless.text()
    # Sent elsewhere after signing in? Only to these pages.
    away = await client.post("/review/login", data={"token": TOKEN, "who": "Al", "next": "//evil.example/x"},
                             allow_redirects=False)
    assert away.status == 303 and away.headers["Location"] == "/review"
    assert (await ConflictStore(database).get(desk.phone)).status == "open"


async def test_the_list_names_each_record_as_people_know_it_with_links_into_the_systems(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    await sign_in(client)
    html = await page(client, "/review")
    assert rows(html) == [str(i) for i in (desk.old, desk.phone, desk.other_phone, desk.city, desk.due)]
    # Two people with the same name are told apart by their e-mail; an invoice by its number.
    assert "Ann Lee &lt;Ann.Lee@Example.com&gt;" in html and "Ann Lee &lt;ann.lee@other.example&gt;" in html
    assert "invoice INV-000012" in html
    # Values in words: a tagged date as a date, a missing value as (empty); nothing a value holds runs as HTML.
    assert "2024-07-15" in html and "(empty)" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Links into HubSpot where the connection says how; none into Zoho Books, which has no record_urls here.
    assert 'href="https://app.hubspot.com/contacts/62515/record/0-1/101"' in html
    assert "books.zoho" not in html
    assert "signed in as <strong>Alice Martin</strong>" in html


async def test_conflicts_are_filtered_by_mapping_object_field_and_age(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    await sign_in(client)
    assert rows(await page(client, "/review?field=phone")) == [str(desk.old), str(desk.phone), str(desk.other_phone)]
    assert rows(await page(client, f"/review?mapping={MAPPING}&object=invoice")) == [str(desk.due)]
    assert rows(await page(client, "/review?object=customer&field=city")) == [str(desk.city)]
    assert rows(await page(client, "/review?age=1d")) == [str(desk.old)]
    empty = await page(client, "/review?mapping=salesforce-zohobooks")
    assert rows(empty) == [] and "No open conflicts match these filters" in empty
    assert (await client.get("/review?age=forever")).status == 400


async def test_the_detail_view_shows_the_three_values_side_by_side_and_when_it_was_detected(
    client: TestClient[Any, Any], desk: Desk, database: Database
) -> None:
    await sign_in(client)
    conflict = await ConflictStore(database).get(desk.phone)
    html = await page(client, f"/review/conflicts/{desk.phone}")
    values = dict(re.findall(r'id="(base|crm|acc)-value">([^<]*)<', html))
    assert values == {"base": "+15125550100", "crm": "+15125550101", "acc": "+15125550199"}
    assert conflict.detected_at.isoformat(timespec="seconds") in html
    assert 'id="open-crm"' in html and 'id="open-accounting"' not in html
    assert (await client.get("/review/conflicts/99999")).status == 404
    assert (await client.get("/review/conflicts/" + "9" * 30)).status == 404


async def test_choosing_a_side_resolves_it_under_the_reviewers_name_and_it_shows_in_the_history(
    client: TestClient[Any, Any], desk: Desk, database: Database
) -> None:
    csrf = await sign_in(client, "Alice Martin")
    response = await client.post(f"/review/conflicts/{desk.phone}/resolve", data={"csrf": csrf, "choice": "accounting"})
    html = await response.text()
    assert response.status == 200 and response.url.query["done"] == "resolved"
    assert "Conflict" in html and "+15125550199 is written to both sides on the next sync pass" in html
    resolved = await ConflictStore(database).get(desk.phone)
    assert (resolved.status, resolved.resolution, resolved.resolved_value, resolved.resolved_by) == (
        "resolved", "accounting", "+15125550199", "Alice Martin")
    assert str(desk.phone) not in rows(html)
    history = re.search(rf'<tr id="resolution-{desk.phone}">(.*?)</tr>', html, re.S)
    assert history is not None and "Alice Martin" in history[1] and "kept the accounting value" in history[1]
    # Someone else deciding the same conflict a moment later changes nothing.
    again = await client.post(f"/review/conflicts/{desk.phone}/resolve", data={"csrf": csrf, "choice": "crm"})
    assert "already resolved" in await again.text()
    assert (await ConflictStore(database).get(desk.phone)).resolution == "accounting"
    detail = await page(client, f"/review/conflicts/{desk.phone}")
    assert "Resolved by Alice Martin" in detail and "written on the next sync pass" in detail


async def test_a_typed_value_is_the_resolution(client: TestClient[Any, Any], desk: Desk, database: Database) -> None:
    csrf = await sign_in(client)
    form = {"csrf": csrf, "choice": "value", "value": "  Fort Worth "}
    assert (await client.post(f"/review/conflicts/{desk.city}/resolve", data=form)).status == 200
    resolved = await ConflictStore(database).get(desk.city)
    assert (resolved.resolution, resolved.resolved_value) == ("value", "Fort Worth")
    bad = await client.post(f"/review/conflicts/{desk.due}/resolve", data={"csrf": csrf, "choice": "both"})
    assert bad.status == 400 and (await ConflictStore(database).get(desk.due)).status == "open"


async def test_forms_without_the_sessions_csrf_token_change_nothing(
    aiohttp_client: ClientFactory, client: TestClient[Any, Any], desk: Desk, database: Database
) -> None:
    await sign_in(client)
    other = await aiohttp_client(build_admin_app(db=database, settings=settings(), metrics=Metrics()))
    foreign = await sign_in(other, "Bob")  # a genuine token, but of another session
    for data in ({"choice": "crm"}, {"choice": "crm", "csrf": "0" * 64}, {"choice": "crm", "csrf": foreign}):
        response = await client.post(f"/review/conflicts/{desk.phone}/resolve", data=data)
        assert response.status == 403
    bulk = {"mapping": MAPPING, "object": "customer", "field": "phone", "choice": "crm"}
    assert (await client.post("/review/conflicts/resolve-field", data=bulk)).status == 403
    assert [c.id for c in await ConflictStore(database).list(status="resolved")] == []


async def test_a_tampered_or_old_session_cookie_or_a_changed_token_signs_out(
    aiohttp_client: ClientFactory, client: TestClient[Any, Any], desk: Desk, database: Database
) -> None:
    await sign_in(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/review"))[COOKIE].value
    body, _, signature = cookie.partition(".")
    fresh = await aiohttp_client(build_admin_app(db=database, settings=settings(), metrics=Metrics()))
    for forged in (f"{body}x.{signature}", f"{body}.{'0' * 64}", "garbage"):
        fresh.session.cookie_jar.update_cookies({COOKIE: forged}, fresh.make_url("/review"))
        assert (await fresh.get("/review", allow_redirects=False)).status == 303
    rotated = await aiohttp_client(
        build_admin_app(db=database, settings=settings("a-new-token-987654"), metrics=Metrics()))
    rotated.session.cookie_jar.update_cookies({COOKIE: cookie}, rotated.make_url("/review"))
    assert (await rotated.get("/review", allow_redirects=False)).status == 303
    # Signing out drops the session.
    csrf = CSRF.findall(await page(client, "/review"))[0]
    await client.post("/review/logout", data={"csrf": csrf})
    assert (await client.get("/review", allow_redirects=False)).status == 303


async def test_a_whole_field_is_resolved_the_same_way_and_other_fields_stay_open(
    client: TestClient[Any, Any], desk: Desk, database: Database
) -> None:
    csrf = await sign_in(client, "Carol")
    form = {"csrf": csrf, "mapping": MAPPING, "object": "customer", "field": "phone", "choice": "crm"}
    response = await client.post("/review/conflicts/resolve-field", data=form)
    assert response.status == 200 and "3 conflict(s) of field phone resolved" in await response.text()
    store = ConflictStore(database)
    done = {c.id: (c.resolution, c.resolved_value, c.resolved_by) for c in await store.list(status="resolved")}
    assert done == {
        desk.old: ("crm", "+15125550301", "Carol"),
        desk.phone: ("crm", "+15125550101", "Carol"),
        desk.other_phone: ("crm", "+15125550201", "Carol"),
    }
    assert {c.id for c in await store.list()} == {desk.city, desk.due}
    missing = await client.post("/review/conflicts/resolve-field", data={"csrf": csrf, "choice": "crm"})
    assert missing.status == 400


async def test_dead_letters_show_their_reason_in_words_and_retry_makes_them_due(
    client: TestClient[Any, Any], database: Database
) -> None:
    letters = DeadLetterStore(database)
    parked = await letters.park("books", MAPPING, "customer", "crm", "101",
                                "writing contacts: Zoho Books 400 (code 3062): first name is too long",
                                next_attempt_at=None, payload={"object": "contacts"})
    csrf = await sign_in(client)
    html = await page(client, "/review")
    assert ("The CRM record 101 could not be synced (1 attempt): writing contacts: Zoho Books 400 (code 3062): "
            "first name is too long. Next: it waits until the record changes, or until you retry it.") in html
    assert await letters.due() == []
    response = await client.post(f"/review/dead-letters/{parked.id}/retry", data={"csrf": csrf})
    assert response.status == 200 and f"Dead letter {parked.id} is due now" in await response.text()
    assert [d.id for d in await letters.due()] == [parked.id]
    assert (await client.post("/review/dead-letters/4242/retry", data={"csrf": csrf})).status == 404


async def test_given_up_webhook_events_are_listed_and_retried(
    client: TestClient[Any, Any], database: Database, requeued: Requeued
) -> None:
    inbox = InboxStore(database)
    await inbox.put("hub", "evt-77", {"kind": "updated", "object": "contacts", "record_id": "101"})
    [event] = await inbox.pending()
    await inbox.give_up(event.id, "HubSpot 502: bad gateway")
    csrf = await sign_in(client)
    html = await page(client, "/review")
    assert "updated contacts 101" in html and "HubSpot 502: bad gateway" in html
    response = await client.post(f"/review/inbox/{event.id}/retry", data={"csrf": csrf})
    assert "is back in the queue" in await response.text()
    assert [e.id for e in await inbox.pending()] == [event.id] and requeued.calls == 1
    again = await client.post(f"/review/inbox/{event.id}/retry", data={"csrf": csrf})
    assert "is not given up" in await again.text() and requeued.calls == 1


async def test_connections_needing_reauthorisation_are_listed_with_the_command_to_run(
    client: TestClient[Any, Any], database: Database
) -> None:
    connections = ConnectionStore(database)
    await connections.ensure("hub", "hubspot")
    await connections.ensure("books", "zohobooks")
    await connections.set_status("books", "needs_reauth", "Zoho: invalid_code (refresh token revoked)")
    await sign_in(client)
    html = await page(client, "/review")
    section = html[html.index('id="reauth"'):html.index('id="conflicts"')]
    assert "<code class=\"command\">syncd auth books</code>" in section and "invalid_code" in section
    assert "syncd auth hub<" not in section


async def test_pages_are_never_framed_cached_or_leaking_a_referrer(client: TestClient[Any, Any]) -> None:
    for path in ("/review/login", "/review/static/review.js"):
        response = await client.get(path)
        assert response.status == 200
    await sign_in(client)
    response = await client.get("/review")
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


async def test_metrics_gauge_open_conflicts_by_field_and_dead_letters_by_object(
    client: TestClient[Any, Any], desk: Desk, database: Database
) -> None:
    await DeadLetterStore(database).park("books", MAPPING, "invoice", "crm", "9002", "customer not linked",
                                         next_attempt_at=utcnow())

    async def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = await (await client.get("/metrics")).text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name in ("syncd_conflicts_open", "syncd_dead_letters")
        }

    def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return name, tuple(sorted(labels.items()))

    assert await scraped() == {
        key("syncd_conflicts_open", mapping=MAPPING, object="customer", field="phone"): 3,
        key("syncd_conflicts_open", mapping=MAPPING, object="customer", field="city"): 1,
        key("syncd_conflicts_open", mapping=MAPPING, object="invoice", field="due_date"): 1,
        key("syncd_dead_letters", mapping=MAPPING, object="invoice"): 1,
    }
    await ConflictStore(database).resolve(desk.due, "crm", by="ops")
    after = await scraped()
    # A field with nothing open any more leaves the gauge instead of lingering.
    assert key("syncd_conflicts_open", mapping=MAPPING, object="invoice", field="due_date") not in after
    assert after[key("syncd_conflicts_open", mapping=MAPPING, object="customer", field="phone")] == 3


async def test_the_root_leads_to_the_review_page(client: TestClient[Any, Any]) -> None:
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/review"

