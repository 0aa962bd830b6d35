"""The daemon's housekeeping and shutdown under trouble: the inbox is pruned, and SIGTERM ends `syncd run` within
its grace period even when the systems do not answer."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
import tomli_w

from syncd.sandbox.runner import Sandbox
from syncd.settings import Settings
from syncd.store import Database, InboxStore
from syncd.store.columns import utcnow
from syncd.store.schema import upgrade
from syncd.store.tables import INBOX
from tests.engine.test_daemon import (  # noqa: F401  (fixtures: clean, http, running, sandbox)
    clean,
    config_dict,
    eventually,
    http,
    running,
    sandbox,
    settings_for,
)


async def test_processed_inbox_events_are_deleted_after_the_kept_days(
    tmp_path: Path, clean: Sandbox, running: Callable[..., Any]  # noqa: F811
) -> None:
    settings: Settings = await settings_for(tmp_path, clean, interval_s=3600, webhooks=False)
    assert settings.webhooks.keep_processed_days == 7
    db = await Database.open(settings.store.url)
    try:
        inbox = InboxStore(db)
        for event_id in ("done-8-days-ago", "done-6-days-ago"):
            await inbox.put("hub", event_id, {})
        await inbox.mark_processed([e.id for e in await inbox.pending()])
        async with db.transaction() as session:
            for event_id, days in (("done-8-days-ago", 8), ("done-6-days-ago", 6)):
                await session.execute(sa.update(INBOX).where(INBOX.c.event_id == event_id)
                                      .values(processed_at=utcnow() - timedelta(days=days)))
    finally:
        await db.close()
    await running(settings)  # prunes at start, then hourly
    db = await Database.open(settings.store.url)
    try:
        async with db.engine.connect() as conn:
            left = sorted((await conn.execute(sa.select(INBOX.c.event_id))).scalars())
    finally:
        await db.close()
    assert left == ["done-6-days-ago"]


GRACE_S = 2.0
# Start-up of the interpreter aside, stopping takes the grace period and closing what is left: far less than
# the calls' own 30 s timeouts that it used to wait out (twice, with a retry).
EXIT_BOUND_S = GRACE_S + 12.0


async def test_sigterm_with_the_systems_hanging_exits_within_the_grace_period(
    tmp_path: Path, clean: Sandbox, http: aiohttp.ClientSession  # noqa: F811
) -> None:
    config = config_dict(tmp_path, clean, interval_s=3600, webhooks=False)
    config["daemon"] = {"stop_grace_s": GRACE_S}
    path = tmp_path / "syncd.toml"
    path.write_bytes(tomli_w.dumps(config).encode())
    await upgrade(f"sqlite:///{tmp_path / 'syncd.db'}")
    for system in ("hubspot", "zohobooks"):
        # Every API call (not the token endpoint) now takes a minute to answer.
        async with http.post(f"{clean.control_url(system)}/_sandbox/faults",
                             json={"latency_ms": [60_000, 60_000]}) as response:
            assert response.status == 200, await response.text()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "run", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )
    try:
        async def calls_in_flight() -> bool:
            # Counted on arrival; each of them is then held for a minute by the latency fault.
            for system in ("hubspot", "zohobooks"):
                async with http.get(f"{clean.control_url(system)}/_sandbox/stats") as response:
                    requests: dict[str, int] = (await response.json())["requests"]
                if any("/_sandbox/" not in route and "/oauth/" not in route for route in requests):
                    return True
            return False

        # The start-up polls are waiting on a system: the situation of an operator stopping a stuck daemon.
        await eventually(calls_in_flight, "an API call in flight")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=EXIT_BOUND_S)
        assert proc.returncode == 0, err.decode()
        assert b"daemon stopped" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
