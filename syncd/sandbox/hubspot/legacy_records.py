"""The legacy record reads older readers still page through: contacts v1, companies v2 and deals v1 (lists,
"recently modified" and single records), over the same store as the v3 API, in the old shapes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.errors import json_response, not_found, validation_error
from syncd.sandbox.hubspot.oauth import HUB_ID
from syncd.sandbox.hubspot.objects import Record
from syncd.sandbox.hubspot.values import to_epoch_ms

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

# The few properties the v1 contact lists return when the request names none (HubSpot's legacy docs).
CONTACT_LIST_DEFAULTS = ("firstname", "lastmodifieddate", "company", "lastname")
CONTACTS_MAX = 100
PAGED_MAX = 250
RECENT_MAX = 100


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class LegacyRender:
    """Records in the legacy shapes: property values as text (dates as epoch-ms text) with their timestamps."""

    def __init__(self, sim: HubSpotSimulator) -> None:
        self.sim = sim

    def value(self, obj: str, name: str, text: str) -> str:
        """A stored value as the legacy APIs gave it: dates and date-times as epoch milliseconds."""
        prop = self.sim.store.properties[obj].get(name)
        if prop is not None and prop.type in ("date", "datetime") and text:
            ms = to_epoch_ms(text)
            return str(ms) if ms is not None else text
        return text

    def names(self, record: Record, wanted: list[str] | None) -> list[str]:
        """The properties to show: the requested ones that have a value, or every one with a value."""
        if wanted is None:
            return sorted(record.properties)
        return [n for n in wanted if n in record.properties]

    def stamp(self, record: Record, name: str) -> int:
        """When a value was set, in ms: the creation time for createdate, else the record's last write."""
        return _ms(record.created_at if name == "createdate" else record.updated_at)

    def v2_properties(
        self, obj: str, record: Record, wanted: list[str] | None, *, history: bool
    ) -> dict[str, Any]:
        """Companies v2 / deals v1 properties: value, timestamp, source and (with `history`) versions."""
        out: dict[str, Any] = {}
        for name in self.names(record, wanted):
            value = self.value(obj, name, record.properties[name])
            stamp = self.stamp(record, name)
            entry: dict[str, Any] = {"value": value, "timestamp": stamp, "source": "API", "sourceId": None}
            entry["versions"] = [{"name": name, "value": value, "timestamp": stamp, "source": "API",
                                  "sourceId": None, "sourceVid": []}] if history else []
            out[name] = entry
        return out

    def contact_properties(self, record: Record, wanted: list[str] | None, *, versions: bool) -> dict[str, Any]:
        """Contacts v1 properties: value, with versions on a profile read."""
        out: dict[str, Any] = {}
        for name in self.names(record, wanted):
            value = self.value("contacts", name, record.properties[name])
            entry: dict[str, Any] = {"value": value}
            if versions:
                entry["versions"] = [{"value": value, "source-type": "API", "source-id": None,
                                      "source-label": None, "timestamp": self.stamp(record, name),
                                      "selected": False}]
            out[name] = entry
        return out

    def contact(self, record: Record, wanted: list[str] | None, *, versions: bool, added_at: int) -> dict[str, Any]:
        """A contact as the v1 contacts API answered it."""
        created = _ms(record.created_at)
        identities: list[dict[str, Any]] = []
        email = record.properties.get("email")
        if email:
            identities.append({"type": "EMAIL", "value": email, "timestamp": created, "is-primary": True})
        identities.append({"type": "LEAD_GUID", "value": str(uuid.uuid5(uuid.NAMESPACE_URL, f"hs-{record.id}")),
                           "timestamp": created})
        merged = [int(i) for i in record.properties.get("hs_merged_object_ids", "").split(";") if i.isdigit()]
        return {
            "addedAt": added_at,
            "vid": record.id,
            "canonical-vid": record.id,
            "merged-vids": merged,
            "portal-id": HUB_ID,
            "is-contact": True,
            "properties": self.contact_properties(record, wanted, versions=versions),
            "form-submissions": [],
            "list-memberships": [],
            "identity-profiles": [{"vid": record.id, "saved-at-timestamp": _ms(record.updated_at),
                                   "deleted-changed-timestamp": 0, "identities": identities}],
            "merge-audits": [],
        }

    def company(self, record: Record, wanted: list[str] | None, *, history: bool) -> dict[str, Any]:
        """A company as the v2 companies API answered it."""
        return {
            "portalId": HUB_ID, "companyId": record.id, "isDeleted": False,
            "properties": self.v2_properties("companies", record, wanted, history=history),
            "additionalDomains": [], "stateChanges": [], "mergeAudits": [],
        }

    def deal(self, record: Record, wanted: list[str] | None, *, history: bool, associations: bool) -> dict[str, Any]:
        """A deal as the v1 deals API answered it."""
        out: dict[str, Any] = {
            "portalId": HUB_ID, "dealId": record.id, "isDeleted": False,
            "properties": self.v2_properties("deals", record, wanted, history=history),
            "imports": [], "stateChanges": [],
        }
        if associations:
            links = self.sim.associations
            out["associations"] = {
                "associatedVids": [i for i, _ in links.targets("deals", record.id, "contacts")],
                "associatedCompanyIds": [i for i, _ in links.targets("deals", record.id, "companies")],
                "associatedDealIds": [],
                "associatedTicketIds": [],
            }
        return out


def _count(request: web.Request, name: str, default: int, cap: int) -> int:
    raw = request.query.get(name, str(default))
    if not raw.isdigit():
        raise validation_error(f"{name} must be a positive integer; got {raw!r}.")
    # The legacy APIs clamp an oversized page to their maximum rather than refuse it.
    return max(1, min(int(raw), cap))


def _offset(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "0") or "0"
    try:
        return int(raw)
    except ValueError:
        raise validation_error(f"{name} must be an integer; got {raw!r}.") from None


def _wanted(request: web.Request, *names: str) -> list[str] | None:
    values = [v for name in names for raw in request.query.getall(name, []) for v in raw.split(",") if v]
    return values or None


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


class LegacyRoutes:
    """Handlers of the legacy record routes, bound to one simulator."""

    def __init__(self, sim: HubSpotSimulator) -> None:
        self.sim = sim
        self.render = LegacyRender(sim)

    def _live(self, obj: str, after: int) -> Iterable[Record]:
        return (r for r in self.sim.store.after_id(obj, after) if not r.archived and r.merged_into is None)

    def _by_recency(self, obj: str, key: Callable[[Record], float], since_ms: int) -> list[Record]:
        """Live records written at or after `since_ms`, newest first (ties by id, highest first)."""
        records = [r for r in self._live(obj, 0) if _ms(key(r)) >= since_ms]
        return sorted(records, key=lambda r: (key(r), r.id), reverse=True)

    def _record(self, obj: str, raw_id: str) -> Record:
        record = self.sim.store.get(obj, raw_id)
        if record is None:
            raise not_found("resource not found")
        return record

    # --- contacts v1 ---

    async def all_contacts(self, request: web.Request) -> web.Response:
        """`/contacts/v1/lists/all/contacts/all`: id order, the next page after `vid-offset`."""
        count = _count(request, "count", 20, CONTACTS_MAX)
        wanted = _wanted(request, "property") or list(CONTACT_LIST_DEFAULTS)
        page = list(islice(self._live("contacts", _offset(request, "vidOffset")), count + 1))
        shown = page[:count]
        return json_response({
            "contacts": [self.render.contact(r, wanted, versions=False, added_at=_ms(r.created_at)) for r in shown],
            "has-more": len(page) > count,
            "vid-offset": shown[-1].id if shown else _offset(request, "vidOffset"),
        })

    async def recent_contacts(self, request: web.Request) -> web.Response:
        """Recently updated (or, on the `all/contacts/recent` path, created) contacts, newest first; the
        next page starts at (time-offset, vid-offset)."""
        created = request.match_info.get("list") == "all"
        key: Callable[[Record], float] = (lambda r: r.created_at) if created else (lambda r: r.updated_at)
        count = _count(request, "count", 20, CONTACTS_MAX)
        wanted = _wanted(request, "property") or list(CONTACT_LIST_DEFAULTS)
        ordered = self._by_recency("contacts", key, 0)
        if "timeOffset" in request.query:
            time_offset, vid_offset = _offset(request, "timeOffset"), _offset(request, "vidOffset")
            ordered = [r for r in ordered if (_ms(key(r)), r.id) < (time_offset, vid_offset)]
        shown = ordered[:count]
        last = shown[-1] if shown else None
        return json_response({
            "contacts": [self.render.contact(r, wanted, versions=False, added_at=_ms(key(r))) for r in shown],
            "has-more": len(ordered) > count,
            "vid-offset": last.id if last else 0,
            "time-offset": _ms(key(last)) if last else 0,
        })

    async def contact_profile(self, request: web.Request) -> web.Response:
        """`/contacts/v1/contact/vid|email/.../profile`: every property, with versions."""
        if "vid" in request.match_info:
            record = self._record("contacts", request.match_info["vid"])
        else:
            found = self.sim.store.find_unique("contacts", "email", request.match_info["email"])
            if found is None or found.archived:
                raise not_found("contact does not exist")
            record = found
        wanted = _wanted(request, "property")
        return json_response(self.render.contact(record, wanted, versions=True, added_at=_ms(record.created_at)))

    # --- companies v2 and deals v1 ---

    async def paged(self, request: web.Request, *, obj: str) -> web.Response:
        """`/companies/v2/companies/paged` and `/deals/v1/deal/paged`: id order, `offset` is the last id."""
        limit = _count(request, "limit", 100, PAGED_MAX)
        after = _offset(request, "offset")
        every = _flag(request, "includeAllProperties")
        wanted = None if every else (_wanted(request, "properties", "propertiesWithHistory") or [])
        history = _wanted(request, "propertiesWithHistory") is not None or every
        page = list(islice(self._live(obj, after), limit + 1))
        shown = page[:limit]
        rows = [self._row(request, obj, r, wanted, history) for r in shown]
        more = len(page) > limit
        offset = shown[-1].id if shown else after
        if obj == "companies":
            return json_response({"companies": rows, "has-more": more, "offset": offset})
        return json_response({"deals": rows, "hasMore": more, "offset": offset})

    async def recent(self, request: web.Request, *, obj: str) -> web.Response:
        """`.../recent/modified` and `.../recent/created`: newest first, `offset` counts records skipped."""
        created = request.match_info["change"] == "created"
        key: Callable[[Record], float] = (lambda r: r.created_at) if created else (lambda r: r.updated_at)
        count = _count(request, "count", 100, RECENT_MAX)
        offset = _offset(request, "offset")
        ordered = self._by_recency(obj, key, _offset(request, "since"))
        shown = ordered[offset:offset + count]
        return json_response({
            "results": [self._row(request, obj, r, None, True) for r in shown],
            "hasMore": offset + count < len(ordered),
            "offset": offset + len(shown),
            "total": len(ordered),
        })

    async def one(self, request: web.Request, *, obj: str) -> web.Response:
        """`/companies/v2/companies/{id}` and `/deals/v1/deal/{id}`: every property, with versions."""
        record = self._record(obj, request.match_info["record_id"])
        return json_response(self._row(request, obj, record, None, True))

    def _row(self, request: web.Request, obj: str, record: Record, wanted: list[str] | None,
             history: bool) -> dict[str, Any]:
        if obj == "companies":
            return self.render.company(record, wanted, history=history)
        # Single deal reads always carry associations; lists only when asked.
        associations = _flag(request, "includeAssociations") or "record_id" in request.match_info
        return self.render.deal(record, wanted, history=history, associations=associations)


def add_legacy_record_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """Register the contacts v1, companies v2 and deals v1 reads."""
    routes = LegacyRoutes(sim)
    app.router.add_get("/contacts/v1/lists/all/contacts/all", sim.api(routes.all_contacts))
    app.router.add_get("/contacts/v1/lists/{list:recently_updated}/contacts/recent", sim.api(routes.recent_contacts))
    app.router.add_get("/contacts/v1/lists/{list:all}/contacts/recent", sim.api(routes.recent_contacts))
    app.router.add_get("/contacts/v1/contact/vid/{vid}/profile", sim.api(routes.contact_profile))
    app.router.add_get("/contacts/v1/contact/email/{email}/profile", sim.api(routes.contact_profile))
    for prefix, obj in (("/companies/v2/companies", "companies"), ("/deals/v1/deal", "deals")):
        app.router.add_get(prefix + "/paged", sim.api(partial(routes.paged, obj=obj)))
        app.router.add_get(prefix + "/recent/{change:modified|created}", sim.api(partial(routes.recent, obj=obj)))
        app.router.add_get(prefix + "/{record_id:\\d+}", sim.api(partial(routes.one, obj=obj)))
