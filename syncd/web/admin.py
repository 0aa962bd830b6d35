"""The admin listener: health, readiness, Prometheus metrics, the conflicts/links/inbox/dead-letters API (Bearer
token on every /api/ route) and the conflict review pages."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import SQLAlchemyError

from syncd.logs import get_logger
from syncd.settings import Settings
from syncd.store import (
    ConflictStatus,
    ConflictStore,
    ConnectionStore,
    Database,
    DeadLetterStore,
    InboxStore,
    LinkState,
    LinkStore,
    Resolution,
    SchemaOutdatedError,
    StoreConflictError,
    StoreError,
    StoreNotFoundError,
    check_schema,
)
from syncd.store.deadletters_command import dead_letter_view
from syncd.store.inbox_command import InboxListing, inbox_event_view
from syncd.store.reports import conflict_view, link_view
from syncd.store.review import ReviewStore
from syncd.web.metrics import Metrics
from syncd.web.review import SystemObjects, add_review_pages

log = get_logger(__name__)

MAX_PAGE = 1000
# Far past any real table, well inside the 64-bit integers the databases take: larger numbers are refused
# here, never handed to a driver that would overflow on them.
MAX_OFFSET = 10**12
MAX_ID = 2**63 - 1
# The API takes small JSON bodies (a resolution); nothing it serves needs more.
MAX_BODY_BYTES = 64 * 1024
_STORE_DOWN = (StoreError, SQLAlchemyError, OSError)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _bad_query(message: str) -> web.HTTPBadRequest:
    """A 400 with the API's `{"error": ...}` body, raised from a handler's query parsing."""
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _page(request: web.Request) -> tuple[int, int]:
    """`limit` and `offset` from the query; a 400 if they are not sensible numbers."""
    try:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        limit, offset = 0, -1
    if not (1 <= limit <= MAX_PAGE and 0 <= offset <= MAX_OFFSET):
        raise _bad_query(f"limit must be an integer 1..{MAX_PAGE} and offset an integer 0..{MAX_OFFSET}")
    return limit, offset


def _path_id(request: web.Request, what: str) -> int:
    """The `{id}` of the path (digits, by the route); one no row can have is a 404 like any unknown id."""
    text = request.match_info["id"]
    if len(text) > 19 or int(text) > MAX_ID:
        raise web.HTTPNotFound(text=json.dumps({"error": f"{what} {text[:24]} does not exist"}),
                               content_type="application/json")
    return int(text)


def _choice(request: web.Request, name: str, default: str | None, choices: tuple[str, ...]) -> str | None:
    """Query parameter `name`, one of `choices` (or `default` when absent); a 400 naming them otherwise."""
    value = request.query.get(name, default)
    if value is not None and value not in choices:
        raise _bad_query(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}")
    return value


class AdminApi:
    """The admin endpoints' handlers over one store."""

    def __init__(
        self, *, db: Database, settings: Settings, metrics: Metrics, on_requeue: Callable[[], None] | None = None
    ) -> None:
        self._db = db
        self._on_requeue = on_requeue
        self._token = settings.admin.token
        self._metrics = metrics
        self._conflicts = ConflictStore(db)
        self._links = LinkStore(db)
        self._connections = ConnectionStore(db)
        self._inbox = InboxStore(db)
        self._review = ReviewStore(db)
        self._dead_letters = DeadLetterStore(db)

    async def healthz(self, _request: web.Request) -> web.Response:
        """The process is up and serving."""
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        """Ready when the store answers with a current schema; names connections needing re-authorisation."""
        try:
            state = await check_schema(self._db)
            connections = await self._connections.list()
        except SchemaOutdatedError as exc:
            return web.json_response({"ready": False, "reason": str(exc)}, status=503)
        except _STORE_DOWN as exc:
            log.error("readiness: store unreachable", error=str(exc))
            return web.json_response({"ready": False, "reason": "store unreachable"}, status=503)
        # A revoked grant stops only its connection, so it is reported but does not make the process unready.
        needs_reauth = [c.name for c in connections if c.status == "needs_reauth"]
        return web.json_response({"ready": True, "schema": state.current, "needs_reauth": needs_reauth})

    async def metrics(self, _request: web.Request) -> web.Response:
        """Prometheus text; the inbox, conflict and dead-letter gauges are measured now (kept at their last
        values if the store is down)."""
        try:
            self._metrics.inbox_pending.set(await self._inbox.pending_count())
            self._metrics.inbox_given_up.set(await self._inbox.given_up_count())
            self._metrics.measure(self._metrics.conflicts_open, await self._conflicts.open_counts())
            self._metrics.measure(self._metrics.dead_letters, await self._review.dead_letter_counts())
        except _STORE_DOWN as exc:
            log.warning("metrics: store not counted, store unreachable", error=str(exc))
        body, content_type = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def list_conflicts(self, request: web.Request) -> web.Response:
        """`GET /api/conflicts?status=open|resolved|all&limit=&offset=`, oldest first."""
        status = _choice(request, "status", "open", ("open", "resolved", "all"))
        limit, offset = _page(request)
        wanted = None if status == "all" else cast(ConflictStatus, status)
        found = await self._conflicts.list(status=wanted, limit=limit, offset=offset)
        return web.json_response([conflict_view(c) for c in found])

    async def resolve_conflict(self, request: web.Request) -> web.Response:
        """`POST /api/conflicts/{id}/resolve` with `{"resolution", "value"?, "by"}`."""
        conflict_id = _path_id(request, "conflict")
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return _error(400, "body must be JSON (nested at most a few hundred levels)")
        problem, resolution, value, by = _resolution(body)
        if problem:
            return _error(400, problem)
        try:
            resolved = await self._conflicts.resolve(conflict_id, resolution, value, by=by)
        except StoreNotFoundError:
            return _error(404, f"conflict {conflict_id} does not exist")
        except StoreConflictError:
            return _error(409, f"conflict {conflict_id} is already resolved")
        log.info("conflict resolved", conflict=conflict_id, resolution=resolution, by=by)
        return web.json_response(conflict_view(resolved))

    async def list_links(self, request: web.Request) -> web.Response:
        """`GET /api/links?mapping=&object=&state=&limit=&offset=`; `next_offset` is null on the last page."""
        state = _choice(request, "state", None, ("pending", "linked", "deleted"))
        limit, offset = _page(request)
        found = await self._links.list(
            mapping=request.query.get("mapping"),
            object=request.query.get("object"),
            state=cast("LinkState | None", state),
            limit=limit,
            offset=offset,
        )
        next_offset = offset + len(found) if len(found) == limit else None
        return web.json_response({"links": [link_view(link) for link in found], "next_offset": next_offset})

    async def list_inbox(self, request: web.Request) -> web.Response:
        """`GET /api/inbox?status=pending|given_up|all&connection=&limit=&offset=`: pending events oldest first,
        given-up ones latest first (the default), or all, processed ones too, newest first."""
        status = _choice(request, "status", "given_up", ("pending", "given_up", "all"))
        limit, offset = _page(request)
        found = await self._inbox.events(
            cast(InboxListing, status), connection=request.query.get("connection"), limit=limit, offset=offset
        )
        return web.json_response([inbox_event_view(e) for e in found])

    async def retry_inbox_event(self, request: web.Request) -> web.Response:
        """`POST /api/inbox/{id}/retry`: put a given-up event back in the queue."""
        inbox_id = _path_id(request, "inbox event")
        try:
            [requeued] = await self._inbox.requeue([inbox_id])
        except StoreNotFoundError:
            return _error(404, f"inbox event {inbox_id} does not exist")
        except StoreConflictError as exc:
            return _error(409, str(exc))
        log.info("inbox event requeued", id=inbox_id, connection=requeued.connection, event_id=requeued.event_id)
        if self._on_requeue is not None:
            self._on_requeue()  # the daemon's inbox takes it now, not at its next safety round
        return web.json_response(inbox_event_view(requeued))

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every /api/ route, read or write, needs the admin token: the answers carry customers' e-mails and
        phone numbers. Health, readiness and metrics stay open for probes and scrapers."""
        if request.path.startswith("/api/") and not self._authorised(request):
            return self._unauthorised()
        return await handler(request)

    async def list_dead_letters(self, request: web.Request) -> web.Response:
        """`GET /api/deadletters?mapping=&object=&limit=&offset=`: records syncd could not sync, oldest first,
        with the kind of failure, the system's code and message, and when they are tried again."""
        limit, offset = _page(request)
        found = await self._dead_letters.list(
            mapping=request.query.get("mapping"), object=request.query.get("object"), limit=limit, offset=offset
        )
        return web.json_response([dead_letter_view(d) for d in found])

    async def retry_dead_letter(self, request: web.Request) -> web.Response:
        """`POST /api/deadletters/{id}/retry`: make a dead letter due now (the next run of its object syncs the
        record again)."""
        letter_id = _path_id(request, "dead letter")
        try:
            [requeued] = await self._dead_letters.requeue([letter_id])
        except StoreNotFoundError:
            return _error(404, f"dead letter {letter_id} does not exist")
        log.info("dead letter requeued", id=letter_id, mapping=requeued.mapping, object=requeued.object,
                 record=requeued.record_id)
        return web.json_response(dead_letter_view(requeued))

    def _unauthorised(self) -> web.Response:
        """The 401 for a call without the admin token, saying whether one is configured at all."""
        reason = "admin.token is not configured" if self._token is None else "missing or wrong token"
        return _error(401, reason, **{"WWW-Authenticate": 'Bearer realm="syncd"'})

    def _authorised(self, request: web.Request) -> bool:
        """A bearer token equal to `admin.token` (constant-time compare); refused when none is configured."""
        if self._token is None:
            return False
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        expected = self._token.get_secret_value()
        return (
            scheme.lower() == "bearer"
            and bool(expected)
            and hmac.compare_digest(given.strip().encode(), expected.encode())
        )


def _resolution(body: Any) -> tuple[str, Resolution, Any, str]:
    """Check a resolve body; the first element names the problem, empty when the body is good."""
    if not isinstance(body, dict):
        return "body must be a JSON object", "crm", None, ""
    resolution = body.get("resolution")
    by = body.get("by")
    if resolution not in ("crm", "accounting", "value"):
        return "resolution must be crm, accounting or value", "crm", None, ""
    if not isinstance(by, str) or not by.strip():
        return "by must name who decided", "crm", None, ""
    if resolution == "value" and "value" not in body:
        return 'resolution "value" needs a "value"', "crm", None, ""
    if resolution != "value" and "value" in body:
        return f'"value" only goes with resolution "value", not {resolution!r}', "crm", None, ""
    return "", cast(Resolution, resolution), body.get("value"), by.strip()


@web.middleware
async def _store_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A store outage on any API call is a 503 the caller may retry, not a 500."""
    try:
        return await handler(request)
    except _STORE_DOWN as exc:
        log.error("admin api: store unavailable", path=request.path, error=str(exc))
        return _error(503, "store unavailable, retry later")


def build_admin_app(
    *,
    db: Database,
    settings: Settings,
    metrics: Metrics,
    on_requeue: Callable[[], None] | None = None,
    objects: SystemObjects | None = None,
) -> web.Application:
    """The admin application: /healthz, /readyz, /metrics, the /api/conflicts, /api/links, /api/inbox,
    /api/deadletters endpoints and the /review pages; `on_requeue` is called after an inbox event is put back in
    the queue, `objects` names the system objects of each (mapping, object) so the pages can link records into
    the systems."""
    api = AdminApi(db=db, settings=settings, metrics=metrics, on_requeue=on_requeue)
    app = web.Application(middlewares=[_store_errors, api.guard], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/api/conflicts", api.list_conflicts)
    app.router.add_post(r"/api/conflicts/{id:\d+}/resolve", api.resolve_conflict)
    app.router.add_get("/api/links", api.list_links)
    app.router.add_get("/api/inbox", api.list_inbox)
    app.router.add_post(r"/api/inbox/{id:\d+}/retry", api.retry_inbox_event)
    app.router.add_get("/api/deadletters", api.list_dead_letters)
    app.router.add_post(r"/api/deadletters/{id:\d+}/retry", api.retry_dead_letter)
    add_review_pages(app, db=db, settings=settings, objects=objects or {}, on_requeue=on_requeue)
    return app
