"""A mapping's identity is the `name` in its file: a copied file keeps every link, a renamed one is refused at
start until `syncd mappings rename` moves the links, and either way no record is created a second time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.fernet import Fernet

from syncd.engine.command import sync_once
from syncd.engine.plan import SyncReport
from syncd.errors import MappingError
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.settings import Settings, load_settings
from syncd.store import Database
from syncd.store.schema import upgrade_database
from tests.engine.conftest import GENEROUS, World
from tests.engine.test_command import syncd
from tests.engine.test_customers import ann
from tests.engine.test_deals import won_deal
from tests.store.conftest import database_url

# The store tests' fixture, used here: a SQLite file, and a PostgreSQL schema when SYNCD_TEST_POSTGRES_URL is set.
__all__ = ["database_url"]

SHIPPED = SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml"
SHIPPED_NAME = 'name = "hubspot-zohobooks"'
TOKEN_KEY = Fernet.generate_key().decode()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The `world`'s store, migrated: a SQLite file, or a PostgreSQL schema."""
    database = await Database.open(database_url)
    await upgrade_database(database)
    try:
        yield database
    finally:
        await database.close()


def write_config(tmp_path: Path, world: World, mapping: Path, store_url: str) -> Path:
    """A config on the test's sandbox and store with one active mapping file (HubSpot ↔ Zoho Books)."""
    hub, zoho = world.sandbox.descriptor["hubspot"], world.sandbox.descriptor["zohobooks"]
    config: dict[str, Any] = {
        "store": {"url": store_url},
        "security": {"token_key": TOKEN_KEY},
        "mappings": {"active": [str(mapping)]},
        "connections": {
            "hub": {"system": "hubspot", "rate_limit": GENEROUS, **{k: hub[k] for k in (
                "base_url", "client_id", "client_secret", "refresh_token", "app_secret")}},
            "books": {"system": "zohobooks", "rate_limit": GENEROUS, **{k: zoho[k] for k in (
                "base_url", "accounts_url", "client_id", "client_secret", "refresh_token", "organization_id")}},
        },
    }  # fmt: skip
    path = tmp_path / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    return path


def copy_of_shipped(tmp_path: Path, file_name: str, name: str = "hubspot-zohobooks") -> Path:
    """The shipped file copied elsewhere to be edited, as the README suggests, possibly under a new name."""
    text = SHIPPED.read_text().replace(SHIPPED_NAME, f'name = "{name}"')
    text = text.replace('default_currency = "USD"', 'default_currency = "USD"  # edited by ops')
    path = tmp_path / "ops" / file_name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


async def history(world: World, tmp_path: Path, store_url: str) -> Settings:
    """Customers and an invoiced won deal synced with the shipped file: one customer was already in Zoho Books
    (matched on a mixed-case e-mail), two were created there; returns the settings that synced them."""
    await world.zoho.put("contacts", {
        "contact_name": "Ben Okafor", "contact_type": "customer", "primary_contact.first_name": "Ben",
        "primary_contact.last_name": "Okafor", "primary_contact.email": "ben.okafor@example.com",
    })  # fmt: skip
    await world.hubspot.put("contacts", ann(email="Ben.Okafor@Example.COM", firstname="Ben", lastname="Okafor"))
    await world.hubspot.put("contacts", ann(email="chloe@example.com", firstname="Chloé", lastname="Martin"))
    await won_deal(world)  # Ann Lee, with a won deal of 1200
    settings = load_settings(write_config(tmp_path, world, SHIPPED, store_url))
    await settle(settings)
    assert await world.zoho.count("contacts") == 3 and await world.zoho.count("invoices") == 1
    return settings


async def settle(settings: Settings) -> SyncReport:
    """`sync --once` until a pass writes nothing; returns that pass's report."""
    for _ in range(5):
        report = await sync_once(settings, dry_run=False)
        assert not report.errors, report.errors
        if report.settled:
            return report
    raise AssertionError("never settled")


async def test_a_copied_mapping_file_keeps_every_link_and_creates_nothing(
    world: World, tmp_path: Path, database_url: str
) -> None:
    await history(world, tmp_path, database_url)
    links_before = await world.stores.links.list(limit=None)
    copy = copy_of_shipped(tmp_path, "crm-to-books.toml")
    writes = await world.writes()
    report = await sync_once(load_settings(write_config(tmp_path, world, copy, database_url)), dry_run=False)
    assert not report.errors and report.settled and not report.of_kind("create")
    # Not one write call on any system: no second customer, no second invoice.
    assert await world.writes() == writes
    assert await world.zoho.count("contacts") == 3 and await world.zoho.count("invoices") == 1
    assert [(link.id, link.mapping) for link in await world.stores.links.list(limit=None)] == [
        (link.id, "hubspot-zohobooks") for link in links_before
    ]


async def test_a_renamed_mapping_is_refused_until_syncd_mappings_rename_moves_its_links(
    world: World, tmp_path: Path, database_url: str
) -> None:
    await history(world, tmp_path, database_url)
    links_before = await world.stores.links.list(limit=None)
    renamed = copy_of_shipped(tmp_path, "books.toml", name="books-sync")
    config = write_config(tmp_path, world, renamed, database_url)
    writes = await world.writes()

    with pytest.raises(MappingError) as refused:
        await sync_once(load_settings(config), dry_run=False)
    [problem] = refused.value.problems
    assert problem.file == str(renamed) and problem.key_path == "name"
    assert problem.line == renamed.read_text().splitlines().index('name = "books-sync"') + 1
    assert "syncd mappings rename hubspot-zohobooks books-sync" in problem.message
    assert "customer, invoice" in problem.message
    assert await world.writes() == writes  # refused before anything was read or written

    # The CLI says the same, and exits 2 like any other mapping problem.
    code, _, err = await syncd("sync", "--once", "--config", str(config))
    assert code == 2 and "syncd mappings rename hubspot-zohobooks books-sync" in err

    code, out, err = await syncd("mappings", "rename", "hubspot-zohobooks", "books-sync", "--config", str(config))
    assert code == 0, err
    assert f"moved {len(links_before)} links" in out and "cursors" in out
    assert [(link.id, link.mapping) for link in await world.stores.links.list(limit=None)] == [
        (link.id, "books-sync") for link in links_before
    ]

    report = await sync_once(load_settings(config), dry_run=False)
    assert not report.errors and report.settled and not report.of_kind("create")
    assert await world.writes() == writes
    assert await world.zoho.count("contacts") == 3 and await world.zoho.count("invoices") == 1

    # Under its new name the mapping goes on: a new contact is created once, and the old name is free again.
    await world.hubspot.put("contacts", ann(email="dev.patel@example.com", firstname="Dev", lastname="Patel"))
    report = await sync_once(load_settings(config), dry_run=False)
    assert [a.object for a in report.of_kind("create")] == ["customer"]
    assert await world.zoho.count("contacts") == 4
    code, _, err = await syncd("mappings", "rename", "books-sync", "books-sync", "--config", str(config))
    assert code == 1 and "already has that name" in err
