"""Associations v4 routes: default and labelled PUT, DELETE, paged GET and the batch endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.associations import DEFAULT_TYPES, AssociationType, valid_type
from syncd.sandbox.hubspot.catalog import OBJECT_TYPE_IDS
from syncd.sandbox.hubspot.errors import json_response, not_found, standard_error, validation_error
from syncd.sandbox.hubspot.values import iso_ms

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

PAGE_MAX = 500
BATCH_READ_MAX = 1000
BATCH_MAX = 100


def add_association_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """Register the /crm/v4 association routes."""
    routes = AssociationRoutes(sim)
    one = "/crm/v4/objects/{object_type}/{object_id}/associations"
    app.router.add_put(one + "/default/{to_type}/{to_id}", sim.api(routes.put_default))
    app.router.add_put(one + "/{to_type}/{to_id}", sim.api(routes.put_labelled))
    app.router.add_delete(one + "/{to_type}/{to_id}", sim.api(routes.delete))
    app.router.add_get(one + "/{to_type}", sim.api(routes.list_records))
    batch = "/crm/v4/associations/{object_type}/{to_type}/batch"
    app.router.add_post(batch + "/read", sim.api(routes.batch_read))
    app.router.add_post(batch + "/create", sim.api(routes.batch_create))
    app.router.add_post(batch + "/archive", sim.api(routes.batch_archive))
    app.router.add_post(batch + "/labels/archive", sim.api(routes.batch_labels_archive))
    app.router.add_post(batch + "/associate/default", sim.api(routes.batch_default))


def _spec_json(spec: AssociationType) -> dict[str, Any]:
    out: dict[str, Any] = {"category": spec.category, "typeId": spec.type_id}
    if spec.label is not None:
        out["label"] = spec.label
    return out


class AssociationRoutes:
    """Handlers of the v4 association routes, bound to one simulator."""

    def __init__(self, sim: HubSpotSimulator) -> None:
        self.sim = sim

    def _pair(self, request: web.Request) -> tuple[str, str]:
        from_obj = self.sim.object_type(request.match_info["object_type"])
        to_obj = self.sim.object_type(request.match_info["to_type"])
        if (from_obj, to_obj) not in DEFAULT_TYPES:
            raise validation_error(f"{from_obj} cannot be associated with {to_obj}.")
        return from_obj, to_obj

    def _record_id(self, obj: str, ident: Any) -> int:
        record = self.sim.store.get(obj, str(ident))
        if record is None:
            raise not_found(f"No {obj} with id {ident} exists.")
        return record.id

    def _now(self) -> str:
        return iso_ms(self.sim.clock())

    def _labels_json(self, from_obj: str, from_id: int, to_obj: str, to_id: int) -> dict[str, Any]:
        specs = dict(self.sim.associations.targets(from_obj, from_id, to_obj)).get(to_id, set())
        return {
            "fromObjectTypeId": OBJECT_TYPE_IDS[from_obj],
            "fromObjectId": str(from_id),
            "toObjectTypeId": OBJECT_TYPE_IDS[to_obj],
            "toObjectId": str(to_id),
            "labels": sorted(s.label for s in specs if s.label),
        }

    def _types(self, from_obj: str, to_obj: str, raw: Any) -> list[AssociationType]:
        if not isinstance(raw, list) or not raw:
            raise validation_error("The body must be a non-empty list of {associationCategory, associationTypeId}.")
        out = []
        for item in raw:
            if not isinstance(item, Mapping):
                raise validation_error("Each association type must be an object.")
            spec = valid_type(from_obj, to_obj, item.get("associationCategory"), item.get("associationTypeId"))
            if spec is None:
                raise validation_error(
                    f"Invalid association type {item.get('associationCategory')}/"
                    f"{item.get('associationTypeId')} from {from_obj} to {to_obj}."
                )
            out.append(spec)
        return out

    async def put_default(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        from_id = self._record_id(from_obj, request.match_info["object_id"])
        to_id = self._record_id(to_obj, request.match_info["to_id"])
        return json_response(self._default_batch([(from_obj, from_id, to_obj, to_id)], []))

    def _default_batch(self, pairs: list[tuple[str, int, str, int]], errors: list[dict[str, Any]]) -> dict[str, Any]:
        results = []
        for from_obj, from_id, to_obj, to_id in pairs:
            spec = self.sim.associations.add_default(from_obj, from_id, to_obj, to_id)
            reverse = DEFAULT_TYPES[(to_obj, from_obj)]
            results += [
                {"from": {"id": str(from_id)}, "to": {"id": str(to_id)},
                 "associationSpec": {"associationCategory": spec.category, "associationTypeId": spec.type_id}},
                {"from": {"id": str(to_id)}, "to": {"id": str(from_id)},
                 "associationSpec": {"associationCategory": spec.category, "associationTypeId": reverse}},
            ]
        body: dict[str, Any] = {
            "status": "COMPLETE", "results": results, "startedAt": self._now(), "completedAt": self._now()
        }
        if errors:
            body["errors"] = errors
            body["numErrors"] = len(errors)
        return body

    async def put_labelled(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        from_id = self._record_id(from_obj, request.match_info["object_id"])
        to_id = self._record_id(to_obj, request.match_info["to_id"])
        for spec in self._types(from_obj, to_obj, await self.sim.json_body(request)):
            self.sim.associations.add(from_obj, from_id, to_obj, to_id, spec)
        return json_response(self._labels_json(from_obj, from_id, to_obj, to_id), status=201)

    async def delete(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        from_id = self._record_id(from_obj, request.match_info["object_id"])
        to_id = self._record_id(to_obj, request.match_info["to_id"])
        self.sim.associations.remove(from_obj, from_id, to_obj, to_id)
        return web.Response(status=204)

    def _page(self, from_obj: str, from_id: int, to_obj: str, after: str | None, limit: int) -> tuple[
        list[dict[str, Any]], str | None
    ]:
        start = int(after) if after and after.isdigit() else 0
        targets = [
            (to_id, specs) for to_id, specs in self.sim.associations.targets(from_obj, from_id, to_obj)
            if to_id > start
        ]
        page = targets[:limit]
        results = [
            {
                "toObjectId": str(to_id),
                "associationTypes": [_spec_json(s) for s in sorted(specs, key=lambda s: s.type_id)],
            }
            for to_id, specs in page
        ]
        return results, (str(page[-1][0]) if len(targets) > limit else None)

    async def list_records(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        from_id = self._record_id(from_obj, request.match_info["object_id"])
        try:
            limit = int(request.query.get("limit", PAGE_MAX))
        except ValueError:
            raise validation_error("limit must be an integer.") from None
        if not 1 <= limit <= PAGE_MAX:
            raise validation_error(f"limit must be between 1 and {PAGE_MAX}.")
        results, after = self._page(from_obj, from_id, to_obj, request.query.get("after"), limit)
        body: dict[str, Any] = {"results": results}
        if after is not None:
            body["paging"] = {"next": {"after": after, "link": f"{request.path}?after={after}&limit={limit}"}}
        return json_response(body)

    def _inputs(self, body: Any, cap: int) -> list[Any]:
        if not isinstance(body, Mapping) or not isinstance(body.get("inputs"), list):
            raise validation_error("Invalid input JSON: inputs must be a list.")
        inputs: list[Any] = body["inputs"]
        if len(inputs) > cap:
            raise validation_error(f"Too many inputs: {len(inputs)}; this batch takes at most {cap}.")
        return inputs

    def _batch_response(self, results: list[Any], errors: list[dict[str, Any]], ok: int) -> web.Response:
        body: dict[str, Any] = {
            "status": "COMPLETE", "results": results, "startedAt": self._now(), "completedAt": self._now()
        }
        if errors:
            body["errors"] = errors
            body["numErrors"] = len(errors)
            return json_response(body, status=207)
        return json_response(body, status=ok)

    async def batch_read(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        results, missing = [], []
        for item in self._inputs(await self.sim.json_body(request), BATCH_READ_MAX):
            ident = str(item.get("id", "")) if isinstance(item, Mapping) else ""
            record = self.sim.store.get(from_obj, ident)
            if record is None:
                missing.append(ident)
                continue
            to, after = self._page(from_obj, record.id, to_obj, item.get("after"), PAGE_MAX)
            entry: dict[str, Any] = {"from": {"id": str(record.id)}, "to": to}
            if after is not None:
                entry["paging"] = {"next": {"after": after}}
            if to:
                results.append(entry)
            else:
                missing.append(ident)  # HubSpot reports records without associations as errors too
        errors = [standard_error("OBJECT_NOT_FOUND", f"No {to_obj} is associated with {from_obj} {i}.",
                                 {"fromObjectId": [i]}) for i in missing]
        return self._batch_response(results, errors, 200)

    async def batch_create(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        checked = []
        for item in self._inputs(await self.sim.json_body(request), BATCH_MAX):
            if not isinstance(item, Mapping):
                raise validation_error("Each input must be an object with from, to and types.")
            from_id = self._record_id(from_obj, (item.get("from") or {}).get("id"))
            to_id = self._record_id(to_obj, (item.get("to") or {}).get("id"))
            checked.append((from_id, to_id, self._types(from_obj, to_obj, item.get("types"))))
        results = []
        for from_id, to_id, specs in checked:
            for spec in specs:
                self.sim.associations.add(from_obj, from_id, to_obj, to_id, spec)
            results.append(self._labels_json(from_obj, from_id, to_obj, to_id))
        return self._batch_response(results, [], 201)

    async def batch_default(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        pairs = []
        for item in self._inputs(await self.sim.json_body(request), BATCH_MAX):
            if not isinstance(item, Mapping):
                raise validation_error("Each input must be an object with from and to.")
            pairs.append((from_obj, self._record_id(from_obj, (item.get("from") or {}).get("id")), to_obj,
                          self._record_id(to_obj, (item.get("to") or {}).get("id"))))
        return json_response(self._default_batch(pairs, []))

    async def batch_archive(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        for item in self._inputs(await self.sim.json_body(request), BATCH_MAX):
            if not isinstance(item, Mapping) or not isinstance(item.get("to"), list):
                raise validation_error("Each input must be an object with from and a list of to.")
            from_record = self.sim.store.get(from_obj, str((item.get("from") or {}).get("id")))
            if from_record is None:
                continue
            for target in item["to"]:
                to_record = self.sim.store.get(to_obj, str(target.get("id") if isinstance(target, Mapping) else ""))
                if to_record is not None:
                    self.sim.associations.remove(from_obj, from_record.id, to_obj, to_record.id)
        return web.Response(status=204)

    async def batch_labels_archive(self, request: web.Request) -> web.Response:
        from_obj, to_obj = self._pair(request)
        for item in self._inputs(await self.sim.json_body(request), BATCH_MAX):
            if not isinstance(item, Mapping):
                raise validation_error("Each input must be an object with from, to and types.")
            from_id = self._record_id(from_obj, (item.get("from") or {}).get("id"))
            to_id = self._record_id(to_obj, (item.get("to") or {}).get("id"))
            self.sim.associations.remove_labels(
                from_obj, from_id, to_obj, to_id, self._types(from_obj, to_obj, item.get("types"))
            )
        return web.Response(status=204)
