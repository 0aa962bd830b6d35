"""Secrets stay secret: a real sync with known secret values leaves none of them in the logs or the store file."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from syncd.demo import lift_limits
from syncd.sandbox.command import write_config
from syncd.sandbox.runner import Sandbox
from syncd.store import upgrade


async def test_no_secret_in_debug_logs_or_in_the_sqlite_file(tmp_path: Path) -> None:
    async with Sandbox.running(workdir=tmp_path / "sandbox") as sandbox:
        sandbox.simulators["hubspot"].seed(*_small_world())
        limits = lift_limits(sandbox)  # seconds, not a real limit's 100 calls a minute
        config = tmp_path / "syncd.toml"
        write_config(config, sandbox.descriptor, rate_limits=limits)
        # Debug level and JSON lines: the most a log can say.
        config.write_text(config.read_text() + '\n[logging]\nlevel = "debug"\nformat = "json"\n')
        await upgrade(f"sqlite:///{tmp_path / 'syncd.db'}")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "syncd", "sync", "--once", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ),
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        # Every credential the run knew or was handed: client secrets, refresh tokens, access tokens issued
        # to it, the webhook secret and the key that encrypts the token vault.
        issued = {token for simulator in sandbox.simulators.values() for store in simulator.token_stores
                  for token in store.to_state()["access"]}
        secrets = issued | {value for creds in sandbox.descriptor.values() for key, value in creds.items()
                            if "secret" in key or "token" in key}
        secrets.add((tmp_path / "syncd-token.key").read_text().strip())
    assert issued, "the run should have been issued access tokens"
    logs = out.decode() + err.decode()
    assert "token refreshed" in logs  # the run did log around its tokens
    store_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("syncd.db*"))
    assert store_bytes, "the store file should exist"
    for secret in secrets:
        assert secret not in logs, "a secret reached the log output"
        assert secret.encode() not in store_bytes, "a secret reached the SQLite file in clear"


def _small_world() -> tuple[object, object]:
    from syncd.sandbox.seeding import SeedCounts, SeedWorld

    return SeedWorld.build(3, 5), SeedCounts(contacts=5, companies=1, deals=0, invoices=0, payments=0)
