"""The v3 associations API (`/crm/v3/associations/{from}/{to}/batch/read|create|archive`), which older readers
such as Singer's tap-hubspot still call: associations named by their v3 type (`contact_to_company`), over the
same store as v4."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.associations import (
    DEFAULT_TYPES,
    HUBSPOT_DEFINED,
    PRIMARY_TYPES,
    AssociationType,
    label_for,
    type_name,
)
from syncd.sandbox.hubspot.associations_api import BATCH_MAX, AssociationRoutes
from syncd.sandbox.hubspot.errors import standard_error, validation_error

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator


def v3_types(from_obj: str, to_obj: str) -> dict[str, AssociationType]:
    """The v3 type names of a pair of objects and the HubSpot-defined type each stands for."""
    out = {}
    for table in (DEFAULT_TYPES, PRIMARY_TYPES):
        type_id = table.get((from_obj, to_obj))
        if type_id is not None:
            spec = AssociationType(HUBSPOT_DEFINED, type_id, label_for(from_obj, to_obj, type_id))
            out[type_name(from_obj, to_obj, spec)] = spec
    return out


class V3AssociationRoutes(AssociationRoutes):
    """Handlers of the v3 association routes (the v4 ones' checks and batch answers, v3 bodies)."""

    async def batch_read(self, request: web.Request) -> web.Response:
        """Each result lists `to` as {id, type} with the v3 type name; no paging per record."""
        from_obj, to_obj = self._pair(request)
        results, missing = [], []
        for item in self._inputs(await self.sim.json_body(request), BATCH_MAX):
            ident = str(item.get("id", "")) if isinstance(item, Mapping) else ""
            record = self.sim.store.get(from_obj, ident)
            targets = self.sim.associations.targets(from_obj, record.id, to_obj) if record is not None else []
            if record is None or not targets:
                missing.append(ident)  # unknown records and records without associations are both errors
                continue
            results.append({
                "from": {"id": str(record.id)},
                "to": [{"id": str(to_id), "type": type_name(from_obj, to_obj, max(specs, key=lambda s: s.type_id))}
                       for to_id, specs in targets],
            })
        errors = [standard_error("OBJECT_NOT_FOUND", f"No {to_obj} is associated with {from_obj} {i}.",
                                 {"fromObjectId": [i]}) for i in missing]
        return self._batch_response(results, errors, 200)

    def _edges(self, from_obj: str, to_obj: str, body: Any) -> list[tuple[int, int, AssociationType]]:
        """(from id, to id, type) of every input, all checked before anything is written."""
        named = v3_types(from_obj, to_obj)
        edges = []
        for item in self._inputs(body, BATCH_MAX):
            if not isinstance(item, Mapping):
                raise validation_error("Each input must be an object with from, to and type.")
            spec = named.get(str(item.get("type", "")))
            if spec is None:
                raise validation_error(
                    f"Invalid association type {item.get('type')!r}; expected one of {sorted(named)}.")
            from_id = self._record_id(from_obj, (item.get("from") or {}).get("id"))
            to_id = self._record_id(to_obj, (item.get("to") or {}).get("id"))
            edges.append((from_id, to_id, spec))
        return edges

    async def batch_create(self, request: web.Request) -> web.Response:
        """Associate pairs with a named v3 type; answers each association made."""
        from_obj, to_obj = self._pair(request)
        edges = self._edges(from_obj, to_obj, await self.sim.json_body(request))
        results = []
        for from_id, to_id, spec in edges:
            self.sim.associations.add(from_obj, from_id, to_obj, to_id, spec)
            results.append({"from": {"id": str(from_id)}, "to": {"id": str(to_id)},
                            "type": type_name(from_obj, to_obj, spec)})
        return self._batch_response(results, [], 201)

    async def batch_archive(self, request: web.Request) -> web.Response:
        """Remove the named type from each pair (the pair stays associated by its other types) → 204."""
        from_obj, to_obj = self._pair(request)
        for from_id, to_id, spec in self._edges(from_obj, to_obj, await self.sim.json_body(request)):
            self.sim.associations.remove_labels(from_obj, from_id, to_obj, to_id, [spec])
        return web.Response(status=204)


def add_v3_association_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """Register the v3 association batch routes."""
    routes = V3AssociationRoutes(sim)
    batch = "/crm/v3/associations/{object_type}/{to_type}/batch"
    app.router.add_post(batch + "/read", sim.api(routes.batch_read))
    app.router.add_post(batch + "/create", sim.api(routes.batch_create))
    app.router.add_post(batch + "/archive", sim.api(routes.batch_archive))
