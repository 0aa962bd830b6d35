"""Incremental reads through CRM search: windows on the modified date, restarted from the last timestamp
seen so that the 10,000-results cap and records modified while paging never cause a skip."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncd.connectors.hubspot.values import epoch_ms, parse_timestamp

SEARCH_PAGE = 200  # HubSpot's maximum search `limit`
RESULT_CAP = 10_000  # HubSpot refuses `after` past this

SearchCall = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class SearchWindowPage:
    """Raw search results not returned before in this read, and the cursor they allow (as epoch ms)."""

    results: Sequence[Mapping[str, Any]]
    cursor_ms: int


def modified_ms(result: Mapping[str, Any], modified_property: str) -> int:
    """A search result's last-modified time in epoch ms (its property, else `updatedAt`)."""
    props = result.get("properties") or {}
    for raw in (props.get(modified_property), result.get("updatedAt")):
        if isinstance(raw, str):
            moment = parse_timestamp(raw)
            if moment is not None:
                return epoch_ms(moment)
    return 0


def _body(modified_property: str, properties: Sequence[str], low: int, after: int, limit: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [
            {"propertyName": modified_property, "operator": "GTE", "value": str(low)},
        ]}],
        "sorts": [{"propertyName": modified_property, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": limit,
    }
    if after:
        body["after"] = str(after)
    return body


async def search_changes(
    search: SearchCall,
    *,
    modified_property: str,
    properties: Sequence[str],
    start: datetime,
    until: datetime,
    page_size: int = SEARCH_PAGE,
) -> AsyncIterator[SearchWindowPage]:
    """Every record modified since `start`, oldest first, each at least once.

    Each request is a new search from the last timestamp seen (offset 0), so paging never shifts when a
    record we already passed is modified, and no window reaches the 10,000 cap. Records sharing that
    timestamp and already returned are dropped. Only when more than a page share one timestamp does it page
    inside that group, with half a page of overlap so that a few records leaving the group skip nothing.
    A record modified while we read moves to a later timestamp and is returned again when we get there; the
    read ends when it catches up. `until` (the read's start) caps the cursors: later changes may still be
    landing in the index.
    """
    low = epoch_ms(start.astimezone(UTC))
    high = epoch_ms(until.astimezone(UTC))
    seen_at_low: set[str] = set()
    returned: dict[str, int] = {}  # id -> modified ms already handed out in this read
    offset = 0
    while True:
        answer = await search(_body(modified_property, properties, low, offset, page_size))
        results = [r for r in answer.get("results") or [] if isinstance(r, Mapping)]
        if not results:
            return
        fresh: list[Mapping[str, Any]] = []
        for result in results:
            ident = str(result.get("id"))
            stamp = modified_ms(result, modified_property)
            if returned.get(ident, -1) >= stamp:
                continue
            returned[ident] = stamp
            fresh.append(result)
        last = modified_ms(results[-1], modified_property)
        if fresh:
            yield SearchWindowPage(fresh, min(last, high))
        if len(results) < page_size and not (answer.get("paging") or {}).get("next"):
            return
        if last > low:
            low = last
            seen_at_low = {str(r.get("id")) for r in results if modified_ms(r, modified_property) == last}
            offset = 0
        else:
            # The whole page shares one timestamp: step through that group by offset.
            seen_at_low |= {str(r.get("id")) for r in results}
            offset = min(max(offset + len(results) // 2, len(seen_at_low) - page_size // 2),
                         RESULT_CAP - page_size)
            if offset + page_size >= RESULT_CAP and not fresh:
                return
