"""The TokenManager with the HubSpot connector on the sandbox: single-flight refresh, revoked grants."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from syncd.connectors.base import Create
from syncd.connectors.hubspot import HubSpotConnector
from syncd.errors import AuthError
from syncd.sandbox.runner import Sandbox
from tests.connectors.conftest import ControlPlane, StoredTokens
from tests.connectors.hubspot_fixtures import hubspot_connector

TOKEN_ROUTE = "POST /oauth/v1/token"


async def refreshes_on_sandbox(control: ControlPlane) -> int:
    """How many token requests the HubSpot simulator has answered."""
    stats = await control.get("stats")
    return int(stats["requests"].get(TOKEN_ROUTE, 0))


def hold_the_second_turn(hubspot: HubSpotConnector) -> asyncio.Event:
    """Once a call's first try is sent, the system asks everyone to wait (the limiter pauses until resumed); the
    event is set when that call, refused, queues for its second turn."""
    events: list[str] = []
    second_turn = asyncio.Event()

    def watch(event: str, _priority: object) -> None:
        events.append(event)
        if event == "granted" and events.count("granted") == 1:
            hubspot.limiter.pause(3600)
        if event == "queued" and events.count("queued") == 2:
            second_turn.set()

    hubspot.limiter.watcher = watch
    return second_turn


async def requests_so_far(control: ControlPlane) -> dict[str, int]:
    """The simulator's request count by route."""
    return dict((await control.get("stats"))["requests"])


async def spent_since(control: ControlPlane, before: dict[str, int]) -> dict[str, int]:
    """The API requests made since `before`, by route (the control plane's own left out)."""
    after = await requests_so_far(control)
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0) and "/_sandbox/" not in k}


async def test_fifty_calls_meeting_an_expired_token_cause_one_refresh(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane], stored_tokens: StoredTokens
) -> None:
    storage = stored_tokens.storage
    async with hubspot_connector(reset_sandbox, storage=storage) as hubspot:
        await hubspot.describe("contacts")  # first token
        assert hubspot.tokens.refreshes == 1
        first = (await stored_tokens.grant("hubspot-test")).access_token
        before = await refreshes_on_sandbox(control["hubspot"])
        await control["hubspot"].post("expire-tokens")
        results = await asyncio.gather(*(hubspot.get_many("contacts", [str(1000 + i)]) for i in range(50)))
    assert all(r == {} for r in results)
    assert hubspot.tokens.refreshes == 2
    assert await refreshes_on_sandbox(control["hubspot"]) - before == 1
    # The new token went to the store.
    assert (await stored_tokens.grant("hubspot-test")).access_token != first


async def test_token_expiry_in_the_middle_of_a_paged_read(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    await control["hubspot"].post("seed", {"contacts": 450, "seed": 2})
    async with hubspot_connector(reset_sandbox) as hubspot:
        seen: list[str] = []
        pages = 0
        async for page in hubspot.changes("contacts", datetime(2000, 1, 1, tzinfo=UTC), timedelta(0)):
            seen.extend(r.id for r in page.records)
            pages += 1
            if pages == 1:
                await control["hubspot"].post("expire-tokens")
        assert pages >= 3
        assert hubspot.tokens.refreshes == 2
    assert len(seen) == len(set(seen)) == 450


async def test_revoked_grant_needs_reauth_and_other_connections_keep_working(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane], stored_tokens: StoredTokens
) -> None:
    storage = stored_tokens.storage
    # A grant the user removed: this connection's refresh token is no longer accepted.
    async with hubspot_connector(reset_sandbox, "crm-a", storage=storage, refresh_token="hs-rt-removed") as revoked, \
            hubspot_connector(reset_sandbox, "crm-b", storage=storage) as healthy:
        await healthy.describe("contacts")
        with pytest.raises(AuthError) as caught:
            await revoked.create_many("contacts", [Create("r1", {"email": "r1@x.com"})])
        message = str(caught.value)
        assert "crm-a" in message and "syncd auth crm-a" in message
        assert "syncd auth crm-a" in str(await stored_tokens.reauth_reason("crm-a"))
        # Further calls fail fast with the same advice instead of hammering the token endpoint.
        before = await refreshes_on_sandbox(control["hubspot"])
        with pytest.raises(AuthError):
            await revoked.get_many("contacts", ["1"])
        assert await refreshes_on_sandbox(control["hubspot"]) == before
        outcomes = await healthy.create_many("contacts", [Create("h1", {"email": "h1@x.com"})])
        assert outcomes[0].ok
    assert await stored_tokens.reauth_reason("crm-b") is None


async def test_sandbox_revoke_is_reported_as_needing_reauth(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane], stored_tokens: StoredTokens
) -> None:
    storage = stored_tokens.storage
    async with hubspot_connector(reset_sandbox, "crm-r", storage=storage) as hubspot:
        await hubspot.describe("deals")
        await control["hubspot"].post("revoke")
        with pytest.raises(AuthError, match="syncd auth crm-r"):
            await hubspot.get_many("deals", ["1"])
    assert await stored_tokens.reauth_reason("crm-r") is not None


async def test_authorisation_code_flow_against_the_sandbox(
    reset_sandbox: Sandbox, control_session: object
) -> None:
    assert isinstance(control_session, aiohttp.ClientSession)
    async with hubspot_connector(reset_sandbox, authorize_url=reset_sandbox.control_url("hubspot")
                                 + "/oauth/authorize") as hubspot:
        redirect = "http://127.0.0.1:9/callback"
        url = hubspot.authorize_url(redirect, "st4te")
        async with control_session.get(url, allow_redirects=False) as response:
            assert response.status == 302
            query = parse_qs(urlsplit(response.headers["Location"]).query)
        assert query["state"] == ["st4te"]
        grant = await hubspot.exchange_code(query["code"][0], redirect)
        assert grant.refresh_token and grant.expires_at is not None
        assert await hubspot.get_many("contacts", ["1"]) == {}


async def test_a_token_living_shorter_than_the_early_margin_is_not_renewed_on_every_call(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    # Renewing a minute early is right for HubSpot's 30-minute tokens; a system handing out 5-second tokens must
    # not make every call refresh first (the chaos runs saw 95 Zoho Books refreshes a second before this).
    await control["hubspot"].post("limits", {"token_lifetime_s": 5})
    async with hubspot_connector(reset_sandbox) as hubspot:
        await hubspot.describe("contacts")  # first token
        before = await refreshes_on_sandbox(control["hubspot"])
        for i in range(20):
            await hubspot.get_many("contacts", [str(1000 + i)])
    assert await refreshes_on_sandbox(control["hubspot"]) == before


async def test_a_call_waiting_its_turn_takes_its_token_when_the_turn_comes(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    # A call answered 401 refreshes the token and goes again, in a turn of its own, which can be a minute away
    # (a 429's Retry-After). Every token stopping working during that wait (an expiry, a rotation) must cost one
    # more 401 and refresh at most, never the call: a token refreshed before the wait and refused after it reads
    # as a grant that no longer works, and pauses the connection until a person re-authorises it.
    async with hubspot_connector(reset_sandbox) as hubspot:
        await hubspot.describe("contacts")  # first token
        await control["hubspot"].post("expire-tokens")  # the call's first try is refused
        second_turn = hold_the_second_turn(hubspot)
        before = await requests_so_far(control["hubspot"])
        call = asyncio.create_task(hubspot.get_many("contacts", ["1001"]))
        await second_turn.wait()  # refused once, waiting for its second turn
        await control["hubspot"].post("expire-tokens")  # and every token stops working again meanwhile
        hubspot.limiter.resume()
        assert await call == {}
        spent = await spent_since(control["hubspot"], before)
    assert spent == {TOKEN_ROUTE: 1, "POST /crm/v3/objects/{object_type}/batch/read": 2}, spent


async def test_a_token_another_call_refreshed_and_lost_meanwhile_is_refreshed_again(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    # Calls running together share one token: the first refused refreshes it, the others take the new one. A call
    # that waited its second turn while that new token expired too (the chaos runs' tokens live seconds) was
    # refused again and failed its whole object sync with an AuthError, though the grant was fine: only a 401 to
    # a token the call refreshed itself proves that.
    async with hubspot_connector(reset_sandbox) as hubspot:
        await hubspot.describe("contacts")  # first token
        refused = await hubspot.tokens.token()
        await control["hubspot"].post("expire-tokens")  # the call's first try is refused
        second_turn = hold_the_second_turn(hubspot)
        before = await requests_so_far(control["hubspot"])
        call = asyncio.create_task(hubspot.get_many("contacts", ["1001"]))
        await second_turn.wait()  # refused once, waiting for its second turn
        _, refreshed = await hubspot.tokens.token_rejected(refused)  # another call, refused too, refreshed first
        assert refreshed
        await control["hubspot"].post("expire-tokens")  # and that token stops working before this call's turn
        hubspot.limiter.resume()
        assert await call == {}
        spent = await spent_since(control["hubspot"], before)
    assert spent == {TOKEN_ROUTE: 2, "POST /crm/v3/objects/{object_type}/batch/read": 3}, spent
