"""How old (or how far ahead) a signed webhook event may be: one check every connector's receiver path uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.connectors.base import WebhookRejected

# Clocks drift a little; an event from further ahead than this was not sent by the system now.
FUTURE_SKEW = timedelta(minutes=5)


def check_fresh(occurred: datetime, max_age: timedelta, *, what: str, now: datetime | None = None) -> None:
    """Refuse (401) an event older than `max_age` or dated ahead of now: a replay, never new work."""
    current = now or datetime.now(UTC)
    if occurred < current - max_age:
        raise WebhookRejected(401, f"stale webhook: {what} {occurred.isoformat()} is older than {max_age}")
    if occurred > current + FUTURE_SKEW:
        raise WebhookRejected(401, f"webhook from the future: {what} {occurred.isoformat()} is ahead of now")
