"""CRM search: HubSpot's request limits, filter operators, sorts, paging, the 10,000 cap and indexing lag."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from syncd.sandbox.hubspot.catalog import DEFAULT_PROPERTIES, MODIFIED_PROPERTY, QUERY_PROPERTIES, PropertyDef
from syncd.sandbox.hubspot.errors import validation_error
from syncd.sandbox.hubspot.objects import CrmStore, Record
from syncd.sandbox.hubspot.values import InvalidValue, comparable, sort_key, tokens

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS_TOTAL = 25
MAX_LIMIT = 200
RESULT_CAP = 10_000
OPERATORS = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
     "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
)
_KEYS = frozenset({"filterGroups", "sorts", "query", "properties", "limit", "after"})


@dataclass(frozen=True)
class SearchPage:
    """One page of search results: (record id, properties as indexed) pairs, the total and the next offset."""

    hits: list[tuple[int, dict[str, str], float, float]]  # id, properties, createdAt, updatedAt
    total: int
    next_after: int | None
    properties: tuple[str, ...]


def run_search(store: CrmStore, obj: str, body: Any, *, now: float, lag_s: float) -> SearchPage:
    """Evaluate a search body against what the index held `lag_s` seconds ago; 400 for invalid requests."""
    if not isinstance(body, Mapping):
        raise validation_error("Invalid input JSON: the search request must be an object.")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise validation_error(f"Invalid input JSON: unrecognized field(s) {unknown}.")
    limit = _int(body.get("limit", 10), "limit")
    if not 0 < limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}; got {limit}.")
    after = _int(body.get("after", 0) or 0, "after")
    if after < 0:
        raise validation_error("after must not be negative.")
    if after + 1 > RESULT_CAP:
        raise validation_error(
            f"Search results are limited to {RESULT_CAP} per query; after={after} is past that. "
            "Narrow the filters (for example by hs_lastmodifieddate) instead of paging further."
        )
    groups = _groups(store.properties[obj], body.get("filterGroups", []))
    sorts = _sorts(body.get("sorts", []))
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise validation_error("query must be a string.")
    wanted = body.get("properties") or list(DEFAULT_PROPERTIES[obj])
    if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted):
        raise validation_error("properties must be a list of property names.")

    indexed_at = now - lag_s
    matches: list[tuple[int, dict[str, str], float, float]] = []
    for record in _candidates(store, obj, groups):
        seen = record.as_seen_at(indexed_at)
        if seen is None or seen[1]:
            continue  # not indexed yet, or archived in the index
        props = seen[0]
        if groups and not any(all(_matches(f, props) for f in group) for group in groups):
            continue
        if query and not _query_matches(obj, query, props):
            continue
        matches.append((record.id, props, record.created_at, record.updated_at))
    defs = store.properties[obj]
    # Python's sort is stable: apply the sorts from last to first; the base order is by id.
    matches.sort(key=lambda m: m[0])
    for name, descending in reversed(sorts):
        matches.sort(key=_sort_key_for(defs.get(name), name), reverse=descending)
    total = len(matches)
    end = min(after + limit, RESULT_CAP)
    page = matches[after:end]
    next_after = end if end < total else None
    return SearchPage(page, total, next_after, tuple(wanted))


def _candidates(store: CrmStore, obj: str, groups: list[list[_Filter]]) -> Iterable[Record]:
    """The records a search can match: when every filter group bounds the modification time from below (the
    way pollers search), only the records written since the lowest bound, else every record."""
    modified = MODIFIED_PROPERTY[obj]
    bounds: list[int] = []
    for group in groups:
        lower = [
            f.value for f in group
            if f.prop == modified and f.operator in ("EQ", "GT", "GTE", "BETWEEN") and isinstance(f.value, int)
        ]  # fmt: skip
        if not lower:
            return store.records[obj].values()
        bounds.append(max(lower))
    if not bounds:
        return store.records[obj].values()
    # An indexed state's modification time (whole ms) is never after the moment it was given to the index.
    return store.written_since(obj, min(bounds) / 1000 - 0.001)


def _sort_key_for(
    definition: PropertyDef | None, name: str
) -> Callable[[tuple[int, dict[str, str], float, float]], tuple[int, Any]]:
    def key(match: tuple[int, dict[str, str], float, float]) -> tuple[int, Any]:
        return sort_key(definition, match[1].get(name, ""))

    return key


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise validation_error(f"{name} must be an integer.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise validation_error(f"{name} must be an integer; got {value!r}.") from None


@dataclass(frozen=True)
class _Filter:
    prop: str
    definition: PropertyDef | None
    operator: str
    value: Any
    values: tuple[Any, ...]
    high: Any


def _groups(defs: Mapping[str, PropertyDef], raw: Any) -> list[list[_Filter]]:
    if not isinstance(raw, list):
        raise validation_error("filterGroups must be a list.")
    if len(raw) > MAX_GROUPS:
        raise validation_error(f"Too many filter groups: {len(raw)}; the maximum is {MAX_GROUPS}.")
    total = 0
    groups: list[list[_Filter]] = []
    for group in raw:
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, list):
            raise validation_error("Each filter group must be an object with a list of filters.")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group: {len(filters)}; the maximum is {MAX_FILTERS_PER_GROUP}."
            )
        total += len(filters)
        groups.append([_filter(defs, f) for f in filters])
    if total > MAX_FILTERS_TOTAL:
        raise validation_error(f"Too many filters: {total}; the maximum across all groups is {MAX_FILTERS_TOTAL}.")
    return groups


def _filter(defs: Mapping[str, PropertyDef], raw: Any) -> _Filter:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("propertyName"), str):
        raise validation_error("Each filter needs a propertyName and an operator.")
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise validation_error(f"Unknown operator {operator!r}; expected one of {sorted(OPERATORS)}.")
    prop = raw["propertyName"]
    definition = defs.get(prop)
    try:
        if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            return _Filter(prop, definition, operator, None, (), None)
        if operator in ("IN", "NOT_IN"):
            values = raw.get("values")
            if not isinstance(values, list) or not values:
                raise validation_error(f"{operator} needs a non-empty list of values.")
            return _Filter(prop, definition, operator, None, tuple(_operand(definition, v) for v in values), None)
        if "value" not in raw:
            raise validation_error(f"{operator} on {prop} needs a value.")
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            return _Filter(prop, definition, operator, str(raw["value"]).lower(), (), None)
        value = _operand(definition, raw["value"])
        high = None
        if operator == "BETWEEN":
            if "highValue" not in raw:
                raise validation_error(f"BETWEEN on {prop} needs a highValue.")
            high = _operand(definition, raw["highValue"])
        return _Filter(prop, definition, operator, value, (), high)
    except InvalidValue as exc:
        raise validation_error(f"Invalid filter value for {prop}: {exc.message}") from None


def _operand(definition: PropertyDef | None, value: Any) -> Any:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return comparable(definition, str(value))


def _matches(f: _Filter, props: Mapping[str, str]) -> bool:
    raw = props.get(f.prop, "")
    if f.operator == "HAS_PROPERTY":
        return raw != ""
    if f.operator == "NOT_HAS_PROPERTY":
        return raw == ""
    if f.operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        words = tokens(raw) if raw else []
        found = any(fnmatch.fnmatchcase(w, f.value) for w in words)
        return found if f.operator == "CONTAINS_TOKEN" else not found
    if raw == "":
        # A record without the property matches only the negative operators.
        return f.operator in ("NEQ", "NOT_IN")
    try:
        value = comparable(f.definition, raw)
    except InvalidValue:
        return False
    match f.operator:
        case "EQ":
            return bool(value == f.value)
        case "NEQ":
            return bool(value != f.value)
        case "LT":
            return bool(value < f.value)
        case "LTE":
            return bool(value <= f.value)
        case "GT":
            return bool(value > f.value)
        case "GTE":
            return bool(value >= f.value)
        case "BETWEEN":
            return bool(f.value <= value <= f.high)
        case "IN":
            return value in f.values
        case "NOT_IN":
            return value not in f.values
    return False


def _sorts(raw: Any) -> list[tuple[str, bool]]:
    """Sorts as `"-prop"`/`"prop"` strings (the spec) or `{propertyName, direction}` objects (the docs)."""
    if not isinstance(raw, list):
        raise validation_error("sorts must be a list.")
    out: list[tuple[str, bool]] = []
    for item in raw:
        if isinstance(item, str) and item.strip("-"):
            out.append((item.lstrip("-"), item.startswith("-")))
        elif isinstance(item, Mapping) and isinstance(item.get("propertyName"), str):
            direction = item.get("direction", "ASCENDING")
            if direction not in ("ASCENDING", "DESCENDING"):
                raise validation_error(f"Sort direction must be ASCENDING or DESCENDING; got {direction!r}.")
            out.append((item["propertyName"], direction == "DESCENDING"))
        else:
            raise validation_error(f"Invalid sort {item!r}.")
    return out


def _query_matches(obj: str, query: str, props: Mapping[str, str]) -> bool:
    # Free-text query: every word must prefix-match a token of one of the object's searchable properties.
    words = [w for w in query.lower().split() if w]
    haystack = [t for name in QUERY_PROPERTIES[obj] for t in tokens(props.get(name, ""))]
    return all(any(t.startswith(w) for t in haystack) for w in words)
