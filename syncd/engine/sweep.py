"""Deletion sweeps: listing a system's deletions (a CRM's archived list or its deleted-records call) costs calls
that do not shrink when nothing changed, so it runs once per interval; each sweep lists from where the last one
began, so a deletion is late at most by the interval (webhooks bring it sooner), never lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from syncd.store import CursorStore


def sweep_key(cursor_key: str) -> str:
    """Where the last sweep of an object × side is kept: beside its change cursor (same mapping prefix)."""
    return f"{cursor_key}:swept"


@dataclass(frozen=True)
class Sweep:
    """One deletion sweep: when it ran (our clock, for the interval) and the change cursor it listed from
    (the system's clock, which the deletions' stamps are compared with)."""

    at: datetime
    since: datetime

    def encode(self) -> str:
        """The stored text: both moments in ISO form."""
        return f"{self.at.isoformat()} {self.since.isoformat()}"

    @classmethod
    def decode(cls, text: str) -> Sweep | None:
        """The stored sweep, or None for text this version does not read (the next pass sweeps again)."""
        at, _, since = text.partition(" ")
        try:
            return cls(datetime.fromisoformat(at), datetime.fromisoformat(since))
        except ValueError:
            return None


async def sweep_from(cursors: CursorStore, connection: str, cursor_key: str, since: datetime,
                     interval: timedelta, now: datetime) -> datetime | None:
    """The moment a sweep due now lists deletions from (the last sweep's cursor, else `since`), or None when
    the last sweep is less than `interval` old."""
    stored = await cursors.get(connection, sweep_key(cursor_key))
    last = Sweep.decode(stored) if stored else None
    if last is None:
        return since
    if now - last.at < interval:
        return None
    return min(last.since, since)


async def record_sweep(cursors: CursorStore, connection: str, cursor_key: str, sweep: Sweep) -> None:
    """Keep the sweep just applied, so the next one waits out the interval and lists from its cursor."""
    await cursors.set(connection, sweep_key(cursor_key), sweep.encode())
