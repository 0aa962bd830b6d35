"""SalesforceConnector with the sandbox's faults on: 5xx, REQUEST_LIMIT_EXCEEDED, dropped connections,
latency, sessions expiring in the middle of a paged read, revoked grants, and the org's rate limit."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from syncd.connectors.base import Create, Update, WriteOutcome
from syncd.errors import AuthError
from syncd.sandbox.runner import Sandbox
from tests.connectors.conftest import ControlPlane, StoredTokens
from tests.connectors.test_salesforce import read_all, salesforce_connector

FLAKY = {"error_rate": 0.15, "rate_limit_rate": 0.1, "latency_ms": [0, 5]}


async def test_paged_read_with_faults_skips_nothing(reset_sandbox: Sandbox,
                                                   control: dict[str, ControlPlane]) -> None:
    await control["salesforce"].post("seed", {"contacts": 1000, "seed": 7})
    expected = {r["Id"] for r in reset_sandbox.salesforce.records("Contact") or []}
    await control["salesforce"].post("faults", {**FLAKY, "timeout_rate": 0.05, "timeout_s": 0.1})
    # A read is a dozen calls: read again (each read checked whole) until the faults have really struck.
    for _ in range(5):
        async with salesforce_connector(reset_sandbox) as sf:
            records, cursors = await read_all(sf, "Contact")
        assert {r.id for r in records} == expected
        assert len(records) == len(expected)  # one read, one snapshot: nothing twice either
        assert cursors == sorted(cursors)
        stats = await control["salesforce"].get("stats")
        if stats["responses"].get("503", 0) + stats["responses"].get("500", 0) > 0:
            break
    else:
        raise AssertionError("five reads met no injected 5xx: were the faults on?")


async def test_session_expiring_mid_read_is_refreshed_and_the_read_continues(
        reset_sandbox: Sandbox, control: dict[str, ControlPlane]) -> None:
    await control["salesforce"].post("seed", {"contacts": 700})
    async with salesforce_connector(reset_sandbox) as sf:
        seen: list[str] = []
        pages = 0
        async for page in sf.changes("Contact", None, timedelta(0)):
            seen.extend(r.id for r in page.records)
            pages += 1
            if pages == 1:
                await control["salesforce"].post("expire-tokens")
        assert pages == 4
        assert len(seen) == len(set(seen)) == 700
        assert sf.tokens.refreshes == 2  # the first token, then exactly one refresh after the 401
    stats = await control["salesforce"].get("stats")
    assert stats["responses"].get("401", 0) == 1


async def test_fifty_concurrent_calls_on_an_expired_session_refresh_once(
        reset_sandbox: Sandbox, control: dict[str, ControlPlane]) -> None:
    await control["salesforce"].post("seed", {"contacts": 5})
    ids = [r["Id"] for r in reset_sandbox.salesforce.records("Contact") or []]
    async with salesforce_connector(reset_sandbox, max_concurrency=16) as sf:
        await sf.get_many("Contact", ids)
        assert sf.tokens.refreshes == 1
        await control["salesforce"].post("expire-tokens")
        results = await asyncio.gather(*(sf.get_many("Contact", [ids[i % 5]]) for i in range(50)))
        assert all(len(r) == 1 for r in results)
        assert sf.tokens.refreshes == 2


async def test_revoked_grant_marks_the_connection_for_reauthorisation(
        reset_sandbox: Sandbox, control: dict[str, ControlPlane], stored_tokens: StoredTokens) -> None:
    storage = stored_tokens.storage
    async with salesforce_connector(reset_sandbox, name="sf-revoked", storage=storage) as sf:
        await sf.describe("Contact")
        await control["salesforce"].post("revoke")
        with pytest.raises(AuthError) as failure:
            await sf.get_many("Contact", ["003000000000001AAA"])
    message = str(failure.value)
    assert "sf-revoked" in message and "syncd auth sf-revoked" in message
    reason = await stored_tokens.reauth_reason("sf-revoked")
    assert reason is not None
    token = (await stored_tokens.grant("sf-revoked")).access_token  # the first grant was stored
    assert token and token not in message and token not in reason


async def test_creates_under_faults_make_each_record_exactly_once(
        reset_sandbox: Sandbox, control: dict[str, ControlPlane]) -> None:
    # Dropped connections make the outcome of a create unknown: the connector must look before re-creating.
    await control["salesforce"].post("faults", {**FLAKY, "timeout_rate": 0.2, "timeout_s": 0.05})
    items = [Create(f"fault-{i}", {"LastName": f"Faulty{i}"}) for i in range(60)]
    async with salesforce_connector(reset_sandbox) as sf:
        outcomes: list[WriteOutcome] = []
        for start in range(0, 60, 10):
            outcomes.extend(await sf.create_many("Contact", items[start:start + 10]))
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
        updates = await sf.update_many("Contact", [Update(o.id or "", {"Title": "Fixed"}) for o in outcomes])
        assert all(u.ok for u in updates)
    stored = [r for r in reset_sandbox.salesforce.records("Contact") or [] if not r["IsDeleted"]]
    assert sorted(r["Syncd_Ref__c"] for r in stored) == sorted(i.reference for i in items)
    assert {r["Title"] for r in stored} == {"Fixed"}
    assert {r["Id"] for r in stored} == {o.id for o in outcomes}


async def test_rate_limit_spends_the_budget_evenly_without_limit_errors(
        reset_sandbox: Sandbox, control: dict[str, ControlPlane]) -> None:
    # The org allows 40 calls per second; the connection is configured with the same limit.
    await control["salesforce"].post("limits", {"window_s": 1, "window_max": 40})
    await control["salesforce"].post("seed", {"contacts": 3})
    ids = [r["Id"] for r in reset_sandbox.salesforce.records("Contact") or []]
    async with salesforce_connector(reset_sandbox, rate_limit={"window_s": 1.0, "window_max": 40}) as sf:
        await sf.describe("Contact")
        deadline = time.monotonic() + 3.0
        started = datetime.now(UTC)

        async def worker() -> int:
            calls = 0
            while time.monotonic() < deadline:
                await sf.get_many("Contact", ids)
                calls += 1
            return calls

        calls = sum(await asyncio.gather(*(worker() for _ in range(6))))
        elapsed = (datetime.now(UTC) - started).total_seconds()
    stats = await control["salesforce"].get("stats")
    limited = stats["responses"].get("403", 0)
    assert limited <= 0.01 * calls
    assert calls / elapsed >= 0.9 * 40, (calls, elapsed)
