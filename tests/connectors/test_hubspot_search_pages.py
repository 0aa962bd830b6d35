"""HubSpot change search: one search pages through up to the 10,000 cap, each page two rows into the one before,
so re-listing the contacts of an overlap window costs about one call per 200 of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.sandbox.runner import Sandbox
from tests.connectors.conftest import ControlPlane
from tests.connectors.hubspot_fixtures import hubspot_connector

SEARCH = "POST /crm/v3/objects/{object_type}/search"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def searches(control: ControlPlane) -> int:
    """Search calls HubSpot has served so far."""
    return int((await control.get("stats"))["requests"].get(SEARCH, 0))


async def test_a_change_search_lists_its_window_in_pages_of_almost_200(
    reset_sandbox: Sandbox, control: dict[str, ControlPlane]
) -> None:
    hubspot_control = control["hubspot"]
    await hubspot_control.post("seed", {"contacts": 990, "seed": 3})
    await hubspot_control.post("limits", {"window_max": 100_000, "search_per_s": 1_000})
    async with hubspot_connector(reset_sandbox) as hubspot:
        before = await searches(hubspot_control)
        ids = [r.id async for page in hubspot.changes("contacts", LONG_AGO, timedelta(0)) for r in page.records]
        calls = await searches(hubspot_control) - before
    assert len(ids) == len(set(ids)) == 990
    # Offsets 0, 198, 396, 594 and 792 (the last page short): 5 = ceil(990 / 200). A new search from the last
    # stamp for every page, as before, re-listed the records sharing that millisecond each time.
    assert calls == 5
