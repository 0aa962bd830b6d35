"""The HubSpot simulator's Properties API as `syncd setup` uses it through the official SDK: property groups
and custom properties created once (409 on a name in use, 400 for a group that does not exist), every response
checked against HubSpot's OpenAPI file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.properties import ApiException, PropertyCreate, PropertyGroupCreate

from syncd.sandbox.hubspot import HubSpotSimulator
from tests.contracts.hubspot.harness import ContractHarness

TIMEOUT = 10


@pytest.fixture
async def hub() -> AsyncIterator[ContractHarness]:
    """A portal nobody has set up for syncd; every response it gave must match HubSpot's OpenAPI file."""
    running = ContractHarness(HubSpotSimulator(rng_seed=5))
    await running.server.start_server()
    running.sim.store.drop_custom_definitions()
    try:
        yield running
        assert running.check() > 0
    finally:
        await running.server.close()


async def test_a_custom_property_needs_its_group_and_each_name_is_taken_once(hub: ContractHarness) -> None:
    client: Any = HubSpot(access_token=hub.sim.tokens.issue_access_token().access_token, host=hub.base_url,
                          retry=False)
    groups, properties = client.crm.properties.groups_api, client.crm.properties.core_api
    names = [g.name for g in (await asyncio.to_thread(groups.get_all, "deals", _request_timeout=TIMEOUT)).results]
    assert "dealinformation" in names and "syncd" not in names
    assert not any(p.name.startswith("syncd_") for p in
                   (await asyncio.to_thread(properties.get_all, "deals", _request_timeout=TIMEOUT)).results)

    wanted = PropertyCreate(name="syncd_invoice_total", label="Invoice total (syncd)", type="number",
                            field_type="number", group_name="syncd")
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(properties.create, "deals", wanted, _request_timeout=TIMEOUT)
    assert refused.value.status == 400 and "syncd" in refused.value.body

    group = PropertyGroupCreate(name="syncd", label="syncd", display_order=-1)
    made = await asyncio.to_thread(groups.create, "deals", group, _request_timeout=TIMEOUT)
    assert (made.name, made.archived) == ("syncd", False)
    with pytest.raises(ApiException) as taken:
        await asyncio.to_thread(groups.create, "deals", group, _request_timeout=TIMEOUT)
    assert taken.value.status == 409

    created = await asyncio.to_thread(properties.create, "deals", wanted, _request_timeout=TIMEOUT)
    assert (created.name, created.type, created.group_name, created.hubspot_defined) == (
        "syncd_invoice_total", "number", "syncd", False)
    with pytest.raises(ApiException) as again:
        await asyncio.to_thread(properties.create, "deals", wanted, _request_timeout=TIMEOUT)
    assert again.value.status == 409 and "already exists" in again.value.body
    # Contacts have groups of their own: the deals' group is not theirs.
    contact_groups = await asyncio.to_thread(groups.get_all, "contacts", _request_timeout=TIMEOUT)
    assert "syncd" not in [g.name for g in contact_groups.results]


async def test_a_fresh_portal_survives_a_state_file_round_trip() -> None:
    sim = HubSpotSimulator(rng_seed=5)
    sim.store.drop_custom_definitions()
    sim.store.groups["deals"]["mine"] = "Mine"
    again = HubSpotSimulator(rng_seed=5)
    again.load_state(sim.dump_state())
    assert "syncd_ref" not in again.store.properties["contacts"]
    assert again.store.groups["deals"] == {"dealinformation": "Deal information", "mine": "Mine"}
    again.restore_defaults()
    assert "syncd_ref" in again.store.properties["contacts"] and "syncd" in again.store.groups["contacts"]
