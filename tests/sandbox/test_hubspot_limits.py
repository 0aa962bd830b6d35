"""HubSpot simulator: OAuth grants and expiry, rate limits, search limits, indexing lag and the 10,000 cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yarl

from syncd.sandbox.hubspot import HubSpotSimulator
from tests.contracts.hubspot.harness import ContractHarness


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hub() -> AsyncIterator[tuple[ContractHarness, FakeClock, aiohttp.ClientSession]]:
    """A fresh simulator on a fake clock (revocation must not leak between tests), plus a client session."""
    clock = FakeClock()
    running = ContractHarness(HubSpotSimulator(clock=clock, rng_seed=3))
    await running.server.start_server()
    session = aiohttp.ClientSession(base_url=running.base_url)
    yield running, clock, session
    await session.close()
    await running.server.close()
    assert running.check() > 0


async def call(session: aiohttp.ClientSession, method: str, path: str, token: str, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw) as response:
        return response.status, await response.json()


async def refresh(session: aiohttp.ClientSession, sim: HubSpotSimulator, refresh_token: str) -> tuple[int, Any]:
    form = {"grant_type": "refresh_token", "client_id": sim.client_id, "client_secret": sim.client_secret,
            "refresh_token": refresh_token}
    async with session.post("/oauth/v1/token", data=form) as response:
        return response.status, await response.json()


async def test_token_expiry_refresh_bad_refresh_and_revoke(hub: Any) -> None:
    harness, clock, session = hub
    sim = harness.sim
    status, grant = await refresh(session, sim, sim.tokens.refresh_token)
    assert status == 200 and grant["expires_in"] == 1800 and grant["token_use"] == "access_token"
    token = grant["access_token"]
    assert (await call(session, "GET", "/crm/v3/objects/contacts", token))[0] == 200
    clock.now += 1801
    status, body = await call(session, "GET", "/crm/v3/objects/contacts", token)
    assert status == 401 and body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"] == "The OAuth token used to make this call expired 1 second(s) ago."
    assert list(body["context"]) == ["expire time"]
    status, grant = await refresh(session, sim, sim.tokens.refresh_token)
    assert (await call(session, "GET", "/crm/v3/objects/contacts", grant["access_token"]))[0] == 200
    sim.expire_tokens()  # POST /_sandbox/expire-tokens
    assert (await call(session, "GET", "/crm/v3/objects/contacts", grant["access_token"]))[1]["category"] == (
        "EXPIRED_AUTHENTICATION"
    )
    status, body = await refresh(session, sim, "not-a-refresh-token")
    assert status == 400 and body["status"] == "BAD_REFRESH_TOKEN"
    status, body = await call(session, "GET", "/crm/v3/objects/contacts", "made-up")
    assert status == 401 and body["category"] == "INVALID_AUTHENTICATION"
    sim.revoke_tokens()
    status, body = await refresh(session, sim, sim.tokens.refresh_token)
    assert status == 400 and body["status"] == "BAD_REFRESH_TOKEN"


async def test_authorization_code_flow(hub: Any) -> None:
    harness, _, session = hub
    sim = harness.sim
    redirect = "http://127.0.0.1:9/callback"
    async with session.get("/oauth/authorize", params={"client_id": sim.client_id, "redirect_uri": redirect,
                                                      "scope": "oauth", "state": "xyz"},
                           allow_redirects=False) as response:
        assert response.status == 302
        location = yarl.URL(response.headers["Location"])
    assert str(location).startswith(redirect) and location.query["state"] == "xyz"
    form = {"grant_type": "authorization_code", "client_id": sim.client_id, "client_secret": sim.client_secret,
            "code": location.query["code"], "redirect_uri": redirect}
    async with session.post("/oauth/v1/token", data=form) as response:
        grant = await response.json()
    assert response.status == 200 and grant["refresh_token"] != sim.tokens.refresh_token
    assert (await call(session, "GET", "/crm/v3/objects/deals", grant["access_token"]))[0] == 200
    async with session.post("/oauth/v1/token", data=form) as response:  # a code is single-use
        assert response.status == 400 and (await response.json())["status"] == "BAD_AUTH_CODE"


async def test_rate_limit_headers_and_429(hub: Any) -> None:
    harness, clock, session = hub
    sim = harness.sim
    sim.apply_limits({"window_max": 5})
    token = sim.tokens.issue_access_token().access_token
    remaining = []
    for _ in range(5):
        async with session.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
            assert r.headers["X-HubSpot-RateLimit-Max"] == "5"
            assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            assert r.headers["X-HubSpot-RateLimit-Daily"] == "250000"
            assert "X-HubSpot-RateLimit-Secondly-Remaining" in r.headers
            remaining.append(int(r.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    status, body = await call(session, "GET", "/crm/v3/objects/contacts", token)
    assert status == 429 and body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    clock.now += 10
    assert (await call(session, "GET", "/crm/v3/objects/contacts", token))[0] == 200
    sim.apply_limits({"daily_cap": 7})
    await call(session, "GET", "/crm/v3/objects/contacts", token)
    status, body = await call(session, "GET", "/crm/v3/objects/contacts", token)
    assert status == 429 and body["policyName"] == "DAILY"
    with pytest.raises(ValueError):
        sim.apply_limits({"burst": 3})


async def test_search_limits_lag_and_result_cap(hub: Any) -> None:
    harness, clock, session = hub
    sim = harness.sim
    token = sim.tokens.issue_access_token().access_token
    eq = {"propertyName": "email", "operator": "HAS_PROPERTY"}

    async def search(body: dict[str, Any]) -> tuple[int, Any]:
        clock.now += 1  # one search a second keeps clear of search's own per-second limit
        return await call(session, "POST", "/crm/v3/objects/contacts/search", token, json=body)

    for bad in (
        {"filterGroups": [{"filters": [eq]}] * 6},
        {"filterGroups": [{"filters": [eq] * 11}]},
        {"filterGroups": [{"filters": [eq] * 9}] * 3},
        {"limit": 201},
        {"after": "10000"},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]},
    ):
        status, body = await search(bad)
        assert status == 400 and body["category"] == "VALIDATION_ERROR", bad
    sim.apply_limits({"search_lag_s": 30})
    status, created = await call(session, "POST", "/crm/v3/objects/contacts", token,
                                 json={"properties": {"email": "late@example.com"}})
    assert status == 201
    query = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "late@example.com"}]}]}
    assert (await search(query))[1]["total"] == 0  # not indexed yet...
    status, body = await call(session, "POST", "/crm/v3/objects/contacts", token,
                              json={"properties": {"email": "late@example.com"}})
    assert status == 409  # ...yet the unique e-mail already holds, as in real use
    clock.now += 31
    assert [r["id"] for r in (await search(query))[1]["results"]] == [created["id"]]
    # Paging stops at the 10,000th result even when more match.
    status, body = await search({"after": "9999", "limit": 200})
    assert status == 200 and "paging" not in body


async def test_search_allows_four_requests_a_second_and_the_fifth_gets_a_secondly_429(hub: Any) -> None:
    harness, clock, session = hub
    token = harness.sim.tokens.issue_access_token().access_token
    clock.now = 1_750_000_000.0  # the start of a second
    statuses = []
    for _ in range(5):
        async with session.post("/crm/v3/objects/contacts/search", json={},
                                headers={"Authorization": f"Bearer {token}"}) as response:
            statuses.append(response.status)
            body = await response.json()
    assert statuses == [200, 200, 200, 200, 429]
    assert body["policyName"] == "SECONDLY" and body["errorType"] == "RATE_LIMIT"
    assert response.headers["Retry-After"] == "1"
    # Other endpoints are not held to search's limit, and the next second opens search again.
    assert (await call(session, "GET", "/crm/v3/objects/contacts", token))[0] == 200
    clock.now += 1
    assert (await call(session, "POST", "/crm/v3/objects/contacts/search", token, json={}))[0] == 200
    harness.sim.apply_limits({"search_per_s": 1})
    clock.now += 1
    assert (await call(session, "POST", "/crm/v3/objects/contacts/search", token, json={}))[0] == 200
    assert (await call(session, "POST", "/crm/v3/objects/contacts/search", token, json={}))[0] == 429
    assert harness.sim.stats.rate_limited == 2


async def test_secondly_headers_are_reported_but_only_the_ten_second_window_refuses(hub: Any) -> None:
    harness, clock, session = hub
    token = harness.sim.tokens.issue_access_token().access_token
    clock.now = 1_750_000_000.0
    secondly_remaining = []
    for _ in range(30):  # far past the reported secondly figure (10), within one second and one window
        async with session.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
            secondly_remaining.append(int(r.headers["X-HubSpot-RateLimit-Secondly-Remaining"]))
    assert secondly_remaining[0] == 9 and secondly_remaining[-1] == 0


async def test_batch_limit_and_unknown_object(hub: Any) -> None:
    harness, _, session = hub
    token = harness.sim.tokens.issue_access_token().access_token
    inputs = [{"properties": {"email": f"x{i}@example.com"}} for i in range(101)]
    status, body = await call(session, "POST", "/crm/v3/objects/contacts/batch/create", token, json={"inputs": inputs})
    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    status, body = await call(session, "POST", "/crm/v3/objects/0-1/batch/create", token, json={"inputs": inputs[:100]})
    assert status == 201 and len(body["results"]) == 100
    status, body = await call(session, "GET", "/crm/v3/objects/widgets", token)
    assert status == 400


async def test_association_batch_read_takes_1000_inputs_and_refuses_more(hub: Any) -> None:
    harness, _, session = hub
    token = harness.sim.tokens.issue_access_token().access_token
    path = "/crm/v4/associations/contacts/companies/batch/read"
    inputs = [{"id": str(i)} for i in range(1, 1002)]
    status, body = await call(session, "POST", path, token, json={"inputs": inputs})
    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    status, body = await call(session, "POST", path, token, json={"inputs": inputs[:1000]})
    assert status == 207 and body["numErrors"] == 1000  # none of these contacts exists
