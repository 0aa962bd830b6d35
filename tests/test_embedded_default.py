"""The embedded default, as the README tells a newcomer to try it: `syncd sandbox --write-config F` in one
terminal, `syncd sync --once --config F` in another, and nothing else: no `db upgrade`, no variables to export."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

DEADLINE_S = 60.0


async def syncd(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run `syncd ARGS` as a separate process (off a terminal); exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", *args, cwd=cwd, env={**os.environ, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def sandbox_with_config(tmp_path: Path) -> AsyncIterator[tuple[Path, dict[str, Any]]]:
    """`syncd sandbox --write-config F` running in the background: F and the sandbox's JSON line."""
    config = tmp_path / "trial" / "syncd.toml"
    proc = await asyncio.create_subprocess_exec(
        # The two CRMs and Zoho Books (the story below); the other accounting systems have their own tests.
        sys.executable, "-m", "syncd", "sandbox", "--systems", "hubspot,salesforce,zohobooks", "--hubspot-port", "0",
        "--salesforce-port", "0", "--zoho-port", "0", "--write-config", str(config), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE_S)
        assert line, "the sandbox exited before it was ready"
        yield config, json.loads(line)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), DEADLINE_S)


async def test_sandbox_config_then_sync_once_works_as_it_is(
    sandbox_with_config: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    config, described = sandbox_with_config
    store = config.parent / "syncd.db"
    assert config.is_file() and not store.exists()
    # Someone already works in HubSpot: a few contacts to bring over.
    async with aiohttp.ClientSession() as http:
        seed = {"contacts": 3, "companies": 0, "deals": 0, "invoices": 0, "payments": 0, "seed": 11}
        async with http.post(f"{described['hubspot']['base_url']}/_sandbox/seed", json=seed) as response:
            response.raise_for_status()

        code, out, err = await syncd("sync", "--once", "--config", str(config), cwd=tmp_path)
        assert code == 0, err
        assert store.is_file()  # made and migrated on first use
        logged = [json.loads(line) for line in err.splitlines()]
        assert any(line["event"] == "store created" for line in logged)
        # Off a terminal, progress is one line per object that had records (JSON, like the rest of the log).
        # Off a terminal, progress is one line per object that had records (JSON, like the rest of the log): the
        # people come to Zoho Books from HubSpot, and go on from there to Salesforce (both mappings are active).
        synced = {(line["mapping"], line["object"]): (line["records"], line["counts"])
                  for line in logged if line["event"] == "object synced"}
        assert synced == {("hubspot-zohobooks", "customer"): (3, {"create": 3}),
                          ("salesforce-zohobooks", "customer"): (3, {"create": 3})}
        assert "Done: 6 create" in out

        zoho_root = described["zohobooks"]["accounts_url"]
        async with http.get(f"{zoho_root}/_sandbox/stats") as response:
            requests = (await response.json())["requests"]
        assert requests.get("PUT /books/v3/contacts") == 3  # one create each, nothing sent twice

    # The next run finds the store as it left it: nothing made again, nothing left to do.
    code, out, err = await syncd("sync", "--once", "--config", str(config), cwd=tmp_path)
    assert code == 0, err
    assert "store created" not in err and "Done: nothing to do" in out
