"""The conflict review pages on the admin listener: sign in with the admin token, list and filter open conflicts,
compare base, CRM and accounting values, resolve one or a whole field, and retry dead letters and given-up
webhook events; server-rendered (Jinja2), usable without JavaScript."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote, urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from syncd.logs import get_logger
from syncd.settings import Settings
from syncd.store import (
    AuditLog,
    ConnectionStore,
    Database,
    DeadLetter,
    DeadLetterStore,
    InboxStore,
    Link,
    Resolution,
    StoreConflictError,
    StoreNotFoundError,
)
from syncd.store.columns import utcnow
from syncd.store.inbox_command import _change as inbox_change
from syncd.store.review import ConflictCase, ConflictQuery, ReviewStore, resolution_label, shown
from syncd.web.session import Session, SessionSigner

log = get_logger(__name__)

Side = Literal["crm", "accounting"]
#: (mapping, mapped object) → (CRM object, accounting object): what a link's ids are ids of on each system.
SystemObjects = Mapping[tuple[str, str], tuple[str, str]]

PAGE = 200
HISTORY = 50
#: The age filter's choices: conflicts detected longer ago than this.
AGES: dict[str, tuple[str, timedelta]] = {
    "1h": ("older than an hour", timedelta(hours=1)),
    "1d": ("older than a day", timedelta(days=1)),
    "7d": ("older than a week", timedelta(days=7)),
    "30d": ("older than 30 days", timedelta(days=30)),
}
_OPEN_PATHS = ("/review/login", "/review/static/")
_HEADERS = {
    # Everything the pages load is their own; no framing (clickjacking), no referrer into the systems' UIs.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_SESSION_KEY = web.RequestKey("review_session", Session)


class RecordLinks:
    """Where a person opens a linked record in each system's own UI (the connections' `record_urls`)."""

    def __init__(self, settings: Settings, objects: SystemObjects) -> None:
        self._templates: dict[str, dict[str, str]] = {
            c.system: dict(c.record_urls) for c in settings.connections.values() if c.enabled
        }
        self._objects = objects

    def system_object(self, link: Link, side: Side) -> str | None:
        """The system object a link's record is on `side` (None for a mapping not active here)."""
        pair = self._objects.get((link.mapping, link.object))
        return None if pair is None else pair[0 if side == "crm" else 1]

    def url(self, link: Link, side: Side) -> str | None:
        """The record's page in its system, when the connection says how to form it."""
        record_id = link.crm_id if side == "crm" else link.acc_id
        system = link.crm_system if side == "crm" else link.acc_system
        obj = self.system_object(link, side)
        template = self._templates.get(system, {}).get(obj or "")
        if record_id is None or template is None:
            return None
        return template.replace("{id}", quote(record_id, safe=""))


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: `3 h ago`, `just now`."""
    if when is None:
        return "never"
    seconds = int(((now or utcnow()) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def dead_letter_reason(letter: DeadLetter) -> str:
    """Why a record is parked and what happens next, in plain words."""
    side = "CRM" if letter.side == "crm" else "accounting"
    error = " ".join(letter.error.split())
    then = (
        f"syncd tries again {letter.next_attempt_at.isoformat(timespec='seconds')}"
        if letter.next_attempt_at is not None
        else "it waits until the record changes, or until you retry it"
    )
    tries = f"{letter.attempts} attempt{'s' if letter.attempts != 1 else ''}"
    return f"The {side} record {letter.record_id} could not be synced ({tries}): {error}. Next: {then}."


class ReviewPages:
    """The pages' handlers over one store."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        objects: SystemObjects,
        on_requeue: Callable[[], None] | None = None,
    ) -> None:
        token = settings.admin.token.get_secret_value() if settings.admin.token is not None else ""
        self._token = token
        self._signer = SessionSigner(token) if token else None
        self._review = ReviewStore(db)
        self._connections = ConnectionStore(db)
        self._dead_letters = DeadLetterStore(db)
        self._inbox = InboxStore(db)
        self._audit = AuditLog(db)
        self._links = RecordLinks(settings, objects)
        self._on_requeue = on_requeue

    @property
    def signer(self) -> SessionSigner | None:
        """The session signer; None when no admin token is configured (nobody can sign in)."""
        return self._signer

    # --- signing in and out ---------------------------------------------------------------------------
    async def login_form(self, request: web.Request) -> web.Response:
        """The sign-in form."""
        return self._render("login.html", request, {"next": _local(request.query.get("next"))})

    async def login(self, request: web.Request) -> web.Response:
        """Check the admin token (constant time) and start a session under the name given."""
        form = await request.post()
        given, who, next_path = (str(form.get(k, "")) for k in ("token", "who", "next"))
        context: dict[str, Any] = {"next": _local(next_path), "who": who}
        if self._signer is None:
            context["error"] = "admin.token is not configured: set it in the config to use this page."
            return self._render("login.html", request, context, status=401)
        if not who.strip():
            context["error"] = "Give your name: it is kept with each resolution you make."
            return self._render("login.html", request, context, status=400)
        if not hmac.compare_digest(given.strip().encode(), self._token.encode()):
            log.warning("review sign-in refused: wrong token", remote=request.remote)
            context["error"] = "That is not the admin token."
            return self._render("login.html", request, context, status=401)
        response = web.HTTPSeeOther(_local(next_path))
        session = self._signer.issue(response, who, secure=request.secure)
        log.info("review sign-in", who=session.who, remote=request.remote)
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        """End the session."""
        response = web.HTTPSeeOther("/review/login")
        SessionSigner.end(response)
        raise response

    # --- pages ----------------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        """Open conflicts (filtered), bulk actions, dead letters, given-up events, connections to re-authorise
        and the latest resolutions."""
        query, filters = _conflict_query(request)
        counts = await self._review.conflicts.open_counts()
        cases = await self._review.cases(query, limit=PAGE)
        history = await self._review.cases(ConflictQuery(status="resolved", order="resolved"), limit=HISTORY)
        connections = [c for c in await self._connections.list() if c.status == "needs_reauth"]
        letters = await self._dead_letters.list(limit=PAGE)
        given_up = await self._inbox.given_up(limit=PAGE)
        context = {
            "filters": filters,
            "ages": {key: label for key, (label, _) in AGES.items()},
            "choices": {
                "mapping": sorted({m for m, _, _ in counts}),
                "object": sorted({o for _, o, _ in counts}),
                "field": sorted({f for _, _, f in counts}),
            },
            "cases": [self._row(case) for case in cases],
            "more": len(cases) == PAGE,
            "open_total": sum(counts.values()),
            "groups": [{"mapping": m, "object": o, "field": f, "count": n} for (m, o, f), n in sorted(counts.items())],
            "history": [self._row(case) for case in history],
            "reauth": [{"name": c.name, "system": c.system, "error": c.last_error, "since": c.updated_at,
                        "command": f"syncd auth {c.name}"} for c in connections],
            "dead_letters": [{"letter": d, "reason": dead_letter_reason(d)} for d in letters],
            "given_up": [{"event": e, "change": inbox_change(e.payload)} for e in given_up],
            "notice": await self._notice(request),
        }
        return self._render("index.html", request, context)

    async def detail(self, request: web.Request) -> web.Response:
        """One conflict: base, CRM and accounting values side by side, when it was detected, what syncd last
        wrote to each side, how to resolve it, and the record's earlier resolutions."""
        try:
            case = await self._review.case(_id(request))
        except StoreNotFoundError:
            raise web.HTTPNotFound(text="no such conflict") from None
        link = case.link
        sides = []
        side: Side
        for side in ("crm", "accounting"):
            obj = self._links.system_object(link, side)
            record_id = link.crm_id if side == "crm" else link.acc_id
            system = link.crm_system if side == "crm" else link.acc_system
            writes = (
                await self._audit.list(system=system, object=obj, record_id=record_id, limit=5)
                if obj is not None and record_id is not None else []
            )
            sides.append({"side": side, "system": system, "object": obj or link.object, "id": record_id,
                          "url": self._links.url(link, side), "writes": writes})
        earlier = await self._review.conflicts.list(status="resolved", link_id=link.id, order="resolved", limit=20)
        context = {
            "case": self._row(case),
            "sides": sides,
            "earlier": [{"conflict": c, "how": resolution_label(c)} for c in earlier],
        }
        return self._render("conflict.html", request, context)

    # --- actions --------------------------------------------------------------------------------------
    async def resolve(self, request: web.Request) -> web.Response:
        """Resolve one conflict with the side chosen or the value typed (the same path as the API and CLI)."""
        conflict_id = _id(request)
        resolution, value = _resolution(await request.post())
        who = request[_SESSION_KEY].who
        try:
            await self._review.conflicts.resolve(conflict_id, resolution, value, by=who)
        except StoreNotFoundError:
            raise web.HTTPNotFound(text="no such conflict") from None
        except StoreConflictError:
            raise web.HTTPSeeOther(_notice_url("already", conflict_id)) from None
        log.info("conflict resolved", conflict=conflict_id, resolution=resolution, by=who, via="review page")
        raise web.HTTPSeeOther(_notice_url("resolved", conflict_id))

    async def resolve_field(self, request: web.Request) -> web.Response:
        """Resolve every open conflict of one field of one mapped object the same way."""
        form = await request.post()
        mapping, obj, field = (str(form.get(k, "")) for k in ("mapping", "object", "field"))
        if not (mapping and obj and field):
            raise web.HTTPBadRequest(text="mapping, object and field are required")
        resolution, value = _resolution(form)
        who = request[_SESSION_KEY].who
        done = await self._review.resolve_field(mapping, obj, field, resolution, value, by=who)
        log.info("conflicts resolved in bulk", mapping=mapping, object=obj, field=field, resolution=resolution,
                 count=len(done), by=who)
        raise web.HTTPSeeOther("/review?" + urlencode({"done": "bulk", "n": len(done), "field": field}))

    async def retry_dead_letter(self, request: web.Request) -> web.Response:
        """Make a parked record due now: the next pass over its object tries it."""
        letter_id = _id(request)
        try:
            letter = await self._review.retry_dead_letter(letter_id)
        except StoreNotFoundError:
            raise web.HTTPNotFound(text="no such dead letter") from None
        log.info("dead letter retried", id=letter_id, mapping=letter.mapping, object=letter.object,
                 record=letter.record_id, by=request[_SESSION_KEY].who)
        raise web.HTTPSeeOther(_notice_url("dead-letter", letter_id))

    async def retry_inbox_event(self, request: web.Request) -> web.Response:
        """Put a given-up webhook event back in the queue."""
        event_id = _id(request)
        try:
            await self._inbox.requeue([event_id])
        except StoreNotFoundError:
            raise web.HTTPNotFound(text="no such inbox event") from None
        except StoreConflictError:
            raise web.HTTPSeeOther(_notice_url("inbox-not-given-up", event_id)) from None
        log.info("inbox event requeued", id=event_id, by=request[_SESSION_KEY].who)
        if self._on_requeue is not None:
            self._on_requeue()
        raise web.HTTPSeeOther(_notice_url("inbox", event_id))

    # --- pieces ---------------------------------------------------------------------------------------
    def _row(self, case: ConflictCase) -> dict[str, Any]:
        """What a page shows of one conflict."""
        c, link = case.conflict, case.link
        return {
            "conflict": c,
            "link": link,
            "record": case.record,
            "base": shown(c.base_value),
            "crm": shown(c.crm_value),
            "acc": shown(c.acc_value),
            "resolved": shown(c.resolved_value),
            "how": resolution_label(c),
            "crm_url": self._links.url(link, "crm"),
            "acc_url": self._links.url(link, "accounting"),
        }

    async def _notice(self, request: web.Request) -> str | None:
        """The message after an action, from its code (never from text in the URL)."""
        done, raw_id = request.query.get("done"), request.query.get("id", "")
        item = int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else None
        if done == "bulk":
            n = request.query.get("n", "0")
            field = request.query.get("field", "?")
            return (f"{n if n.isdigit() else 0} conflict(s) of field {field} resolved; the values are written on "
                    "the next sync pass.")
        if item is None:
            return None
        if done == "resolved":
            try:
                case = await self._review.case(item)
            except StoreNotFoundError:
                return None
            return (f"Conflict {item} resolved ({case.record}, {case.conflict.field}: {resolution_label(case.conflict)}"
                    f"): {shown(case.conflict.resolved_value)} is written to both sides on the next sync pass.")
        return {
            "already": f"Conflict {item} was already resolved by someone else; nothing changed.",
            "dead-letter": f"Dead letter {item} is due now: the next pass over its object tries it again.",
            "inbox": f"Webhook event {item} is back in the queue.",
            "inbox-not-given-up": f"Webhook event {item} is not given up (pending or processed); nothing changed.",
        }.get(done or "")

    def _render(self, name: str, request: web.Request, context: dict[str, Any], *, status: int = 200
                ) -> web.Response:
        session = request.get(_SESSION_KEY)  # none on the sign-in form
        return aiohttp_jinja2.render_template(name, request, {**context, "session": session}, status=status)


def _local(path: str | None) -> str:
    """Where to go after signing in: a path of these pages only (never another site)."""
    if path and path.startswith("/review") and not path.startswith("//"):
        return path
    return "/review"


def _id(request: web.Request) -> int:
    """The `{id}` of the route (digits only); a 404 for one too large to be any row's."""
    raw = request.match_info["id"]
    if len(raw) > 18:
        raise web.HTTPNotFound(text="no such item")
    return int(raw)


def _notice_url(code: str, item: int) -> str:
    return "/review?" + urlencode({"done": code, "id": item})


def _resolution(form: Mapping[str, Any]) -> tuple[Resolution, Any]:
    """The choice a form made: a side, or a typed value (an emptied box clears the field)."""
    choice = form.get("choice")
    if choice not in ("crm", "accounting", "value"):
        raise web.HTTPBadRequest(text="choice must be crm, accounting or value")
    if choice != "value":
        return cast(Resolution, choice), None
    value = form.get("value")
    if not isinstance(value, str):
        raise web.HTTPBadRequest(text="a typed value is needed with choice=value")
    return "value", value.strip() or None


def _conflict_query(request: web.Request) -> tuple[ConflictQuery, dict[str, str]]:
    """The list's filters from the query string (empty means any); a 400 for an unknown age."""
    filters = {key: request.query.get(key, "").strip() for key in ("mapping", "object", "field", "age")}
    age = filters["age"]
    if age and age not in AGES:
        raise web.HTTPBadRequest(text=f"age must be one of {', '.join(AGES)}")
    query = ConflictQuery(
        mapping=filters["mapping"] or None,
        object=filters["object"] or None,
        field=filters["field"] or None,
        detected_before=utcnow() - AGES[age][1] if age else None,
    )
    return query, filters


def review_guard(signer: SessionSigner | None) -> Any:
    """Middleware: the review pages need a session (else to the sign-in form), their forms the session's CSRF
    token (else 403); every page answer carries the headers that keep it from being framed or cached."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/review"):
            return await handler(request)
        if not request.path.startswith(_OPEN_PATHS):
            session = signer.read(request) if signer is not None else None
            if session is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther("/review/login?" + urlencode({"next": request.path_qs}))
                raise web.HTTPForbidden(text="sign in first")
            if request.method == "POST":
                form = await request.post()
                if not hmac.compare_digest(str(form.get("csrf", "")).encode(), session.csrf.encode()):
                    log.warning("review form refused: bad CSRF token", path=request.path, remote=request.remote)
                    raise web.HTTPForbidden(text="this form has expired or did not come from this page; reload it")
            request[_SESSION_KEY] = session
        response = await handler(request)
        response.headers.update(_HEADERS)
        return response

    return guard


def add_review_pages(
    app: web.Application,
    *,
    db: Database,
    settings: Settings,
    objects: SystemObjects,
    on_requeue: Callable[[], None] | None = None,
) -> None:
    """Mount the review pages under /review on the admin application (templates, static files, routes)."""
    pages = ReviewPages(db=db, settings=settings, objects=objects, on_requeue=on_requeue)
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("syncd.web", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["ago"] = ago
    here = Path(__file__).parent
    app.middlewares.append(review_guard(pages.signer))
    app.router.add_get("/", _to_review)
    app.router.add_get("/review", pages.index)
    app.router.add_get("/review/login", pages.login_form)
    app.router.add_post("/review/login", pages.login)
    app.router.add_post("/review/logout", pages.logout)
    app.router.add_get(r"/review/conflicts/{id:\d+}", pages.detail)
    app.router.add_post(r"/review/conflicts/{id:\d+}/resolve", pages.resolve)
    app.router.add_post("/review/conflicts/resolve-field", pages.resolve_field)
    app.router.add_post(r"/review/dead-letters/{id:\d+}/retry", pages.retry_dead_letter)
    app.router.add_post(r"/review/inbox/{id:\d+}/retry", pages.retry_inbox_event)
    app.router.add_static("/review/static/", here / "static")


async def _to_review(_request: web.Request) -> web.StreamResponse:
    """The listener's root leads a person to the review page."""
    raise web.HTTPFound("/review")
