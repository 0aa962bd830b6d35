"""A widely used open-source HubSpot reader, Singer's `tap-hubspot` (4.5.0 on PyPI), reads the simulator's
contacts, companies and deals.

Two tests. The first replays, with aiohttp, the exact calls the tap makes when it discovers and then syncs the
contacts, deals, companies (with contacts_by_company), owners and deal_pipelines streams, in its order, read
from its source (`tap_hubspot/__init__.py`: `discover_schemas`, `load_schema`, `generate_custom_streams`,
`do_sync`, `sync_contacts`/`sync_v3_stream`, `sync_deals`/`gen_request`, `sync_companies`,
`_sync_contacts_by_company_batch_read`, `sync_owners`, `sync_deal_pipelines`), and reads what the tap reads
from each answer. It always runs. The second runs the real tap in a subprocess. tap-hubspot pins old libraries
(attrs 16, jsonschema 2.6) that cannot share the project's environment, so it is not a test dependency: the
test runs when SYNCD_TAP_HUBSPOT_PYTHON names a Python with it installed, e.g.
`python3 -m venv /tmp/tap && /tmp/tap/bin/pip install tap-hubspot==4.5.0`, and is skipped otherwise.

Before the simulator served these endpoints the tap stopped at its first call (the 2026-03 OAuth token path)
and, past that, at `/companies/v2/properties` and `/properties/v1/deals/properties` in discovery.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncd.sandbox.hubspot import HubSpotSimulator
from syncd.sandbox.seeding import SeedCounts, SeedWorld
from tests.contracts.hubspot.harness import ContractHarness

CONTACTS, COMPANIES, DEALS = 120, 24, 110
TAP_PYTHON = os.environ.get("SYNCD_TAP_HUBSPOT_PYTHON")
# The streams both tests sync, as the tap orders them (its STREAMS list).
SYNCED = ("contacts", "deals", "companies", "owners", "deal_pipelines", "contacts_by_company")


@pytest.fixture(scope="module")
async def harness() -> AsyncIterator[ContractHarness]:
    """One simulator per module, on a loopback port."""
    running = ContractHarness(HubSpotSimulator(rng_seed=23))
    await running.server.start_server()
    yield running
    await running.server.close()


@pytest.fixture
async def portal(harness: ContractHarness) -> AsyncIterator[ContractHarness]:
    """A seeded portal with zeroed call counters; every answer the vendor's files cover is checked after."""
    harness.sim.restore_defaults()
    harness.sim.seed(SeedWorld.build(6, CONTACTS), SeedCounts(contacts=CONTACTS, companies=COMPANIES, deals=DEALS))
    harness.sim.stats.clear()
    harness.exchanges.clear()
    yield harness
    assert harness.check() > 0


def expected_calls() -> Counter[str]:
    """The calls, by route, that discovery followed by a sync of SYNCED makes on this portal."""
    contact_pages = -(-CONTACTS // 100)
    deal_pages = -(-DEALS // 100)
    return Counter({
        "POST /oauth/2026-03/token": 2,  # one per run: discovery and sync are separate processes
        "GET /crm/v3/properties/{object_type}": 2 + 2 + 1,  # contacts, deals (v3 fields) x2, tickets once
        "GET /properties/v1/{object_type}/properties": 2,  # deals' legacy properties, x2
        "GET /companies/v2/properties": 2,
        "GET /crm/v3/schemas": 2,  # custom objects: at discovery and at the start of sync
        "GET /crm/v3/objects/{object_type}": contact_pages,
        "GET /deals/v1/deal/paged": deal_pages,
        "GET /companies/v2/companies/paged": 1,
        "GET /companies/v2/companies/{record_id}": COMPANIES,
        "POST /crm/v3/associations/{object_type}/{to_type}/batch/read": 1,
        "GET /crm/v3/owners/": 1,
        "GET /deals/v1/pipelines": 1,
    })


def expected_ids(sim: HubSpotSimulator) -> dict[str, set[str]]:
    """The ids of every live contact, company and deal."""
    return {obj: {r["id"] for r in sim.records(obj) or [] if not r["archived"]}
            for obj in ("contacts", "companies", "deals")}


class TapReplay:
    """The tap's HTTP calls, one method per function of its source that makes them."""

    def __init__(self, session: aiohttp.ClientSession, base: str, credentials: dict[str, str]) -> None:
        self.session = session
        self.base = base
        self.credentials = credentials
        self.token = ""

    async def refresh(self) -> None:
        """acquire_access_token_from_refresh_token: a form POST to the 2026-03 token path."""
        form = {"grant_type": "refresh_token", "redirect_uri": "http://localhost/cb",
                "refresh_token": self.credentials["refresh_token"], "client_id": self.credentials["client_id"],
                "client_secret": self.credentials["client_secret"]}
        async with self.session.post(self.base + "/oauth/2026-03/token", data=form) as got:
            assert got.status == 200
            self.token = (await got.json())["access_token"]

    async def get(self, path: str, params: Any = None) -> tuple[int, Any]:
        """request(): a GET with the bearer token; the tap raises on anything but 2xx (403 is 'unavailable')."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.get(self.base + path, params=params, headers=headers) as got:
            return got.status, await got.json()

    async def post(self, path: str, body: Any) -> Any:
        """post_search_endpoint(): a JSON POST with the bearer token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.post(self.base + path, json=body, headers=headers) as got:
            assert got.status in (200, 207)
            return await got.json()

    async def ok(self, path: str, params: Any = None) -> Any:
        status, body = await self.get(path, params)
        assert status == 200, (path, body)
        return body

    async def load_schemas(self, streams: tuple[str, ...]) -> None:
        """load_schema(): properties of contacts (v3), deals (v1 + v3), companies (v2) and tickets (v3)."""
        for stream in streams:
            if stream == "contacts":
                assert (await self.ok("/crm/v3/properties/contacts"))["results"]
            elif stream == "deals":
                assert await self.ok("/properties/v1/deals/properties")
                assert (await self.ok("/crm/v3/properties/deals"))["results"]
            elif stream == "companies":
                assert await self.ok("/companies/v2/properties")
            elif stream == "tickets":
                status, _ = await self.get("/crm/v3/properties/tickets")
                assert status == 403  # SourceUnavailableException: the tap leaves the stream out

    async def discover(self) -> None:
        """discover_schemas(): every stream's schema in STREAMS order, then the custom objects."""
        await self.refresh()
        await self.load_schemas(("contacts", "deals", "companies", "tickets"))
        assert (await self.ok("/crm/v3/schemas"))["results"] == []

    async def sync(self) -> dict[str, list[Any]]:
        """do_sync() for SYNCED; returns what the tap would emit per stream."""
        await self.refresh()
        assert (await self.ok("/crm/v3/schemas"))["results"] == []
        out: dict[str, list[Any]] = {stream: [] for stream in SYNCED}
        # sync_contacts -> sync_v3_stream: limit 100, associations tickets,companies,deals; paging.next.after.
        await self.load_schemas(("contacts",))
        params = {"limit": "100", "properties": "email,firstname,lastname",
                  "associations": "tickets,companies,deals"}
        while True:
            page = await self.ok("/crm/v3/objects/contacts", params)
            out["contacts"] += [row["id"] for row in page["results"] if row["updatedAt"]]
            after = page.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
            params["after"] = after
        # sync_deals -> gen_request: deals/v1/deal/paged with every property, offset while hasMore.
        await self.load_schemas(("deals",))
        deal_params = {"limit": "100", "includeAssociations": "False", "includeAllProperties": "True",
                       "allPropertiesFetchMode": "latest_version"}
        while True:
            page = await self.ok("/deals/v1/deal/paged", deal_params)
            out["deals"] += [str(row["dealId"]) for row in page["deals"]
                             if row["properties"]["hs_lastmodifieddate"]["timestamp"] > 0]
            if not page.get("hasMore"):
                break
            deal_params["offset"] = str(page["offset"])
        # sync_companies: companies/v2 paged (limit 250), a detail read per company, then contacts_by_company.
        await self.load_schemas(("companies",))
        company_params = [("limit", "250"), ("properties", "createdate"), ("properties", "hs_lastmodifieddate")]
        company_ids: list[int] = []
        while True:
            page = await self.ok("/companies/v2/companies/paged", company_params)
            for row in page["companies"]:
                assert row["properties"]["hs_lastmodifieddate"]["timestamp"] > 0
                detail = await self.ok(f"/companies/v2/companies/{row['companyId']}")
                out["companies"].append(str(detail["companyId"]))
                company_ids.append(row["companyId"])
            if not page.get("has-more"):
                break
            company_params.append(("offset", str(page["offset"])))
        rows = await self.post("/crm/v3/associations/company/contact/batch/read",
                               {"inputs": [{"id": i} for i in company_ids]})
        out["contacts_by_company"] = [(r["from"]["id"], c["id"]) for r in rows["results"] for c in r["to"]]
        # sync_owners -> sync_v3_stream on /crm/v3/owners/ (trailing slash), limit 500.
        out["owners"] = (await self.ok("/crm/v3/owners/", {"limit": "500"}))["results"]
        # sync_deal_pipelines: one legacy read.
        out["deal_pipelines"] = await self.ok("/deals/v1/pipelines")
        return out


async def test_the_tap_s_call_sequence_reads_contacts_companies_and_deals(portal: ContractHarness) -> None:
    sim = portal.sim
    async with aiohttp.ClientSession() as session:
        replay = TapReplay(session, portal.base_url, sim.credentials(portal.base_url))
        await replay.discover()
        read = await replay.sync()
    wanted = expected_ids(sim)
    for obj in ("contacts", "companies", "deals"):
        assert sorted(read[obj]) == sorted(wanted[obj]), obj
    links = {(c["id"], contact) for c in sim.records("companies") or [] for contact in c["associations"]["contacts"]}
    assert set(read["contacts_by_company"]) == links and len(links) == CONTACTS
    assert len(read["owners"]) == 1 and read["deal_pipelines"][0]["pipelineId"] == "default"
    assert sim.stats.requests == expected_calls()


@pytest.mark.skipif(TAP_PYTHON is None, reason="set SYNCD_TAP_HUBSPOT_PYTHON to a Python with tap-hubspot")
async def test_the_real_tap_reads_contacts_companies_and_deals(portal: ContractHarness, tmp_path: Path) -> None:
    assert TAP_PYTHON is not None
    sim = portal.sim
    credentials = sim.credentials(portal.base_url)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "client_id": credentials["client_id"], "client_secret": credentials["client_secret"],
        "refresh_token": credentials["refresh_token"], "redirect_uri": "http://localhost/cb",
        "start_date": "2000-01-01T00:00:00Z",
    }))
    # The tap's base URL is a module constant (api.hubapi.com); pointing it at the sandbox is the only change.
    runner = tmp_path / "run_tap.py"
    runner.write_text("import sys, tap_hubspot\ntap_hubspot.BASE_URL = sys.argv.pop(1)\ntap_hubspot.main()\n")

    async def tap(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            TAP_PYTHON, str(runner), portal.base_url, "--config", str(config), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode == 0, stderr.decode()[-3000:]
        return stdout.decode()

    catalog = json.loads(await tap("--discover"))
    assert {s["tap_stream_id"] for s in catalog["streams"]} >= set(SYNCED)
    for stream in catalog["streams"]:
        if stream["tap_stream_id"] in SYNCED:
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = True
    selected = tmp_path / "catalog.json"
    selected.write_text(json.dumps(catalog))
    messages = [json.loads(line) for line in (await tap("--properties", str(selected))).splitlines() if line]
    records: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
    wanted = expected_ids(sim)
    assert sorted(r["id"] for r in records["contacts"]) == sorted(wanted["contacts"])
    assert sorted(str(r["companyId"]) for r in records["companies"]) == sorted(wanted["companies"])
    assert sorted(str(r["dealId"]) for r in records["deals"]) == sorted(wanted["deals"])
    assert len(records["contacts_by_company"]) == CONTACTS
    assert {r["email"] for r in records["owners"]} == {"owner@sandbox-portal.example"}
    assert sim.stats.requests == expected_calls()
