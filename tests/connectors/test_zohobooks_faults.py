"""ZohoBooksConnector with faults on: 5xx, 429, latency, lost answers, token expiry, revoked grants."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from decimal import Decimal

import pytest

from syncd.connectors.base import Create, FieldValue, Update
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.errors import AuthError
from syncd.sandbox.runner import Sandbox
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from syncd.settings import RateLimitSettings
from tests.connectors.conftest import ControlPlane, StoredTokens
from tests.connectors.zohobooks_fixtures import live, open_zoho


@pytest.fixture
async def zoho(reset_sandbox: Sandbox) -> AsyncIterator[ZohoBooksConnector]:
    """A started connector against a sandbox with no records."""
    async with open_zoho(reset_sandbox) as connector:
        yield connector


def seed(sandbox: Sandbox, **counts: int) -> None:
    """Seed the Zoho simulator directly."""
    full = SeedCounts(**{"contacts": 0, "companies": 0, "deals": 0, "invoices": 0, "payments": 0, **counts})
    sandbox.simulators["zohobooks"].seed(SeedWorld.build(11, full.size), full)


async def test_paging_while_records_change_with_faults_on_skips_nothing(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    seed(reset_sandbox, contacts=80)  # all modified in the same second: page numbers are all there is
    expected = set(live(reset_sandbox, "contacts"))
    await control["zohobooks"].post(
        "faults", {"error_rate": 0.1, "rate_limit_rate": 0.1, "latency_ms": [0, 3]}
    )
    seen: dict[str, list[str]] = {}
    edited: list[str] = []
    pages = 0
    async for page in zoho.changes("contacts", None, timedelta(seconds=120)):
        for record in page.records:
            seen.setdefault(record.id, []).append(record.modified_at.isoformat())
        pages += 1
        if pages == 3:
            # Edit records already read: each moves to the end of the order and pulls the rest one place back,
            # so a reader trusting page numbers alone would skip the records at the page boundaries.
            edited = [r.id for r in page.records[:5]]
            await _next_second(page.records[0].modified_at.timestamp())
            outcomes = await zoho.update_many("contacts", [Update(i, {"notes": "edited"}) for i in edited])
            assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert set(seen) == expected, f"skipped: {sorted(expected - set(seen))}"
    assert all(len(set(seen[i])) == 2 for i in edited), "edits made during the read are read too"
    stats = await control["zohobooks"].get("stats")
    assert stats["responses"].get("500", 0) > 0 and stats["rate_limited"] > 0, "the faults really fired"


async def test_token_expiry_in_the_middle_of_a_paged_read(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    seed(reset_sandbox, contacts=30)
    async with open_zoho(reset_sandbox) as zoho:
        ids: set[str] = set()
        pages = 0
        async for page in zoho.changes("contacts", None, timedelta(0)):
            ids.update(r.id for r in page.records)
            pages += 1
            if pages == 1:
                await control["zohobooks"].post("expire-tokens")
        assert ids == set(live(reset_sandbox, "contacts"))
        assert zoho.tokens.refreshes == 2  # the first token, then exactly one after the 401


async def test_fifty_concurrent_calls_on_an_expired_token_refresh_once(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    seed(reset_sandbox, contacts=5)
    some = next(iter(live(reset_sandbox, "contacts")))
    await zoho.get_many("contacts", [some])
    before = zoho.tokens.refreshes
    await control["zohobooks"].post("expire-tokens")
    results = await asyncio.gather(*(zoho.get_many("contacts", [some]) for _ in range(50)))
    assert all(some in r for r in results)
    assert zoho.tokens.refreshes == before + 1


async def test_revoked_grant_marks_the_connection_and_says_what_to_do(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane], stored_tokens: StoredTokens
) -> None:
    seed(reset_sandbox, contacts=3)
    storage = stored_tokens.storage
    await control["zohobooks"].post("revoke")
    async with open_zoho(reset_sandbox, storage=storage) as zoho:
        with pytest.raises(AuthError) as raised:
            await zoho.get_many("contacts", ["1"])
    message = str(raised.value)
    assert "'books'" in message and "syncd auth books" in message and "invalid_code" in message
    assert "syncd auth books" in str(await stored_tokens.reauth_reason("books"))


async def test_token_endpoint_error_with_http_200_is_an_auth_error(reset_sandbox: Sandbox) -> None:
    async with open_zoho(reset_sandbox, client_secret="wrong") as zoho:
        with pytest.raises(AuthError) as raised:
            await zoho.get_many("contacts", ["1"])
    assert raised.value.vendor_code == "invalid_client_secret"
    assert "'books'" in str(raised.value)
    assert "wrong" not in str(raised.value)


async def test_create_whose_answer_is_lost_makes_exactly_one_record(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    # The server applies the write after a delay the client does not wait for: the answer is lost after the
    # record exists. Dropped connections (timeout fault) add answers lost before anything happened.
    await control["zohobooks"].post("faults", {"latency_ms": [0, 350], "timeout_rate": 0.1, "timeout_s": 0.5})
    async with open_zoho(reset_sandbox, timeout_s=0.25) as zoho:
        contacts = [Create(f"ref-{n}", {"contact_name": f"Lost Answer {n}"}) for n in range(6)]
        outcomes = await zoho.create_many("contacts", contacts)
        assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes]
        await control["zohobooks"].post("faults", {})
        lines: list[Mapping[str, FieldValue]] = [{"name": "Item", "rate": Decimal("10")}]
        await control["zohobooks"].post(
            "faults", {"latency_ms": [0, 350], "timeout_rate": 0.1, "timeout_s": 0.5}
        )
        invoices = [
            Create(f"inv-{n}", {"customer_id": outcomes[0].id, "line_items": lines}) for n in range(4)
        ]
        invoice_outcomes = await zoho.create_many("invoices", invoices)
        assert all(o.ok for o in invoice_outcomes), [str(o.error) for o in invoice_outcomes]
    await control["zohobooks"].post("faults", {})
    await asyncio.wait_for(_settled(reset_sandbox), 5)
    refs = sorted(r["cf_syncd_ref"] for r in live(reset_sandbox, "contacts").values())
    assert refs == sorted(c.reference for c in contacts)
    invoice_refs = sorted(r["cf_syncd_ref"] for r in live(reset_sandbox, "invoices").values())
    assert invoice_refs == sorted(i.reference for i in invoices)
    stats = await control["zohobooks"].get("stats")
    assert sum(stats["requests"].values()) > 10 + len(invoices)  # retries happened


async def _next_second(stamp: float) -> None:
    """Wait (polling the clock, bounded) until edits get a later whole-second timestamp than `stamp`."""
    deadline = time.monotonic() + 3
    while time.time() < stamp + 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def _settled(sandbox: Sandbox) -> None:
    """Wait until no request is still being handled on the server (a write whose answer the client gave up on
    may still land): the simulator counts the requests in flight."""
    while sandbox.simulators["zohobooks"].stats.in_flight:
        await asyncio.sleep(0.01)  # polled with a deadline (wait_for) by the caller


async def test_pacing_uses_the_budget_without_429s(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    seed(reset_sandbox, contacts=1)
    some = next(iter(live(reset_sandbox, "contacts")))
    budget = RateLimitSettings(window_s=1.0, window_max=20, daily_cap=100_000)
    async with open_zoho(reset_sandbox, rate_limit=budget, max_concurrency=8) as zoho:
        await zoho.get_many("contacts", [some])  # the token is fetched outside the measurement
        await control["zohobooks"].post("limits", {"window_s": 1, "window_max": 20})
        calls = 50
        started = time.monotonic()
        await asyncio.gather(*(zoho.get_many("contacts", [some]) for _ in range(calls)))
        elapsed = time.monotonic() - started
    stats = await control["zohobooks"].get("stats")
    assert stats["rate_limited"] <= calls // 100
    assert calls / elapsed >= 0.9 * 20 * 0.95, f"{calls / elapsed:.1f} calls/s"


async def test_two_writers_of_one_contact_keep_each_others_fields(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    # Two mappings share the connection's connector: one writes a customer's phone while the other writes her
    # first name. Each update sends the whole persons array, built from a read of the contact; with every call
    # slowed down, both reads would come before both writes and the second write would put the old phone back.
    seed(reset_sandbox, contacts=3)
    ids = sorted(live(reset_sandbox, "contacts"))
    await control["zohobooks"].post("faults", {"latency_ms": [20, 60]})
    try:
        results = await asyncio.gather(*(
            zoho.update_many("contacts", [Update(contact, fields)])
            for contact in ids
            for fields in ({"phone": "+15550100"}, {"primary_contact.first_name": "Ada"}, {"email": "ada@example.com"})
        ))  # fmt: skip
    finally:
        await control["zohobooks"].post("faults", {})
    assert all(outcome.ok for [outcome] in results), results
    found = await zoho.get_many("contacts", ids)
    for contact in ids:
        fields = found[contact].fields
        assert (fields["phone"], fields["primary_contact.first_name"], fields["email"]) == (
            "+15550100", "Ada", "ada@example.com"
        ), contact


async def test_a_person_update_stands_on_the_read_just_made_and_a_second_on_the_first_ones_answer(
    zoho: ZohoBooksConnector, reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    # The engine reads a target just before writing it (its check for an edit since planning): the persons
    # array is built from that read, not from a second GET of the same contact. A second mapping's write of
    # the same customer next stands on the first write's answer, and keeps what the first wrote.
    seed(reset_sandbox, contacts=3)
    ids = sorted(live(reset_sandbox, "contacts"))

    async def contact_calls() -> dict[str, int]:
        requests = (await control["zohobooks"].get("stats"))["requests"]
        return {k: n for k, n in requests.items() if "/contacts/" in k}

    before = await contact_calls()
    await zoho.get_many("contacts", ids)
    first = await zoho.update_many("contacts", [Update(i, {"phone": "+15550100"}) for i in ids])
    second = await zoho.update_many("contacts", [Update(i, {"primary_contact.first_name": "Ada"}) for i in ids])
    assert all(o.ok for o in [*first, *second])
    after = await contact_calls()
    spent = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert spent == {"GET /books/v3/contacts/{contact_id}": 3, "PUT /books/v3/contacts/{contact_id}": 6}
    found = await zoho.get_many("contacts", ids)
    for contact in ids:
        fields = found[contact].fields
        assert (fields["phone"], fields["primary_contact.first_name"]) == ("+15550100", "Ada"), contact
