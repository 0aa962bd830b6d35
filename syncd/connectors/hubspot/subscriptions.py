"""The HubSpot app's webhook subscriptions: which ones the active mappings need, and putting them in place
through the Webhooks v3 API without ever creating one twice."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.connectors.base import FieldInfo
from syncd.connectors.hubspot.transport import HubSpotTransport, RawAnswer, WebhookCall
from syncd.connectors.hubspot.webhooks import OBJECT_NAMES
from syncd.errors import DuplicateError, FatalError, NotFoundError, UnknownOutcomeError
from syncd.logs import get_logger

log = get_logger(__name__)

SINGULAR: dict[str, str] = {plural: singular for singular, plural in OBJECT_NAMES.items()}
# The record events `parse_webhook` reads, for each object asked about.
RECORD_EVENTS = ("creation", "deletion", "merge", "restore")
WEBHOOK_CONCURRENCY = 10  # deliveries HubSpot may make to us at once (its default)
# Lost answers in a row on one create before giving up (each is followed by listing the subscriptions again).
_UNKNOWN_OUTCOME_ROUNDS = 3

# (eventType, propertyName): what identifies a subscription of the app.
Subscription = tuple[str, str | None]


def _property_change_applies(info: FieldInfo | None) -> bool:
    """Whether a field is a property a user can change. Read-only ones (modified dates, calculated amounts)
    change only along with a writable one, whose event already brings the record; the deal's association and
    line-item fields are not properties: `deal.associationChange` reports them."""
    return (info is not None and info.updateable and info.type not in ("association", "line_items")
            and "." not in info.name)


def wanted_subscriptions(fields: Mapping[str, Collection[str]],
                         described: Mapping[str, Mapping[str, FieldInfo]]) -> list[Subscription]:
    """The subscriptions for `fields` (object → field names the mappings read), in a stable order: each object's
    creation, deletion, merge and restore; a propertyChange per named property that exists and is writable
    (HubSpot has no catch-all propertyChange, and an event per unread property is a wasted fetch); a contact's
    GDPR deletion; and a deal's association changes (its contact, company and line items are deal fields)."""
    wanted: list[Subscription] = []
    for obj, singular in SINGULAR.items():
        if obj not in fields:
            continue
        wanted.extend((f"{singular}.{kind}", None) for kind in RECORD_EVENTS)
        properties = described[obj]
        wanted.extend((f"{singular}.propertyChange", name) for name in sorted(set(fields[obj]))
                      if _property_change_applies(properties.get(name)))
        if obj == "contacts":
            wanted.append(("contact.privacyDeletion", None))
        if obj == "deals":
            wanted.append(("deal.associationChange", None))
    return wanted


@dataclass(frozen=True)
class Registered:
    """What one registration did: subscriptions created, switched back on, and wanted in all."""

    created: int
    activated: int
    total: int


class AppWebhooks:
    """One developer app's webhook settings and subscriptions, managed with the developer API key."""

    def __init__(self, transport: HubSpotTransport, *, connection: str, app_id: int, api_key: str) -> None:
        self._transport = transport
        self._connection = connection
        self._app_id = app_id
        self._api_key = api_key

    async def register(self, url: str, wanted: Sequence[Subscription]) -> Registered:
        """Point the app at `url` and make sure every wanted subscription exists and is active.

        Idempotent: subscriptions already there are kept (switched on if paused), only missing ones are made;
        subscriptions the app has beyond `wanted` are left alone (someone may have made them on purpose)."""
        await self._set_target(url)
        present = await self._list()
        paused = [int(present[w]["id"]) for w in wanted if w in present and not present[w].get("active", False)]
        if paused:
            body = {"inputs": [{"id": sub_id, "active": True} for sub_id in paused]}
            await self._call("activate subscriptions", lambda a, t: a.subscriptions.update_batch_with_http_info(
                self._app_id, body, _preload_content=False, _request_timeout=t))
        missing = [w for w in wanted if w not in present]
        await self._create_all(missing)
        return Registered(created=len(missing), activated=len(paused), total=len(wanted))

    async def _set_target(self, url: str) -> None:
        settings = {"targetUrl": url, "throttling": {"maxConcurrentRequests": WEBHOOK_CONCURRENCY}}
        try:
            await self._call("set webhook target", lambda a, t: a.settings.configure_with_http_info(
                self._app_id, settings, _preload_content=False, _request_timeout=t))
        except NotFoundError as exc:
            # The first call of a registration: a 404 here means the app itself is unknown to this key.
            raise FatalError(
                f"HubSpot has no app {self._app_id} for this developer API key ({exc.vendor_message}); "
                "check app_id", connection=self._connection, status=exc.status, vendor_code=exc.vendor_code,
            ) from exc

    async def _list(self) -> dict[Subscription, Mapping[str, Any]]:
        answer = await self._call("list subscriptions", lambda a, t: a.subscriptions.get_all_with_http_info(
            self._app_id, _preload_content=False, _request_timeout=t))
        return {(s.get("eventType"), s.get("propertyName")): s for s in (answer.body or {}).get("results", [])}

    async def _create_all(self, missing: Sequence[Subscription]) -> None:
        """Create each subscription once. A create is not repeated blindly: after a lost answer the app's
        subscriptions are listed again and only those still missing are created; a 409 means already there."""
        pending = list(missing)
        lost_in_a_row = 0
        while pending:
            subscription = pending[0]
            try:
                await self._create(subscription)
            except DuplicateError:
                pass  # made by an earlier attempt whose answer was lost, or by someone else meanwhile
            except UnknownOutcomeError as exc:
                lost_in_a_row += 1
                if lost_in_a_row >= _UNKNOWN_OUTCOME_ROUNDS:
                    raise
                log.warning("subscription create outcome unknown; listing before any retry",
                            connection=self._connection, event_type=subscription[0], property=subscription[1],
                            error=str(exc))
                present = await self._list()
                if subscription in present:
                    lost_in_a_row = 0
                pending = [s for s in pending if s not in present]
                continue
            lost_in_a_row = 0
            pending.pop(0)

    async def _create(self, subscription: Subscription) -> None:
        event_type, property_name = subscription
        request: dict[str, Any] = {"eventType": event_type, "active": True}
        if property_name is not None:
            request["propertyName"] = property_name
        await self._call("create subscription", lambda a, t: a.subscriptions.create_with_http_info(
            self._app_id, request, _preload_content=False, _request_timeout=t), unsafe_write=True)

    async def _call(self, what: str, call: WebhookCall, *, unsafe_write: bool = False) -> RawAnswer:
        """One Webhooks API call; a refused key becomes an error that says which setting to check."""
        try:
            return await self._transport.call_as_developer(what, call, api_key=self._api_key,
                                                           unsafe_write=unsafe_write)
        except FatalError as exc:  # AuthError (401) is a FatalError
            if exc.status in (401, 403):
                raise FatalError(
                    f"HubSpot refused the developer API key for app {self._app_id} ({exc.vendor_message}); "
                    "check developer_api_key: the API key of the developer account that owns the app",
                    connection=self._connection, status=exc.status, vendor_code=exc.vendor_code,
                ) from exc
            raise
