"""`syncd sync --once` end to end: the CLI in a subprocess against the sandbox with the real connectors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.fernet import Fernet

from syncd.connectors.base import Create
from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR
from syncd.sandbox.runner import Sandbox
from syncd.store.schema import upgrade


async def syncd(*args: str) -> tuple[int, str, str]:
    """Run the `syncd` command in a subprocess without blocking the loop serving the sandbox."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


def json_of(out: str) -> Any:
    """The JSON document that is the whole of stdout (logs go to stderr)."""
    return json.loads(out)


def write_config(tmp_path: Path, sandbox: Sandbox) -> Path:
    """A config naming the sandbox's HubSpot and Zoho Books and the shipped HubSpot mapping."""
    hub, zoho = sandbox.descriptor["hubspot"], sandbox.descriptor["zohobooks"]
    config: dict[str, Any] = {
        "store": {"url": f"sqlite:///{tmp_path / 'syncd.db'}"},
        "security": {"token_key": Fernet.generate_key().decode()},
        "mappings": {"active": [str(SHIPPED_MAPPINGS_DIR / "hubspot-zohobooks.toml")]},
        "connections": {
            "hub": {"system": "hubspot", **{k: hub[k] for k in ("base_url", "client_id", "client_secret",
                                                                "refresh_token", "app_secret")}},
            "books": {"system": "zohobooks", **{k: zoho[k] for k in ("base_url", "accounts_url", "client_id",
                                                                    "client_secret", "refresh_token",
                                                                    "organization_id")}},
        },
    }
    path = tmp_path / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    return path


async def test_sync_once_needs_once(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    code, _, err = await syncd("sync", "--config", str(path))
    assert code == 2 and "--once" in err


async def test_dry_run_then_sync_against_the_sandbox(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path / "sandbox", systems=("hubspot", "zohobooks")) as sandbox:
        config = write_config(tmp_path, sandbox)
        await upgrade(f"sqlite:///{tmp_path / 'syncd.db'}")
        hub = sandbox.descriptor["hubspot"]
        settings = HubSpotConnection.model_validate({"system": "hubspot", **{k: hub[k] for k in (
            "base_url", "client_id", "client_secret", "refresh_token", "app_secret")}})
        connector = HubSpotConnector("seed", settings)
        await connector.start()
        try:
            [made] = await connector.create_many("contacts", [Create("seed-1", {
                "email": "cli@example.com", "firstname": "Cli", "lastname": "User"})])
            assert made.ok, made.error
        finally:
            await connector.close()
        code, out, err = await syncd("sync", "--once", "--dry-run", "--json", "--config", str(config))
        assert code == 0, err
        plan = json_of(out)
        assert plan["dry_run"] and plan["counts"].get("create") == 1
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 0, err + out
        assert "create" in out
        code, out, err = await syncd("sync", "--once", "--json", "--config", str(config))
        assert code == 0, err
        assert json_of(out)["settled"]


async def test_a_refused_write_makes_sync_once_report_an_error_and_exit_1(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path / "sandbox", systems=("hubspot", "zohobooks")) as sandbox:
        config = write_config(tmp_path, sandbox)
        await upgrade(f"sqlite:///{tmp_path / 'syncd.db'}")
        hub = sandbox.descriptor["hubspot"]
        settings = HubSpotConnection.model_validate({"system": "hubspot", **{k: hub[k] for k in (
            "base_url", "client_id", "client_secret", "refresh_token", "app_secret")}})
        connector = HubSpotConnector("seed", settings)
        await connector.start()
        try:
            made = await connector.create_many("contacts", [
                Create("seed-1", {"email": "Ada.Mitchell@example.com", "firstname": "Ada", "lastname": "Mitchell"}),
                # Zoho Books keeps first names to 100 characters; HubSpot does not.
                Create("seed-2", {"email": "max@example.com", "firstname": "Maximiliana" * 10,
                                  "lastname": "Mitchell"}),
            ])
            assert all(m.ok for m in made), made
        finally:
            await connector.close()
        refused = made[1].id
        code, out, err = await syncd("sync", "--once", "--json", "--config", str(config))
        assert code == 1, err
        summary = json_of(out)
        assert summary["counts"] == {"create": 1, "error": 1} and summary["error_count"] == 1
        [error] = summary["errors"]
        assert error.startswith(f"hubspot contacts {refused}: zohobooks refused the create of contacts")
        assert "Invalid value passed for first_name (code 4)" in error
        # The next pass does not try it again: nothing to do, nothing failed.
        code, out, err = await syncd("sync", "--once", "--config", str(config))
        assert code == 0, err + out
        assert "held back" in out and "error" not in out.split("Done:")[1]
        code, out, err = await syncd("deadletters", "list", "--json", "--config", str(config))
        assert code == 0, err
        [letter] = json_of(out)
        assert (letter["record_id"], letter["status"], letter["error_code"]) == (refused, "parked", "4")
        assert letter["error_message"] == "Invalid value passed for first_name"
