"""Outgoing notifications: a JSON POST signed with HMAC-SHA256 to the configured URL when a conflict is opened, a
connection needs re-authorisation or a record is parked. Sent by the daemon from a background queue: a slow or
failing receiver never holds up syncing, and its failures are logged once per streak."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp

from syncd.logs import get_logger
from syncd.settings import NotificationSettings
from syncd.store import Database
from syncd.store.columns import utcnow
from syncd.store.review import ReviewStore

log = get_logger(__name__)

NotificationEvent = Literal["conflict.opened", "connection.needs_reauth", "record.parked"]
SIGNATURE_HEADER = "X-Syncd-Signature"
TIMESTAMP_HEADER = "X-Syncd-Timestamp"
EVENT_HEADER = "X-Syncd-Event"
#: Notifications waiting to be sent at most; beyond that new ones are dropped (and that is logged once).
QUEUE_SIZE = 1000


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY` under the secret
    (the timestamp inside the signed text, so a captured delivery cannot be replayed as a fresh one)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Notifier:
    """Queues notifications and POSTs them one by one in the background; `start()`, `send()`, `await stop()`."""

    def __init__(self, url: str, secret: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._queue: asyncio.Queue[tuple[NotificationEvent, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._dropping = False
        self.sent = 0

    @classmethod
    def from_settings(cls, settings: NotificationSettings) -> Notifier | None:
        """The configured notifier, or None when `[notifications] url` is not set."""
        if settings.url is None or settings.secret is None:
            return None
        return cls(settings.url, settings.secret.get_secret_value(), timeout_s=settings.timeout_s)

    def start(self) -> None:
        """Start sending in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._send_all(), name="notifications")

    def send(self, event: NotificationEvent, data: Mapping[str, Any]) -> None:
        """Queue one notification; never waits (when the queue is full the notification is dropped)."""
        try:
            self._queue.put_nowait((event, dict(data)))
            self._dropping = False
        except asyncio.QueueFull:
            if not self._dropping:
                log.warning("notifications dropped: the receiver is not keeping up", url=self.url, queued=QUEUE_SIZE)
            self._dropping = True

    async def drained(self) -> None:
        """Wait until every queued notification was sent or given up on."""
        await self._queue.join()

    async def stop(self) -> None:
        """Stop sending; what is still queued is not sent (it concerned state the store keeps anyway)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send_all(self) -> None:
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while True:
                event, data = await self._queue.get()
                try:
                    await self._post(session, event, data)
                finally:
                    self._queue.task_done()

    async def _post(self, session: aiohttp.ClientSession, event: NotificationEvent, data: dict[str, Any]) -> None:
        body = json.dumps({"event": event, "at": utcnow().isoformat(), "data": data}, default=str).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
        }
        try:
            async with session.post(self.url, data=body, headers=headers, allow_redirects=False) as response:
                if response.status >= 300:
                    raise aiohttp.ClientResponseError(response.request_info, (), status=response.status,
                                                      message=response.reason or "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if not self._failing:
                log.warning("notification not delivered; later failures are not logged until one succeeds",
                            url=self.url, notification=event, error=str(exc) or type(exc).__name__)
            self._failing = True
            return
        self.sent += 1
        if self._failing:
            log.info("notifications delivered again", url=self.url)
        self._failing = False


class StoreWatcher:
    """Finds what is new in the store since it last looked (conflicts opened, records parked) and notifies it,
    whichever process or pass wrote it."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        self._review = ReviewStore(db)
        self._notifier = notifier
        self._last_conflict = 0
        self._last_letter = 0

    async def start(self) -> None:
        """Take what is already in the store as known: only what comes after is notified."""
        self._last_conflict, self._last_letter = await self._review.high_water_marks()

    async def check(self) -> None:
        """Notify the conflicts opened and the records parked since the last check."""
        cases = await self._review.cases_after(self._last_conflict)
        for case in cases:
            c, link = case.conflict, case.link
            self._notifier.send("conflict.opened", {
                "conflict": c.id, "mapping": link.mapping, "object": link.object, "record": case.record,
                "field": c.field, "crm_system": link.crm_system, "crm_id": link.crm_id,
                "acc_system": link.acc_system, "acc_id": link.acc_id, "detected_at": c.detected_at.isoformat(),
                "resolve": f"syncd conflicts resolve {c.id}",
            })
            self._last_conflict = max(self._last_conflict, c.id)
        for letter in await self._review.dead_letters_after(self._last_letter):
            self._notifier.send("record.parked", {
                "dead_letter": letter.id, "connection": letter.connection, "mapping": letter.mapping,
                "object": letter.object, "side": letter.side, "record_id": letter.record_id, "reason": letter.error,
                "retried_automatically": letter.next_attempt_at is not None,
            })
            self._last_letter = max(self._last_letter, letter.id)

    def reauthorisation_needed(self, connection: str, system: str, reason: str | None) -> None:
        """Notify that a connection needs `syncd auth`."""
        self._notifier.send("connection.needs_reauth", {
            "connection": connection, "system": system, "reason": reason, "run": f"syncd auth {connection}",
        })
