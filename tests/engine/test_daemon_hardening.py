"""The daemon's housekeeping and shutdown under trouble: the inbox is pruned, and SIGTERM ends `syncd run` within
its grace period even when the systems do not answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from syncd.sandbox.runner import Sandbox
from syncd.settings import Settings
from syncd.store import Database, InboxStore
from syncd.store.columns import utcnow
from syncd.store.tables import INBOX
from tests.engine.test_daemon import clean, http, running, sandbox, settings_for  # noqa: F401  (fixtures)


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
