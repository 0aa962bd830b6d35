"""Incremental reads through CRM search: pages on the modified date, each overlapping the one before by an
anchor row, and a new search from the last timestamp seen at the 10,000-results cap or when records modified
while paging pulled a page past its overlap; nothing is skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncd.connectors.hubspot.values import epoch_ms, parse_timestamp

SEARCH_PAGE = 200  # HubSpot's maximum search `limit`
RESULT_CAP = 10_000  # HubSpot refuses `after` past this
# Rows each page repeats of the one before: records leaving behind the read pull the rest back by one place
# each, and up to this many such moves cost nothing (more cost one search restarted by timestamp).
OVERLAP_ROWS = 2

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
    expected: int = 0,
    held: datetime | None = None,
) -> AsyncIterator[SearchWindowPage]:
    """Every record modified since `start`, oldest first, each at least once.

    One search pages by offset (`after`) up to the 10,000 cap, then a new search starts from the last
    timestamp seen. Each page after the first starts a few rows before the end of the one before and is kept
    only if it holds a row already returned at the same timestamp (its anchor). Why nothing is skipped: a page
    is one contiguous run of the current order (modified date, then id); a record modified or archived while we
    read leaves its place and pulls the rest back by one, which the overlap absorbs; a page pulled back past
    its overlap holds no anchor, is dropped, and the read restarts by value from the last timestamp returned
    (a search placed by its filter, not by offset, cannot be shifted). A record modified while we read moves to
    a later timestamp and is returned again when we get there; the read ends when it catches up. `until` (the
    read's start) caps the cursors: later changes may still be landing in the index.

    Read downward. When about `expected` records are known to be in the window, the first page read is the one
    that should end with the last of them, then each page below it down to offset 0, with no overlap: a record
    only leaves the order or joins it at its end (a change stamps it now), so it can only move down towards
    the pages not read yet. Cursors hold at `held` until offset 0 is read; if more follow the top page, the
    read then goes on upwards from it as above. (A record indexed late, with a stamp within the index's lag,
    can push another up past a page already read; both are newer than the read's start less the lag, which
    the overlap window of the next read covers.) A top page found empty costs that call; the read then starts
    from offset 0.
    """
    low = epoch_ms(start.astimezone(UTC))
    high = epoch_ms(until.astimezone(UTC))
    returned: dict[str, int] = {}  # id -> modified ms already handed out in this read
    newest = low  # the latest timestamp returned: where a refused page restarts from
    offset = 0
    refused = 0  # pages dropped in a row: each widens the overlap of the next (up to half a page)
    known = min(expected, RESULT_CAP)
    if known > page_size:
        hold = low if held is None else max(low, epoch_ms(held.astimezone(UTC)))
        top: list[tuple[str, int, Mapping[str, Any]]] = []
        more_above = False
        for place in _downward(known, page_size):
            answer = await search(_body(modified_property, properties, low, place.offset, place.limit))
            stamped = _stamped(answer, modified_property)
            if not top:
                if not stamped:
                    break  # the estimate was high: read upwards from offset 0 instead
                top = stamped
                more_above = bool((answer.get("paging") or {}).get("next"))
            fresh = _fresh(stamped, returned)
            if fresh:
                yield SearchWindowPage(fresh, hold)
        if top:
            newest = max(newest, top[-1][1])
            yield SearchWindowPage([], min(top[-1][1], high))
            if not more_above:
                return
            offset = known - page_size + len(top) - OVERLAP_ROWS
    while True:
        answer = await search(_body(modified_property, properties, low, offset, page_size))
        stamped = _stamped(answer, modified_property)
        results = [r for _, _, r in stamped]
        if offset > 0 and not any(returned.get(ident) == stamp for ident, stamp, _ in stamped):
            refused += 1
            low, offset = max(low, newest), 0
            continue
        if offset > 0:
            refused = 0
        if not results:
            return
        fresh = _fresh(stamped, returned)
        last = stamped[-1][1]
        newest = max(newest, last)
        if fresh:
            yield SearchWindowPage(fresh, min(last, high))
        if len(results) < page_size and not (answer.get("paging") or {}).get("next"):
            return
        overlap = min(OVERLAP_ROWS * 4**refused, page_size // 2)
        offset += len(results) - overlap
        if offset + page_size > RESULT_CAP:
            if last <= low:
                return  # more than the cap share one millisecond: search cannot list past it
            # The cap: a new search from the last timestamp seen (the few records sharing it come again).
            low, offset = last, 0


@dataclass(frozen=True)
class _Place:
    """One search page by offset and size."""

    offset: int
    limit: int


def _downward(known: int, page_size: int) -> list[_Place]:
    """The pages of the first `known` results, the last first, down to offset 0 (the lowest one short)."""
    places = [_Place(top, page_size) for top in range(known - page_size, 0, -page_size)]
    covered = places[-1].offset if places else known
    return [*places, _Place(0, covered)] if covered else places


def _stamped(answer: Mapping[str, Any], modified_property: str) -> list[tuple[str, int, Mapping[str, Any]]]:
    """A search answer's results with their ids and modification times (epoch ms)."""
    results = [r for r in answer.get("results") or [] if isinstance(r, Mapping)]
    return [(str(r.get("id")), modified_ms(r, modified_property), r) for r in results]


def _fresh(stamped: Sequence[tuple[str, int, Mapping[str, Any]]], returned: dict[str, int]) -> list[Mapping[str, Any]]:
    """The results not returned before at their timestamp (each remembered in `returned`)."""
    fresh: list[Mapping[str, Any]] = []
    for ident, stamp, result in stamped:
        if returned.get(ident, -1) >= stamp:
            continue
        returned[ident] = stamp
        fresh.append(result)
    return fresh
