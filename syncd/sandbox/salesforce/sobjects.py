"""The sObject resources: describe, get, create, update, delete, upsert by external id, updated/ and deleted/."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from syncd.sandbox.salesforce.ids import normalize_id
from syncd.sandbox.salesforce.records import RecordError, RecordStore, SfError, format_timestamp, not_found
from syncd.sandbox.salesforce.responses import (
    read_object,
    record_url,
    sf_json,
    spec_from_path,
    version_number,
    version_of,
    with_attributes,
)
from syncd.sandbox.salesforce.schema import OBJECTS, FieldSpec, ObjectSpec
from syncd.sandbox.salesforce.soql import parse_stored_datetime

UPDATED_WINDOW = dt.timedelta(days=30)
DELETED_WINDOW = dt.timedelta(days=15)
_REPLICATION_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+\- ]\d{2}:?\d{2})?")


ORIGIN_KEY = web.RequestKey("sf_change_origin", str)


def origin_of(request: web.Request) -> str:
    """The CDC changeOrigin of a write made by this request (set by the API middleware)."""
    return str(request.get(ORIGIN_KEY, ""))


def select_fields(spec: ObjectSpec, request: web.Request) -> list[FieldSpec]:
    """The fields named by ?fields= (all when absent); 400 INVALID_FIELD for an unknown one."""
    raw = request.query.get("fields")
    if raw is None:
        return list(spec.fields)
    chosen: list[FieldSpec] = []
    for name in (n.strip() for n in raw.split(",") if n.strip()):
        found = spec.field(name)
        if found is None:
            raise RecordError(
                400, [SfError("INVALID_FIELD", f"No such column '{name}' on entity '{spec.name}'.", (name,))]
            )
        if found not in chosen:
            chosen.append(found)
    return chosen


def render(request: web.Request, spec: ObjectSpec, record: dict[str, Any], fields: list[FieldSpec]) -> dict[str, Any]:
    """A record as GET returns it."""
    return with_attributes(version_of(request), spec, record["Id"], {f.name: record.get(f.name) for f in fields})


class SObjectEndpoints:
    """Single-record resources under /services/data/vNN.N/sobjects."""

    def __init__(self, store: RecordStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    async def list_objects(self, request: web.Request) -> web.Response:
        """GET sobjects/: every type of the org."""
        version = version_of(request)
        return sf_json({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [s.basic_info(version) for s in OBJECTS]})

    async def basic_info(self, request: web.Request) -> web.Response:
        """GET sobjects/{Obj}/: the type's summary."""
        spec = spec_from_path(request)
        return sf_json({"objectDescribe": spec.basic_info(version_of(request)), "recentItems": []})

    async def describe(self, request: web.Request) -> web.Response:
        """GET sobjects/{Obj}/describe/."""
        return sf_json(spec_from_path(request).describe(version_of(request)))

    async def create(self, request: web.Request) -> web.Response:
        """POST sobjects/{Obj}/ → 201 {id, success, errors}."""
        spec = spec_from_path(request)
        body = await read_object(request)
        if any(k.lower() == "id" for k in body):
            raise RecordError(400, [SfError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",))])
        with self.store.transaction(origin_of(request)):
            record = self.store.create(spec, body)
        return sf_json({"id": record["Id"], "success": True, "errors": []}, 201)

    async def get(self, request: web.Request) -> web.Response:
        """GET sobjects/{Obj}/{id}?fields=."""
        spec = spec_from_path(request)
        fields = select_fields(spec, request)
        record = self.store.get(spec, request.match_info["record_id"])
        return sf_json(render(request, spec, record, fields))

    async def update(self, request: web.Request) -> web.Response:
        """PATCH sobjects/{Obj}/{id} → 204."""
        spec = spec_from_path(request)
        body = await read_object(request)
        with self.store.transaction(origin_of(request)):
            self.store.update(spec, request.match_info["record_id"], body)
        return web.Response(status=204)

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE sobjects/{Obj}/{id} → 204; the record goes to the recycle bin."""
        spec = spec_from_path(request)
        with self.store.transaction(origin_of(request)):
            self.store.delete(spec, request.match_info["record_id"])
        return web.Response(status=204)

    async def get_by_external_id(self, request: web.Request) -> web.Response:
        """GET sobjects/{Obj}/{ExtField}/{value}."""
        spec = spec_from_path(request)
        matches = self._matches(request, spec)
        if not matches:
            raise not_found()
        if len(matches) > 1:
            return self._multiple(request, spec, matches)
        return sf_json(render(request, spec, matches[0], select_fields(spec, request)))

    async def upsert(self, request: web.Request) -> web.Response:
        """PATCH sobjects/{Obj}/{ExtField}/{value}: 201 created, 200 (v46+) or 204 updated, 300 ambiguous."""
        spec = spec_from_path(request)
        key = self._key_field(request, spec)
        value = request.match_info["value"]
        body = await read_object(request)
        matches = self._matches(request, spec)
        if len(matches) > 1:
            return self._multiple(request, spec, matches)
        for name, given in body.items():
            same = isinstance(given, str) and given.casefold() == value.casefold()
            if name.lower() == key.name.lower() and not same:
                raise RecordError(
                    400,
                    [
                        SfError(
                            "INVALID_FIELD", f"The value of {key.name} in the body does not match the URL", (key.name,)
                        )
                    ],
                )
        with self.store.transaction(origin_of(request)):
            if matches:
                record = self.store.update(spec, matches[0]["Id"], body)
                created = False
            elif key.name == "Id":
                raise not_found()
            else:
                record = self.store.create(spec, {**body, key.name: value})
                created = True
        result = {"id": record["Id"], "success": True, "errors": [], "created": created}
        if created:
            return sf_json(result, 201)
        if version_number(request) >= 46.0:
            return sf_json(result, 200)
        return web.Response(status=204)

    async def updated(self, request: web.Request) -> web.Response:
        """GET sobjects/{Obj}/updated/?start=&end= → {ids, latestDateCovered}."""
        spec = spec_from_path(request)
        start, covered = self._window(request, UPDATED_WINDOW)
        ids = [
            r["Id"]
            for r in self.store.rows(spec, include_deleted=False)
            if start <= parse_stored_datetime(r["SystemModstamp"]) < covered
        ]
        return sf_json({"ids": ids, "latestDateCovered": format_timestamp(covered.timestamp())})

    async def deleted(self, request: web.Request) -> web.Response:
        """GET sobjects/{Obj}/deleted/?start=&end= → {deletedRecords, earliestDateAvailable, latestDateCovered}."""
        spec = spec_from_path(request)
        start, covered = self._window(request, DELETED_WINDOW)
        found = []
        for record in self.store.rows(spec, include_deleted=True):
            deleted_at = self.store.deleted_at(record)
            if deleted_at is None:
                continue
            moment = dt.datetime.fromtimestamp(deleted_at, dt.UTC)
            if start <= moment < covered:
                found.append({"id": record["Id"], "deletedDate": format_timestamp(deleted_at)})
        earliest = _floor_minute(dt.datetime.fromtimestamp(self.clock(), dt.UTC) - DELETED_WINDOW)
        return sf_json(
            {
                "deletedRecords": found,
                "earliestDateAvailable": format_timestamp(earliest.timestamp()),
                "latestDateCovered": format_timestamp(covered.timestamp()),
            }
        )

    # --- helpers ---

    def _key_field(self, request: web.Request, spec: ObjectSpec) -> FieldSpec:
        name = request.match_info["field"]
        key = spec.field(name)
        if key is None:
            raise RecordError(
                404, [SfError("NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")]
            )
        if key.name != "Id" and not key.external_id:
            raise RecordError(
                400,
                [
                    SfError(
                        "INVALID_FIELD",
                        f"Field {key.name} is not an External ID or indexed field for {spec.name}",
                        (key.name,),
                    )
                ],
            )
        return key

    def _matches(self, request: web.Request, spec: ObjectSpec) -> list[dict[str, Any]]:
        key = self._key_field(request, spec)
        value = request.match_info["value"]
        if key.name == "Id" and normalize_id(value) is None:
            raise RecordError(400, [SfError("MALFORMED_ID", f"Id: invalid id: {value}", ("Id",))])
        return self.store.find_by(spec, key, value)

    def _multiple(self, request: web.Request, spec: ObjectSpec, matches: list[dict[str, Any]]) -> web.Response:
        version = version_of(request)
        return sf_json([record_url(version, spec.name, r["Id"]) for r in matches], 300)

    def _window(self, request: web.Request, limit: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
        start = _replication_date(request, "start")
        end = _replication_date(request, "end")
        if end < start:
            raise RecordError(400, [SfError("INVALID_REPLICATION_DATE", "EndDate can not be before StartDate")])
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        if start < _floor_minute(now - limit):
            days = limit.days
            raise RecordError(
                400, [SfError("INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago")]
            )
        return start, min(end, _floor_minute(now))


def _floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _replication_date(request: web.Request, name: str) -> dt.datetime:
    """A start/end parameter with its seconds dropped, as Salesforce does."""
    raw = request.query.get(name)
    if raw is None:
        raise RecordError(400, [SfError("MISSING_ARGUMENT", f"Missing required parameter: {name}")])
    match = _REPLICATION_DATE.fullmatch(raw)
    if match is None:
        raise RecordError(400, [SfError("INVALID_REPLICATION_DATE", f"Invalid {name} date: {raw}")])
    day, hour, minute, _, zone = match.groups()
    try:
        moment = dt.datetime.fromisoformat(f"{day}T{hour}:{minute}:00")
    except ValueError:
        raise RecordError(400, [SfError("INVALID_REPLICATION_DATE", f"Invalid {name} date: {raw}")]) from None
    offset = dt.timedelta(0)
    if zone and zone != "Z":
        # An unencoded '+' in a query string arrives as a space.
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment.replace(tzinfo=dt.timezone(offset)).astimezone(dt.UTC)
