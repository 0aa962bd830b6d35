"""CRM v3 object routes: list, get, create, update, archive, batch read/create/update/upsert/archive, search,
merge, and the contacts' GDPR delete."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDict

from syncd.sandbox.hubspot.associations import (
    DEFAULT_TYPES,
    PRIMARY_TYPES,
    AssociationType,
    type_name,
    valid_type,
)
from syncd.sandbox.hubspot.catalog import MODIFIED_PROPERTY
from syncd.sandbox.hubspot.errors import HubSpotError, json_response, not_found, standard_error, validation_error
from syncd.sandbox.hubspot.objects import Record
from syncd.sandbox.hubspot.search import run_search
from syncd.sandbox.hubspot.values import iso_ms

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

BATCH_MAX = 100
LIST_MAX = 100
_ALWAYS = ("createdate", "hs_object_id")


def add_object_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """Register every /crm/v3/objects route (object names and type ids share the `{object_type}` segment)."""
    routes = ObjectRoutes(sim)
    base = "/crm/v3/objects/{object_type}"
    app.router.add_get(base, sim.api(routes.list_records))
    app.router.add_post(base, sim.api(routes.create))
    app.router.add_post(base + "/batch/read", sim.api(routes.batch_read))
    app.router.add_post(base + "/batch/create", sim.api(routes.batch_create))
    app.router.add_post(base + "/batch/update", sim.api(routes.batch_update))
    app.router.add_post(base + "/batch/upsert", sim.api(routes.batch_upsert))
    app.router.add_post(base + "/batch/archive", sim.api(routes.batch_archive))
    app.router.add_post(base + "/search", sim.api(routes.search))
    app.router.add_post(base + "/merge", sim.api(routes.merge))
    app.router.add_post(base + "/gdpr-delete", sim.api(routes.gdpr_delete))
    app.router.add_get(base + "/{object_id}", sim.api(routes.get))
    app.router.add_patch(base + "/{object_id}", sim.api(routes.update))
    app.router.add_delete(base + "/{object_id}", sim.api(routes.archive))


def _csv(request: web.Request, name: str) -> list[str]:
    # HubSpot accepts both properties=a,b and properties=a&properties=b.
    return [p for value in request.query.getall(name, []) for p in value.split(",") if p]


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise validation_error(f"{name} must be true or false; got {value!r}.")
    return value == "true"


class ObjectRoutes:
    """Handlers of the object routes, bound to one simulator."""

    def __init__(self, sim: HubSpotSimulator) -> None:
        self.sim = sim
        self.store = sim.store

    # --- rendering ---

    def render(
        self, obj: str, record: Record, wanted: list[str] | None, *, associations: list[str] | None = None
    ) -> dict[str, Any]:
        """A record as SimplePublicObject(WithAssociations); a requested property without a value is null."""
        names = list(wanted) if wanted else list(self.sim.default_properties(obj))
        names += [n for n in (*_ALWAYS, MODIFIED_PROPERTY[obj]) if n not in names]
        out: dict[str, Any] = {
            "id": str(record.id),
            "properties": self.shown(obj, record.properties, names),
            "createdAt": iso_ms(record.created_at),
            "updatedAt": iso_ms(record.updated_at),
            "archived": record.archived,
        }
        if record.archived_at is not None:
            out["archivedAt"] = iso_ms(record.archived_at)
        if associations:
            found: dict[str, Any] = {}
            for to_raw in associations:
                to_obj = self.sim.associated_type(to_raw)
                if to_obj is None:
                    continue
                results = [
                    {"id": str(to_id), "type": self._type_name(obj, to_obj, specs)}
                    for to_id, specs in self.sim.associations.targets(obj, record.id, to_obj)
                ]
                if results:
                    found[to_raw] = {"results": results}
            if found:
                out["associations"] = found
        return out

    def shown(self, obj: str, values: Mapping[str, str], names: list[str]) -> dict[str, str | None]:
        """The requested properties of a record: real HubSpot answers null for a defined property without a
        value and leaves out names that are not properties of the object at all."""
        defined = self.store.properties[obj]
        return {n: values.get(n) for n in names if n in values or n in defined}

    def _type_name(self, obj: str, to_obj: str, specs: set[AssociationType]) -> str:
        # The unlabelled (highest id) type names the edge, as HubSpot's v3 responses do.
        return type_name(obj, to_obj, max(specs, key=lambda s: s.type_id))

    # --- single records ---

    async def list_records(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        limit = _int_param(request, "limit", 10)
        if not 1 <= limit <= LIST_MAX:
            raise validation_error(f"limit must be between 1 and {LIST_MAX}; got {limit}.")
        after = request.query.get("after")
        start = 0
        if after:
            try:
                start = int(after)
            except ValueError:
                raise validation_error(f"Invalid after cursor {after!r}.") from None
        archived = _flag(request, "archived")
        wanted = _csv(request, "properties")
        associations = _csv(request, "associations")
        # One more than a page tells whether there is a next page; nothing past it is read.
        candidates = list(islice(
            (r for r in self.store.after_id(obj, start) if r.archived == archived and r.merged_into is None),
            limit + 1,
        ))  # fmt: skip
        page = candidates[:limit]
        body: dict[str, Any] = {"results": [self.render(obj, r, wanted, associations=associations) for r in page]}
        if len(candidates) > limit:
            cursor = str(page[-1].id)
            query = MultiDict(request.query)
            query["after"] = cursor
            link = request.path + "?" + "&".join(f"{k}={quote(v, safe=',')}" for k, v in query.items())
            body["paging"] = {"next": {"after": cursor, "link": link}}
        return json_response(body)

    async def get(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        id_property = request.query.get("idProperty")
        ident = request.match_info["object_id"]
        if _flag(request, "archived"):
            record = self.store.get(obj, ident, archived=True) if id_property is None else None
        else:
            record = self.store.lookup(obj, ident, id_property)
        if record is None:
            raise not_found()
        return json_response(
            self.render(obj, record, _csv(request, "properties"), associations=_csv(request, "associations"))
        )

    async def create(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        body = await self.sim.json_body(request)
        if not isinstance(body, Mapping) or "properties" not in body:
            raise validation_error("Invalid input JSON: properties is required.")
        values = self.store.validate(obj, body["properties"])
        links = self._associations(obj, body.get("associations", []))
        self.store.check_unique(obj, values)
        record = self.store.create(obj, values)
        for to_obj, to_id, spec in links:
            self.sim.associations.add(obj, record.id, to_obj, to_id, spec)
        return json_response(self.render(obj, record, list(values) or None), status=201)

    async def update(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        record = self.store.lookup(obj, request.match_info["object_id"], request.query.get("idProperty"))
        if record is None:
            raise not_found()
        body = await self.sim.json_body(request)
        if not isinstance(body, Mapping) or "properties" not in body:
            raise validation_error("Invalid input JSON: properties is required.")
        values = self.store.validate(obj, body["properties"])
        self.store.check_unique(obj, values, exclude=record.id)
        self.store.update(obj, record, values)
        return json_response(self.render(obj, record, list(values) or None))

    async def archive(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        record = self.store.get(obj, request.match_info["object_id"])
        # Archiving a missing or already archived record is not an error in HubSpot.
        if record is not None:
            self.store.archive(obj, record)
        return web.Response(status=204)

    # --- batches ---

    def _inputs(self, body: Any) -> list[Any]:
        if not isinstance(body, Mapping) or not isinstance(body.get("inputs"), list):
            raise validation_error("Invalid input JSON: inputs must be a list.")
        inputs: list[Any] = body["inputs"]
        if len(inputs) > BATCH_MAX:
            raise validation_error(f"Too many inputs: {len(inputs)}; a batch takes at most {BATCH_MAX}.")
        return inputs

    def _batch(self, results: list[dict[str, Any]], errors: list[dict[str, Any]], ok: int) -> web.Response:
        now = iso_ms(self.sim.clock())
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return json_response(body, status=207)
        return json_response(body, status=ok)

    async def batch_read(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        body = await self.sim.json_body(request)
        inputs = self._inputs(body)
        id_property = body.get("idProperty")
        if id_property is not None:
            self.store.require_unique_property(obj, id_property)
        wanted = body.get("properties") or None
        archived = _flag(request, "archived")
        results, missing = [], []
        for item in inputs:
            ident = str(item.get("id", "")) if isinstance(item, Mapping) else ""
            if archived and id_property is None:
                record = self.store.get(obj, ident, archived=True)
            else:
                record = self.store.lookup(obj, ident, id_property)
            if record is None:
                missing.append(ident)
            else:
                results.append(self.render(obj, record, wanted))
        errors = []
        if missing:
            errors.append(standard_error(
                "OBJECT_NOT_FOUND",
                f"Could not get some {obj.upper()} objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                {"ids": missing},
            ))
        return self._batch(results, errors, 200)

    async def batch_create(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        inputs = self._inputs(await self.sim.json_body(request))
        # HubSpot validates the whole batch first: one bad input fails the batch and nothing is created.
        prepared = []
        claimed: dict[tuple[str, str], int] = {}
        for index, item in enumerate(inputs):
            if not isinstance(item, Mapping) or "properties" not in item:
                raise validation_error(f"Invalid input JSON: inputs[{index}].properties is required.")
            values = self.store.validate(obj, item["properties"])
            links = self._associations(obj, item.get("associations", []))
            self.store.check_unique(obj, values)
            for name, value in values.items():
                definition = self.store.properties[obj][name]
                if definition.unique and value:
                    if (name, value) in claimed:
                        raise validation_error(
                            f"Duplicate {name} {value!r} in inputs {claimed[(name, value)]} and {index}."
                        )
                    claimed[(name, value)] = index
            prepared.append((values, links))
        results = []
        for values, links in prepared:
            record = self.store.create(obj, values)
            for to_obj, to_id, spec in links:
                self.sim.associations.add(obj, record.id, to_obj, to_id, spec)
            results.append(self.render(obj, record, list(values) or None))
        return self._batch(results, [], 201)

    async def batch_update(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        inputs = self._inputs(await self.sim.json_body(request))
        checked = []
        for index, item in enumerate(inputs):
            if not isinstance(item, Mapping) or "id" not in item or "properties" not in item:
                raise validation_error(f"Invalid input JSON: inputs[{index}] needs id and properties.")
            checked.append((item, self.store.validate(obj, item["properties"])))
        results, errors, missing = [], [], []
        for item, values in checked:
            record = self.store.lookup(obj, str(item["id"]), item.get("idProperty"))
            if record is None:
                missing.append(str(item["id"]))
                continue
            try:
                self.store.check_unique(obj, values, exclude=record.id)
            except HubSpotError as exc:
                errors.append(standard_error(exc.category, exc.message, {"id": [str(record.id)]}))
                continue
            self.store.update(obj, record, values)
            results.append(self.render(obj, record, list(values) or None))
        if missing:
            errors.append(standard_error(
                "OBJECT_NOT_FOUND", f"Could not update some {obj.upper()} objects: they do not exist.",
                {"ids": missing},
            ))
        return self._batch(results, errors, 200)

    async def batch_upsert(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        inputs = self._inputs(await self.sim.json_body(request))
        checked = []
        for index, item in enumerate(inputs):
            if not isinstance(item, Mapping) or "id" not in item or "properties" not in item:
                raise validation_error(f"Invalid input JSON: inputs[{index}] needs id and properties.")
            id_property = item.get("idProperty")
            if not isinstance(id_property, str):
                raise validation_error(f"inputs[{index}].idProperty is required for upsert.")
            self.store.require_unique_property(obj, id_property)
            values = self.store.validate(obj, item["properties"])
            checked.append((str(item["id"]), id_property, values))
        results, errors = [], []
        for ident, id_property, values in checked:
            record = self.store.find_unique(obj, id_property, ident)
            try:
                if record is None:
                    values = {**values, id_property: self.store.validate(obj, {id_property: ident})[id_property]}
                    self.store.check_unique(obj, values)
                    record = self.store.create(obj, values)
                    created = True
                else:
                    self.store.check_unique(obj, values, exclude=record.id)
                    self.store.update(obj, record, values)
                    created = False
            except HubSpotError as exc:
                errors.append(standard_error(exc.category, exc.message, {"id": [ident]}))
                continue
            results.append(self.render(obj, record, list(values) or None) | {"new": created})
        return self._batch(results, errors, 200)

    async def batch_archive(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        inputs = self._inputs(await self.sim.json_body(request))
        for item in inputs:
            record = self.store.get(obj, str(item.get("id", ""))) if isinstance(item, Mapping) else None
            if record is not None:
                self.store.archive(obj, record)
        return web.Response(status=204)

    # --- search and merge ---

    async def search(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        refused = self.sim.take_search_slot()
        if refused is not None:
            return refused
        body = await self.sim.json_body(request)
        page = run_search(self.store, obj, body, now=self.sim.clock(), lag_s=self.sim.search_lag_s)
        names = [*page.properties, *(n for n in (*_ALWAYS, MODIFIED_PROPERTY[obj]) if n not in page.properties)]
        results = [
            {
                "id": str(record_id),
                "properties": self.shown(obj, props, names),
                "createdAt": iso_ms(created),
                "updatedAt": iso_ms(updated),
                "archived": False,
            }
            for record_id, props, created, updated in page.hits
        ]
        out: dict[str, Any] = {"total": page.total, "results": results}
        if page.next_after is not None:
            out["paging"] = {"next": {"after": str(page.next_after)}}
        return json_response(out)

    async def merge(self, request: web.Request) -> web.Response:
        obj = self.sim.object_type(request.match_info["object_type"])
        body = await self.sim.json_body(request)
        if not isinstance(body, Mapping) or not {"primaryObjectId", "objectIdToMerge"} <= set(body):
            raise validation_error("Invalid input JSON: primaryObjectId and objectIdToMerge are required.")
        primary = self.store.get(obj, str(body["primaryObjectId"]))
        merged = self.store.get(obj, str(body["objectIdToMerge"]))
        if primary is None or merged is None:
            raise not_found()
        if primary.id == merged.id:
            raise validation_error("Cannot merge a record with itself.")
        self.store.merge(obj, primary, merged)
        self.sim.associations.move(obj, merged.id, primary.id)
        return json_response(self.render(obj, primary, None))

    async def gdpr_delete(self, request: web.Request) -> web.Response:
        """POST /crm/v3/objects/contacts/gdpr-delete {objectId, idProperty?}: the contact is deleted for good
        (archived ones too), with its associations. Contacts only, as in HubSpot. (HubSpot's separate
        `contact.privacyDeletion` webhook is not simulated: subscribers see a deletion.)"""
        obj = self.sim.object_type(request.match_info["object_type"])
        if obj != "contacts":
            raise not_found()
        body = await self.sim.json_body(request)
        if not isinstance(body, Mapping) or not isinstance(body.get("objectId"), str | int):
            raise validation_error("Invalid input JSON: objectId is required.")
        ident, id_property = str(body["objectId"]), body.get("idProperty")
        record = self.store.lookup(obj, ident, id_property)
        if record is None and id_property in (None, "hs_object_id"):
            record = self.store.get(obj, ident, archived=True)
        if record is None:
            raise not_found()
        for to_obj in ("companies", "deals"):
            for to_id, _ in self.sim.associations.targets(obj, record.id, to_obj):
                self.sim.associations.remove(obj, record.id, to_obj, to_id)
        self.store.purge(obj, record)
        return web.Response(status=204)

    # --- associations given with a create ---

    def _associations(self, obj: str, raw: Any) -> list[tuple[str, int, AssociationType]]:
        """Resolve `associations` of a create body: the target type follows from the type id."""
        if not isinstance(raw, list):
            raise validation_error("associations must be a list.")
        out = []
        for item in raw:
            to_id = item.get("to", {}).get("id") if isinstance(item, Mapping) else None
            types = item.get("types") if isinstance(item, Mapping) else None
            if to_id is None or not isinstance(types, list) or not types:
                raise validation_error("Each association needs to.id and a non-empty types list.")
            for spec_raw in types:
                category = spec_raw.get("associationCategory") if isinstance(spec_raw, Mapping) else None
                type_id = spec_raw.get("associationTypeId") if isinstance(spec_raw, Mapping) else None
                candidates = [
                    to_obj for (frm, to_obj), tid in [*DEFAULT_TYPES.items(), *PRIMARY_TYPES.items()]
                    if frm == obj and tid == type_id
                ]
                spec = valid_type(obj, candidates[0], category, type_id) if candidates else None
                if spec is None:
                    raise validation_error(
                        f"Invalid association type {category}/{type_id} for {obj}."
                    )
                target = self.store.get(candidates[0], str(to_id))
                if target is None:
                    raise validation_error(
                        f"One or more associations are invalid: {candidates[0]} {to_id} does not exist."
                    )
                out.append((candidates[0], target.id, spec))
        return out


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation_error(f"{name} must be an integer; got {raw!r}.") from None

