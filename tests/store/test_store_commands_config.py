"""Commands on the store alone (`links`, `conflicts`, `inbox`, `deadletters`, `audit`) as an operator first meets
them: a new SQLite store made on first use, connection secrets not demanded, an unknown object named as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.store import Database, LinkStore
from syncd.store.schema import schema_state
from tests.store.test_reports import Syncd

# A config for real accounts, every secret from the environment; the store beside it.
REAL_ACCOUNTS = f"""
[store]
url = "sqlite:///state/syncd.db"

[security]
token_key = "${{SYNCD_TEST_TOKEN_KEY}}"

[admin]
token = "${{SYNCD_TEST_ADMIN_TOKEN}}"

[mappings]
active = ["{SHIPPED_MAPPINGS_DIR / 'hubspot-zohobooks.toml'}"]

[connections.hubspot]
system = "hubspot"
client_id = "app-123"
client_secret = "${{SYNCD_TEST_HUBSPOT_SECRET}}"
refresh_token = "${{SYNCD_TEST_HUBSPOT_REFRESH}}"
app_id = 54321
developer_api_key = "${{SYNCD_TEST_HUBSPOT_DEV_KEY}}"

[connections.books]
system = "zohobooks"
client_id = "1000.ABC"
client_secret = "${{SYNCD_TEST_ZOHO_SECRET}}"
organization_id = "60012345"
"""
SECRET_VARIABLES = (
    "SYNCD_TEST_TOKEN_KEY", "SYNCD_TEST_ADMIN_TOKEN", "SYNCD_TEST_HUBSPOT_SECRET", "SYNCD_TEST_HUBSPOT_REFRESH",
    "SYNCD_TEST_HUBSPOT_DEV_KEY", "SYNCD_TEST_ZOHO_SECRET",
)
STORE_COMMANDS = (
    ("links",),
    ("conflicts", "list"),
    ("conflicts", "export", "--format", "json"),
    ("inbox", "list"),
    ("deadletters", "list"),
    ("audit",),
)


@pytest.fixture
def real_accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Syncd:
    """`syncd` on a config for real accounts whose secrets are not in this shell's environment."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "state").mkdir()
    config = tmp_path / "syncd.toml"
    config.write_text(REAL_ACCOUNTS)
    return Syncd(config, capsys)


async def test_the_first_command_creates_a_new_sqlite_store(real_accounts: Syncd, tmp_path: Path) -> None:
    store = tmp_path / "state" / "syncd.db"
    assert not store.exists()
    code, out, err = await real_accounts("conflicts", "list")
    assert (code, out.strip()) == (0, "no open conflicts"), err
    assert "store created" in err
    db = await Database.open(f"sqlite:///{store}")
    try:
        assert (await schema_state(db)).up_to_date
    finally:
        await db.close()
    # Once: the next command finds it made.
    code, out, err = await real_accounts("links")
    assert (code, out.strip()) == (0, "no links match") and "store created" not in err


async def test_commands_on_the_store_do_not_demand_connection_secrets(real_accounts: Syncd) -> None:
    for args in STORE_COMMANDS:
        code, _, err = await real_accounts(*args)
        assert code == 0, f"syncd {' '.join(args)}: {err}"
        assert "SYNCD_TEST_" not in err


async def test_commands_that_use_the_secrets_still_report_every_one_missing(real_accounts: Syncd) -> None:
    for args in (("sync", "--once"), ("check-config",)):
        code, out, err = await real_accounts(*args)
        assert code == 2 and out == ""
        # Every problem at once, each with its key.
        assert f"error: {len(SECRET_VARIABLES)} configuration problems" in err, err
        for name in SECRET_VARIABLES:
            assert f"environment variable {name} is not set" in err
        assert "connections.hubspot.client_secret" in err and "security.token_key" in err


async def test_a_secret_the_store_itself_needs_is_still_demanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SYNCD_TEST_PG_PASSWORD", raising=False)
    config = tmp_path / "syncd.toml"
    config.write_text('[store]\nurl = "postgresql://syncd:${SYNCD_TEST_PG_PASSWORD}@db.internal/syncd"\n')
    code, _, err = await Syncd(config, capsys)("links")
    assert code == 2
    assert "store.url: environment variable SYNCD_TEST_PG_PASSWORD is not set" in err


async def test_links_of_an_unknown_object_name_the_known_ones(real_accounts: Syncd, tmp_path: Path) -> None:
    code, _, _ = await real_accounts("links")  # the store is made
    db = await Database.open(f"sqlite:///{tmp_path / 'state' / 'syncd.db'}")
    try:
        # Links of a mapping no longer active are known too: they are still in the store.
        links = LinkStore(db)
        pending = await links.intend("legacy-crm", "vendor", "hubspot", "V-1", "zohobooks", None, "V-1")
        await links.bind(pending.id, acc_id="Z-9", base={})
    finally:
        await db.close()

    code, out, err = await real_accounts("links", "--object", "contact")
    assert code == 2 and out == ""
    assert "unknown object 'contact'; known objects: customer, invoice, payment, vendor" in err
    code, _, err = await real_accounts("links", "--mapping", "hubspot-zohobooks", "--object", "vendor")
    assert code == 2
    assert "known objects of mapping hubspot-zohobooks: customer, invoice, payment" in err

    code, out, err = await real_accounts("links", "--object", "vendor", "--json")
    assert code == 0, err
    assert [(link["mapping"], link["acc_id"]) for link in json.loads(out)] == [("legacy-crm", "Z-9")]
    code, out, _ = await real_accounts("links", "--object", "customer")
    assert (code, out.strip()) == (0, "no links match")
