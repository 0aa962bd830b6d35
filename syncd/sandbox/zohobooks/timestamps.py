"""Zoho Books date and time formats: `2013-11-18` dates and `2013-11-18T02:02:51-0800` timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# The simulated organisation keeps its books in UTC; real ones use their own zone, which the format carries.
ORG_TIMEZONE = UTC


@lru_cache(maxsize=65536)  # list pages sort on it; records written in one burst share few distinct times
def format_timestamp(epoch: float) -> str:
    """An epoch as Zoho writes `created_time`/`last_modified_time` (offset without a colon)."""
    return datetime.fromtimestamp(epoch, ORG_TIMEZONE).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> float:
    """Epoch seconds of a Zoho timestamp (`2013-11-18T02:02:51-0800`; `+05:30` is accepted too)."""
    parsed = datetime.strptime(text.strip(), TIMESTAMP_FORMAT)
    return parsed.timestamp()


def today(epoch: float) -> date:
    """The organisation's calendar date at `epoch`."""
    return datetime.fromtimestamp(epoch, ORG_TIMEZONE).date()


def parse_date(text: str) -> date:
    """A `yyyy-mm-dd` date; ValueError otherwise."""
    if len(text) != 10:
        raise ValueError(f"not a yyyy-mm-dd date: {text!r}")
    return date.fromisoformat(text)


def add_days(day: date, days: int) -> date:
    """`day` plus a number of days (payment terms)."""
    return day + timedelta(days=days)
