"""The webhook receiver: verify, store every event in the inbox, then acknowledge and wake the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from sqlalchemy.exc import SQLAlchemyError

from syncd.connectors.base import ChangeEvent, WebhookRejected, WebhookRequest
from syncd.logs import get_logger
from syncd.store import Database, InboxStore, StoreError
from syncd.web.events import event_payload
from syncd.web.metrics import Metrics, WebhookOutcome

log = get_logger(__name__)

# A CRM sends at most 100 events a delivery, a few hundred bytes each: 1 MiB is generous and still bounded.
MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_PATH = "/webhooks/{connection}"


class WebhookSource(Protocol):
    """The part of a `Connector` the receiver uses; every connector satisfies it."""

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise `WebhookRejected` unless the request is authentic and fresh."""

    def parse_webhook(self, request: WebhookRequest) -> Sequence[ChangeEvent]:
        """The change events of a verified delivery; `WebhookRejected(400)` if malformed."""
        ...


def webhook_url(public_url: str, connection: str) -> str:
    """The address to register with a system for `connection`'s webhooks, under the public URL."""
    return public_url.rstrip("/") + WEBHOOK_PATH.format(connection=connection)


def _first(value: str | None) -> str | None:
    """The first (client-most) entry of a proxy header that may list several hops."""
    if not value:
        return None
    return value.split(",")[0].strip() or None


def signed_url(request: web.Request, *, public_url: str | None, trust_forwarded: bool) -> str:
    """The URL the sender signed: under `public_url` if set, else as the request (or a trusted proxy) says.

    Built from the raw path so percent-encoding is exactly what arrived: re-encoding breaks v3 signatures.
    """
    if public_url is not None:
        return public_url.rstrip("/") + request.raw_path
    scheme, host = request.scheme, request.host
    if trust_forwarded:
        scheme = _first(request.headers.get("X-Forwarded-Proto")) or scheme
        host = _first(request.headers.get("X-Forwarded-Host")) or host
    return f"{scheme}://{host}{request.raw_path}"


def _check_public_url(public_url: str | None) -> None:
    """Refuse a public URL that cannot be the base of a signed URL."""
    if public_url is None:
        return
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"webhooks.public_url must be an http(s) URL without query, got {public_url!r}")


class WebhookReceiver:
    """Handles `POST /webhooks/{connection}` for the configured connections."""

    def __init__(
        self,
        *,
        db: Database,
        connectors: Mapping[str, WebhookSource],
        on_event: Callable[[str], None] | None,
        metrics: Metrics,
        public_url: str | None,
        trust_forwarded: bool,
        max_body: int,
    ) -> None:
        self._inbox = InboxStore(db)
        self._db = db
        self._connectors = connectors
        self._on_event = on_event
        self._metrics = metrics
        self._public_url = public_url
        self._trust_forwarded = trust_forwarded
        self._max_body = max_body

    def _answer(
        self, connection: str, outcome: WebhookOutcome, status: int, body: dict[str, object]
    ) -> web.Response:
        """Count the delivery's outcome and answer it with a short JSON body."""
        self._metrics.count_webhook(connection, outcome)
        return web.json_response(body, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, parse, store, acknowledge; nothing is stored unless all of it succeeds."""
        name = request.match_info["connection"]
        source = self._connectors.get(name)
        if source is None:
            # Label as "unknown", never with the path: a scanner must not grow the metric's label set.
            return self._answer("unknown", "unknown_connection", 404, {"error": "unknown connection"})
        if request.content_length is not None and request.content_length > self._max_body:
            return self._answer(name, "too_large", 413, {"error": f"body larger than {self._max_body} bytes"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._answer(name, "too_large", 413, {"error": f"body larger than {self._max_body} bytes"})
        hook = WebhookRequest(
            method=request.method,
            url=signed_url(request, public_url=self._public_url, trust_forwarded=self._trust_forwarded),
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=body,
            query=dict(request.query),
        )
        try:
            events = _verified_events(source, hook)
        except WebhookRejected as exc:
            log.warning("webhook rejected", connection=name, status=exc.status, reason=exc.reason)
            outcome: WebhookOutcome = "rejected" if exc.status == 401 else "malformed"
            return self._answer(name, outcome, exc.status, {"error": exc.reason})
        try:
            new = await self._store(name, events)
        except (StoreError, SQLAlchemyError, OSError) as exc:
            # Not acknowledged, so the sender retries; the events are not lost.
            log.error("webhook not stored: store unavailable", connection=name, error=str(exc))
            return self._answer(name, "store_error", 503, {"error": "store unavailable, retry later"})
        outcome = "accepted" if new or not events else "duplicate"
        response = self._answer(name, outcome, 200, {"received": len(events), "new": new})
        if new:
            self._wake(name)
        return response

    async def _store(self, connection: str, events: Sequence[ChangeEvent]) -> int:
        """Write every event in one transaction; returns how many were new (redeliveries are ignored)."""
        if not events:
            return 0
        new = 0
        async with self._db.transaction() as session:
            for event in events:
                if await self._inbox.put(connection, event.event_id, event_payload(event), session=session):
                    new += 1
        return new

    def _wake(self, connection: str) -> None:
        """Tell the engine there is work; its failure must not turn a stored webhook into an error."""
        if self._on_event is None:
            return
        try:
            self._on_event(connection)
        except Exception as exc:
            log.error(
                "waking the engine failed; polling will pick the events up",
                connection=connection,
                error=str(exc),
            )


def _verified_events(source: WebhookSource, hook: WebhookRequest) -> Sequence[ChangeEvent]:
    """Verify, then parse; `WebhookRejected` for anything the sender must not get a 500 for."""
    try:
        source.verify_webhook(hook)
        return source.parse_webhook(hook)
    except RecursionError:
        # JSON nested deeper than the parser goes. It may carry a valid signature: nesting is no proof of forgery.
        raise WebhookRejected(400, "body is nested too deeply to be a webhook") from None


def build_webhook_app(
    *,
    db: Database,
    connectors: Mapping[str, WebhookSource],
    on_event: Callable[[str], None] | None = None,
    metrics: Metrics | None = None,
    public_url: str | None = None,
    trust_forwarded: bool = False,
    max_body: int = MAX_BODY_BYTES,
) -> web.Application:
    """The receiver's aiohttp application: `POST /webhooks/{connection}`.

    `public_url` (from `WebhookSettings`) fixes the scheme and host the senders sign;
    `trust_forwarded` honours `X-Forwarded-Proto`/`-Host`, only safe behind a proxy that sets them.
    """
    _check_public_url(public_url)
    receiver = WebhookReceiver(
        db=db,
        connectors=connectors,
        on_event=on_event,
        metrics=metrics or Metrics(),
        public_url=public_url,
        trust_forwarded=trust_forwarded,
        max_body=max_body,
    )
    app = web.Application(client_max_size=max_body)
    app.router.add_post(WEBHOOK_PATH, receiver.handle)
    return app
