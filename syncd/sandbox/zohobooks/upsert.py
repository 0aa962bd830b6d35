"""`PUT /<module>` upserts keyed by a unique custom field (`X-Unique-Identifier-Key/-Value`, `X-Upsert`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from syncd.sandbox.zohobooks.customfields import definition
from syncd.sandbox.zohobooks.errors import ZohoError, invalid, not_found


@dataclass(frozen=True)
class UpsertTarget:
    """What an upsert request resolved to: the matching record's ID, or None to create one."""

    key: str
    value: str
    existing_id: str | None


def resolve_upsert(
    request: web.Request, holders: Callable[[str, str], Iterable[tuple[str, dict[str, str]]]], entity: str
) -> UpsertTarget:
    """Match the unique custom field value among the live `(id, custom values)` that `holders(key, value)` gives
    (in creation order; at least every record holding it); no match without X-Upsert: 404."""
    key = request.headers.get("X-Unique-Identifier-Key", "")
    value = request.headers.get("X-Unique-Identifier-Value", "")
    upsert = request.headers.get("X-Upsert", "false").lower()
    field = definition(key)
    if field is None or not field.unique:
        raise ZohoError(400, 4, "Invalid value passed for X-Unique-Identifier-Key")
    if not value:
        raise invalid("X-Unique-Identifier-Value")
    if upsert not in ("true", "false"):
        raise invalid("X-Upsert")
    matches = [record_id for record_id, custom in holders(key, value) if custom.get(key) == value]
    if matches:
        return UpsertTarget(key, value, matches[0])
    if upsert != "true":
        raise not_found(entity)
    return UpsertTarget(key, value, None)
