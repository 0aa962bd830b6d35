"""sObject Collections (`/composite/sobjects`): create, update, upsert, delete and retrieve up to 200 records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from syncd.sandbox.salesforce.ids import normalize_id
from syncd.sandbox.salesforce.records import RecordError, RecordStore, SfError
from syncd.sandbox.salesforce.responses import read_json, read_object, sf_json, spec_from_path
from syncd.sandbox.salesforce.schema import OBJECTS_BY_PREFIX, ObjectSpec, object_spec
from syncd.sandbox.salesforce.sobjects import origin_of, render, select_fields

MAX_RECORDS = 200
MAX_RETRIEVE_IDS = 2000
ROLLED_BACK = SfError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)

# An operation: the id to report if it fails (None for inserts), and the work itself.
Operation = tuple[str | None, Callable[[], dict[str, Any]]]


class _RolledBack(Exception):
    """Raised inside an allOrNone transaction so that the store undoes every write."""


def _failure(record_id: str | None, errors: list[SfError]) -> dict[str, Any]:
    return {"id": record_id, "success": False, "errors": [e.to_collection_json() for e in errors]}


def _too_many(limit: int) -> RecordError:
    return RecordError(
        400,
        [SfError("EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {limit} records into this call")],
    )


class CollectionEndpoints:
    """The `/composite/sobjects` resources."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    async def create(self, request: web.Request) -> web.Response:
        """POST composite/sobjects: insert records of any types."""
        all_or_none, records = await self._records_body(request)
        ops = [self._create_op(record) for record in records]
        return sf_json(self._apply(origin_of(request), all_or_none, ops))

    async def update(self, request: web.Request) -> web.Response:
        """PATCH composite/sobjects: update records by their ids."""
        all_or_none, records = await self._records_body(request)
        ops = [self._update_op(record) for record in records]
        return sf_json(self._apply(origin_of(request), all_or_none, ops))

    async def upsert(self, request: web.Request) -> web.Response:
        """PATCH composite/sobjects/{Obj}/{ExtField}: insert or update each record by an external id."""
        spec = spec_from_path(request)
        key = spec.field(request.match_info["field"])
        if key is None or not key.external_id:
            raise RecordError(
                400,
                [
                    SfError(
                        "INVALID_FIELD",
                        f"Field {request.match_info['field']} is not an external id field of {spec.name}",
                    )
                ],
            )
        all_or_none, records = await self._records_body(request)
        ops = [self._upsert_op(spec, key.name, record) for record in records]
        return sf_json(self._apply(origin_of(request), all_or_none, ops))

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE composite/sobjects?ids=&allOrNone=."""
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids:
            raise RecordError(400, [SfError("MISSING_ARGUMENT", "ids parameter is required")])
        if len(ids) > MAX_RECORDS:
            raise _too_many(MAX_RECORDS)
        all_or_none = _flag(request.query.get("allOrNone", "false"))
        ops = [self._delete_op(record_id) for record_id in ids]
        return sf_json(self._apply(origin_of(request), all_or_none, ops))

    async def retrieve(self, request: web.Request) -> web.Response:
        """GET (or POST with {ids, fields}) composite/sobjects/{Obj}: records by id, null where none."""
        spec = spec_from_path(request)
        if request.method == "POST":
            body = await read_object(request)
            ids, field_names = body.get("ids"), body.get("fields")
            if not (isinstance(ids, list) and isinstance(field_names, list)):
                raise RecordError(400, [SfError("JSON_PARSER_ERROR", "ids and fields must be arrays")])
            ids = [str(i) for i in ids]
            fields_param = ",".join(str(f) for f in field_names)
        else:
            ids = [i for i in request.query.get("ids", "").split(",") if i]
            fields_param = request.query.get("fields", "")
        if not ids or not fields_param:
            raise RecordError(400, [SfError("MISSING_ARGUMENT", "ids and fields are required")])
        if len(ids) > MAX_RETRIEVE_IDS:
            raise _too_many(MAX_RETRIEVE_IDS)
        fields = select_fields(spec, request.clone(rel_url=request.rel_url.update_query(fields=fields_param)))
        result: list[dict[str, Any] | None] = []
        for record_id in ids:
            try:
                record = self.store.get(spec, record_id)
            except RecordError:
                result.append(None)
                continue
            result.append(render(request, spec, record, fields))
        return sf_json(result)

    # --- operations ---

    def _create_op(self, record: dict[str, Any]) -> Operation:
        def run() -> dict[str, Any]:
            spec = _record_type(record)
            if any(k.lower() == "id" for k in record):
                raise RecordError(400, [SfError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",))])
            created = self.store.create(spec, record)
            return {"id": created["Id"], "success": True, "errors": []}

        return None, run

    def _update_op(self, record: dict[str, Any]) -> Operation:
        record_id = next((str(v) for k, v in record.items() if k.lower() == "id" and v is not None), None)

        def run() -> dict[str, Any]:
            spec = _record_type(record)
            if record_id is None:
                raise RecordError(400, [SfError("MISSING_ARGUMENT", "Id not specified in an update call", ("Id",))])
            body = {k: v for k, v in record.items() if k.lower() != "id"}
            updated = self.store.update(spec, _existing(self.store, spec, record_id), body)
            return {"id": updated["Id"], "success": True, "errors": []}

        return record_id, run

    def _upsert_op(self, spec: ObjectSpec, key: str, record: dict[str, Any]) -> Operation:
        def run() -> dict[str, Any]:
            if _record_type(record) is not spec:
                raise RecordError(400, [SfError("INVALID_TYPE", f"Record type must be {spec.name}")])
            value = next((v for k, v in record.items() if k.lower() == key.lower()), None)
            if not isinstance(value, str) or not value:
                raise RecordError(400, [SfError("MISSING_ARGUMENT", f"{key} not specified", (key,))])
            key_field = spec.field(key)
            assert key_field is not None
            matches = self.store.find_by(spec, key_field, value)
            if len(matches) > 1:
                ids = ", ".join(r["Id"] for r in matches)
                raise RecordError(
                    300,
                    [
                        SfError(
                            "DUPLICATE_EXTERNAL_ID",
                            f"{key}: more than one record found for external id field: [{ids}]",
                            (key,),
                        )
                    ],
                )
            if matches:
                updated = self.store.update(spec, matches[0]["Id"], record)
                return {"id": updated["Id"], "success": True, "errors": [], "created": False}
            created = self.store.create(spec, record)
            return {"id": created["Id"], "success": True, "errors": [], "created": True}

        return None, run

    def _delete_op(self, record_id: str) -> Operation:
        def run() -> dict[str, Any]:
            normalized = normalize_id(record_id)
            spec = OBJECTS_BY_PREFIX.get(normalized[:3]) if normalized else None
            if normalized is None or spec is None:
                raise RecordError(400, [SfError("MALFORMED_ID", f"malformed id {record_id}")])
            self.store.delete(spec, _existing(self.store, spec, normalized))
            return {"id": normalized, "success": True, "errors": []}

        return record_id, run

    def _apply(self, origin: str, all_or_none: bool, ops: list[Operation]) -> list[dict[str, Any]]:
        """Run each operation; with allOrNone, any failure undoes them all."""
        results: list[dict[str, Any]] = []
        if not all_or_none:
            for failure_id, op in ops:
                try:
                    with self.store.transaction(origin):
                        results.append(op())
                except RecordError as exc:
                    results.append(_failure(failure_id, exc.errors))
            return results
        try:
            with self.store.transaction(origin):
                for failure_id, op in ops:
                    try:
                        results.append(op())
                    except RecordError as exc:
                        results.append(_failure(failure_id, exc.errors))
                if any(not r["success"] for r in results):
                    raise _RolledBack
        except _RolledBack:
            results = [
                r if not r["success"] else _failure(failure_id, [ROLLED_BACK])
                for r, (failure_id, _) in zip(results, ops, strict=True)
            ]
        return results

    async def _records_body(self, request: web.Request) -> tuple[bool, list[dict[str, Any]]]:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise RecordError(400, [SfError("JSON_PARSER_ERROR", "The request body must hold a records array")])
        records = body["records"]
        if len(records) > MAX_RECORDS:
            raise _too_many(MAX_RECORDS)
        if not all(isinstance(r, dict) for r in records):
            raise RecordError(400, [SfError("JSON_PARSER_ERROR", "Each record must be a JSON object")])
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise RecordError(400, [SfError("JSON_PARSER_ERROR", "allOrNone must be true or false")])
        return all_or_none, records


def _record_type(record: dict[str, Any]) -> ObjectSpec:
    attributes = record.get("attributes")
    type_name = attributes.get("type") if isinstance(attributes, dict) else None
    spec = object_spec(type_name) if isinstance(type_name, str) else None
    if spec is None:
        raise RecordError(400, [SfError("INVALID_TYPE", "Must send a concrete entity type.")])
    return spec


def _existing(store: RecordStore, spec: ObjectSpec, record_id: str) -> str:
    """The id of a live record; collections report a missing one as an invalid cross reference."""
    try:
        return str(store.get(spec, record_id)["Id"])
    except RecordError as exc:
        if exc.errors[0].error_code == "ENTITY_IS_DELETED":
            raise RecordError(400, [SfError("ENTITY_IS_DELETED", "entity is deleted")]) from None
        raise RecordError(400, [SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")]) from None


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise RecordError(400, [SfError("INVALID_FIELD", f"allOrNone must be true or false, not {text}")])
    return text.lower() == "true"
