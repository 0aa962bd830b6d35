"""A system's own clock, as its answers' `Date` headers tell it: stamps are compared with the system's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache


@lru_cache(maxsize=8)  # every answer of the same second carries the same header: parse it once
def server_time(date_header: str | None) -> datetime | None:
    """The moment an HTTP `Date` header names (whole seconds), or None if absent or unreadable."""
    if not date_header:
        return None
    try:
        moment = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


class ServerClock:
    """How far a system's clock runs from ours (positive: ahead), from the last answer that said."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.observed = False  # whether any answer said yet (before that, `offset` is only a default)

    def observe(self, date_header: str | None) -> datetime | None:
        """Note the server's time from an answer's `Date` header; returns that time (None if not given)."""
        moment = server_time(date_header)
        if moment is not None:
            self.offset = moment - datetime.now(UTC)
            self.observed = True
        return moment
