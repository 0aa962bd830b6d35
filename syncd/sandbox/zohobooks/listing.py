"""List endpoints: `page`/`per_page` (≤ 200), sorting and the `page_context` object."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from syncd.sandbox.zohobooks.errors import invalid
from syncd.sandbox.zohobooks.timestamps import parse_timestamp

T = TypeVar("T")
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class ListRequest:
    """Paging and sorting asked for by a list call."""

    page: int
    per_page: int
    sort_column: str
    sort_order: str  # "A" ascending or "D" descending


def list_request(request: web.Request, *, sort_columns: Sequence[str], default_sort: str) -> ListRequest:
    """Read `page`, `per_page`, `sort_column` and `sort_order`; values outside their domain are refused."""
    query = request.query
    try:
        page = int(query.get("page", "1"))
        per_page = int(query.get("per_page", str(MAX_PER_PAGE)))
    except ValueError as exc:
        raise invalid("page") from exc
    if page < 1:
        raise invalid("page")
    if per_page < 1:
        raise invalid("per_page")
    sort_column = query.get("sort_column", default_sort)
    if sort_column not in sort_columns:
        raise invalid("sort_column")
    sort_order = query.get("sort_order", "D" if sort_column in ("created_time", "last_modified_time") else "A")
    if sort_order not in ("A", "D"):
        raise invalid("sort_order")
    # Zoho serves at most 200 rows a page whatever is asked.
    return ListRequest(page, min(per_page, MAX_PER_PAGE), sort_column, sort_order)


def modified_after(request: web.Request) -> float | None:
    """The `last_modified_time` filter (`2013-11-18T02:02:51-0800`): only records modified after it."""
    raw = request.query.get("last_modified_time")
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise invalid("last_modified_time") from exc


def page_of(
    rows: list[T],
    listing: ListRequest,
    *,
    key: Callable[[T], Any],
    render: Callable[[T], dict[str, Any]],
    report_name: str,
    applied_filter: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sort records by `key` (the value of the sort column as the list row shows it), render one page of them
    and describe it as Zoho's `page_context` object; rows off the page are never rendered."""
    # A stable secondary order (creation order, the input order) keeps paging deterministic on ties.
    ordered = sorted(rows, key=key, reverse=listing.sort_order == "D")
    start = (listing.page - 1) * listing.per_page
    chunk = [render(row) for row in ordered[start : start + listing.per_page]]
    context = {
        "page": listing.page,
        "per_page": listing.per_page,
        "has_more_page": start + listing.per_page < len(ordered),
        "report_name": report_name,
        "applied_filter": applied_filter,
        "sort_column": listing.sort_column,
        "sort_order": listing.sort_order,
    }
    return chunk, context
