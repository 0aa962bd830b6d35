"""The write journal on the real process: `syncd sync --once` SIGKILLed while it writes a batch of updates to
Zoho Books (once its journal rows are in the store), then a one-sided edit of every person and the next pass:
each edit wins, the killed writes are in the audit log as recovered (written) or unconfirmed (not yet sent)."""

from __future__ import annotations

import asyncio
import sys
import tomllib
from pathlib import Path

import tomli_w
from sqlalchemy.exc import OperationalError

from tests.engine.conftest import World
from tests.engine.test_command import write_config
from tests.engine.test_customers import ann, settle

PEOPLE = 60
MAPPING = "hubspot-zohobooks"
LIFTED = {"window_s": 1.0, "window_max": 1_000_000_000, "daily_cap": 1_000_000_000}
# Zoho Books paced at 40 calls a second: a batch of 60 updates (a read of the contact persons and a PUT each)
# takes seconds, so a kill after the first customer was written lands before the batch's commit.
PACED = {"window_s": 1.0, "window_max": 40, "daily_cap": 1_000_000_000}


def config_for(world: World, tmp_path: Path) -> Path:
    """The `syncd` config over the test's sandbox and store: HubSpot unpaced, Zoho Books paced as above."""
    path = write_config(tmp_path, world.sandbox)
    config = tomllib.loads(path.read_text())
    config["connections"]["hub"]["rate_limit"] = LIFTED
    config["connections"]["books"]["rate_limit"] = PACED
    path.write_bytes(tomli_w.dumps(config).encode())
    return path


async def cities_written(world: World, city: str) -> int:
    """How many Zoho Books customers hold `city` now (control plane)."""
    return sum((r.get("billing_address") or {}).get("city") == city for r in await world.zoho.raw("contacts"))


async def killed_once_written(world: World, config: Path, log: Path, city: str) -> None:
    """Start `syncd sync --once` and SIGKILL it once the store holds its journal rows and a customer holds
    `city` (polled with a deadline: the kill must land while the batch is being written)."""
    with log.open("ab") as handle:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "syncd", "sync", "--once", "--config", str(config), stdout=handle, stderr=handle
        )
        deadline = asyncio.get_running_loop().time() + 60
        try:
            while True:
                try:
                    if await world.stores.journal.pending(MAPPING) and await cities_written(world, city):
                        break
                except OperationalError:
                    pass  # the child holds the file's write lock this instant
                assert child.returncode is None, f"the pass ended before writing; see {log}"
                assert asyncio.get_running_loop().time() < deadline, "no write was journalled"
                await asyncio.sleep(0.002)
        finally:
            if child.returncode is None:
                child.kill()
            await child.wait()


async def test_sync_once_killed_mid_batch_loses_no_later_edit(world: World, tmp_path: Path) -> None:
    hub_ids = [await world.hubspot.put("contacts", ann(email=f"p{n}@example.com", lastname=f"Lee{n}"))
               for n in range(PEOPLE)]  # fmt: skip
    await settle(world)
    customers = {c["primary_contact.email"]: c["id"] for c in await world.zoho.all("contacts")}
    assert len(customers) == PEOPLE
    for hub_id in hub_ids:
        await world.hubspot.update("contacts", hub_id, {"city": "Cambridge"})
    await killed_once_written(world, config_for(world, tmp_path), tmp_path / "syncd.log", "Cambridge")
    # Killed mid-batch: some customers were written, none recorded.
    written = {e for e, i in customers.items()
               if (await world.zoho.get("contacts", i))["billing_address.city"] == "Cambridge"}  # fmt: skip
    pending = await world.stores.journal.pending(MAPPING)
    assert len(pending) == PEOPLE and 0 < len(written) < PEOPLE, (len(pending), len(written))
    # The people edit their city again in HubSpot only; the next process finds the rows left pending.
    for hub_id in hub_ids:
        await world.hubspot.update("contacts", hub_id, {"city": "Somerville"})
    await settle(world)
    for email, customer_id in customers.items():
        assert (await world.zoho.get("contacts", customer_id))["billing_address.city"] == "Somerville", email
    for hub_id in hub_ids:
        assert (await world.hubspot.get("contacts", hub_id))["city"] == "Somerville"
    assert not await world.stores.conflicts.list("open")
    rows = {e.id: e for e in await world.stores.audit.list(system="zohobooks", limit=1000)}
    resolved = [rows[w.id] for w in pending]
    assert sorted(r.status for r in resolved) == sorted(
        ["recovered"] * len(written) + ["unconfirmed"] * (PEOPLE - len(written))
    )
    assert not await world.stores.audit.list(status="pending")
