"""Webhooks: the app's settings and subscriptions, event payloads, v1/v3 signatures and the dispatcher."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.sandbox.hubspot.associations import AssociationType, Edge
from syncd.sandbox.hubspot.catalog import SINGULAR
from syncd.sandbox.hubspot.objects import Record
from syncd.sandbox.hubspot.values import iso_ms
from syncd.sandbox.webhook_dispatcher import Event, WebhookDispatcher

EVENT_KINDS = ("creation", "deletion", "propertyChange", "merge", "restore", "associationChange")
_CHANGE_FLAGS = {"creation": "NEW", "deletion": "DELETED", "merge": "MERGED", "restore": "RESTORED"}


def signature_v1(secret: str, body: bytes) -> str:
    """X-HubSpot-Signature (v1): hex sha256 of secret + raw body."""
    return hashlib.sha256(secret.encode() + body).hexdigest()


def signature_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    """The v2 signature: hex sha256 of secret + method + uri + body (kept for the documented test vector)."""
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str) -> str:
    """X-HubSpot-Signature-v3: base64 HMAC-SHA256(secret, method + uri + body + timestamp)."""
    message = method.encode() + uri.encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, method: str, url: str, body: bytes) -> dict[str, str]:
    """Both signatures HubSpot sends with a CRM-object webhook delivery."""
    # Receivers compare the timestamp with their own wall clock, so it is wall time even under a fake clock.
    timestamp = str(int(time.time() * 1000))
    return {
        "X-HubSpot-Signature": signature_v1(secret, body),
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature-v3": signature_v3(secret, method, url, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
    }


def encode_events(events: list[Event]) -> bytes:
    """The delivery body: a JSON array of events."""
    return json.dumps(events, separators=(",", ":")).encode()


class HubSpotWebhookDispatcher(WebhookDispatcher):
    """The base dispatcher, with every retry re-encoded with `attemptNumber` raised, as HubSpot does."""

    def encode_attempt(self, batch: list[Event], attempt: int) -> bytes:
        """The body of attempt `attempt` (1-based): HubSpot counts attempts from 0 in each event."""
        return self.encode([{**event, "attemptNumber": attempt - 1} for event in batch])


@dataclass
class AppSettings:
    """The app's webhook settings (management API `/settings`): where its subscriptions' events go."""

    target_url: str
    max_concurrent_requests: int
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        """The `SettingsResponse` body."""
        return {
            "targetUrl": self.target_url,
            "throttling": {"maxConcurrentRequests": self.max_concurrent_requests},
            "createdAt": iso_ms(self.created_at),
            "updatedAt": iso_ms(self.updated_at),
        }

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot for the sandbox state file."""
        return {"target_url": self.target_url, "max_concurrent_requests": self.max_concurrent_requests,
                "created_at": self.created_at, "updated_at": self.updated_at}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> AppSettings:
        """Restore a snapshot written by to_state."""
        return cls(str(state["target_url"]), int(state["max_concurrent_requests"]), float(state["created_at"]),
                   float(state["updated_at"]))


@dataclass(frozen=True)
class RoutedEvents:
    """One change's events: those of the app's own subscriptions (sent to its settings' target URL), and
    those control-plane targets receive (the app's, plus the sandbox's catch-all for what the app lacks)."""

    app: list[Event] = field(default_factory=list)
    control: list[Event] = field(default_factory=list)


class Subscriptions:
    """The app's webhook subscriptions, the sandbox's catch-all ones, and the events they make of changes."""

    def __init__(self, *, app_id: int, portal_id: int, clock: Callable[[], float]) -> None:
        self.app_id = app_id
        self.portal_id = portal_id
        self.clock = clock
        # The app's subscriptions, managed through the Webhooks API: none at first, as for a new app.
        self.items: list[dict[str, Any]] = []
        self._next_event_id = 100_001
        # Targets set through the control plane receive every object × event kind without anyone subscribing
        # (a sandbox liberty for tests and demos); propertyChange without a propertyName covers every property.
        # associationChange is left out: its events name no objectId, which receivers written for record
        # events may not expect. These never appear in the API and never reach the app's target URL.
        self.builtin: list[dict[str, Any]] = []
        for singular in SINGULAR.values():
            for kind in ("creation", "deletion", "propertyChange", "merge", "restore"):
                self.builtin.append(self._new(f"{singular}.{kind}", None, active=True, sub_id=len(self.builtin) + 1))
        self._next_id = len(self.builtin) + 1

    # --- the management API's operations ---

    def add(self, event_type: str, property_name: str | None, *, active: bool) -> dict[str, Any]:
        """A new subscription of the app (management API POST)."""
        item = self._new(event_type, property_name, active=active, sub_id=self._next_id)
        self._next_id += 1
        self.items.append(item)
        return item

    def get(self, sub_id: int) -> dict[str, Any] | None:
        """The app's subscription with this id, or None."""
        return next((s for s in self.items if s["id"] == str(sub_id)), None)

    def find(self, event_type: str, property_name: str | None) -> dict[str, Any] | None:
        """The app's subscription to this event type (and property), or None."""
        return next((s for s in self.items
                     if s["eventType"] == event_type and s.get("propertyName") == property_name), None)

    def set_active(self, item: dict[str, Any], active: bool) -> dict[str, Any]:
        """Switch a subscription on or off (PATCH, batch update)."""
        if item["active"] != active:
            item["active"] = active
            item["updatedAt"] = iso_ms(self.clock())
        return item

    def remove(self, sub_id: int) -> bool:
        """Delete one of the app's subscriptions; False when there is none with this id."""
        before = len(self.items)
        self.items = [s for s in self.items if s["id"] != str(sub_id)]
        return len(self.items) != before

    def clear(self) -> None:
        """Forget every subscription of the app, as for a new app."""
        self.items = []
        self._next_id = len(self.builtin) + 1

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot for the sandbox state file."""
        return {"items": [dict(s) for s in self.items], "next_id": self._next_id}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a snapshot written by to_state."""
        self.items = [dict(s) for s in state.get("items", [])]
        self._next_id = int(state.get("next_id", len(self.builtin) + len(self.items) + 1))

    def _new(self, event_type: str, property_name: str | None, *, active: bool, sub_id: int) -> dict[str, Any]:
        now = iso_ms(self.clock())
        item: dict[str, Any] = {
            "id": str(sub_id),
            "eventType": event_type,
            "active": active,
            "createdAt": now,
            "updatedAt": now,
        }
        if property_name is not None:
            item["propertyName"] = property_name
        return item

    # --- events ---

    def events(self, kind: str, obj: str, record: Record, extra: dict[str, Any]) -> RoutedEvents:
        """The events one record change produces, one per matching active subscription."""
        app = self._record_events(self.items, kind, obj, record, extra)
        return RoutedEvents(app, app + self._uncovered(app, self._record_events(self.builtin, kind, obj, record,
                                                                                extra)))

    def association_events(self, edge: Edge, spec: AssociationType, removed: bool) -> RoutedEvents:
        """associationChange events for one association type added to or removed from one direction of an
        edge, one per matching active subscription of the edge's source object (the app's only)."""
        from_obj, from_id, to_obj, to_id = edge
        event_type = f"{SINGULAR[from_obj]}.associationChange"
        out: list[Event] = []
        for sub in self.items:
            if not sub["active"] or sub["eventType"] != event_type:
                continue
            out.append({
                **self._envelope(sub, event_type),
                "changeSource": "API",
                "associationType": f"{SINGULAR[from_obj]}_TO_{SINGULAR[to_obj]}".upper(),
                "associationCategory": spec.category,
                "associationTypeId": spec.type_id,
                "fromObjectId": from_id,
                "toObjectId": to_id,
                "associationRemoved": removed,
                "isPrimaryAssociation": spec.label == "Primary",
            })
        return RoutedEvents(out, list(out))

    def creation_property_events(self, obj: str, record: Record, properties: dict[str, str]) -> RoutedEvents:
        """propertyChange events for properties set at creation, for the app's subscriptions naming them."""
        out: list[Event] = []
        for name, value in properties.items():
            # `_record_events` picks the active subscriptions of this object's propertyChange naming `name`.
            out.extend(self._record_events(self.items, "propertyChange", obj, record,
                                           {"changeSource": "API", "propertyName": name, "propertyValue": value}))
        return RoutedEvents(out, list(out))

    @staticmethod
    def _uncovered(app: list[Event], builtin: list[Event]) -> list[Event]:
        """The catch-all's events for what no app subscription reported: a control-plane target that is also
        the app's target then sees each change under one event id, which it can deduplicate."""
        covered = {(e["subscriptionType"], e.get("propertyName")) for e in app}
        return [e for e in builtin if (e["subscriptionType"], e.get("propertyName")) not in covered]

    def _record_events(self, subscriptions: list[dict[str, Any]], kind: str, obj: str, record: Record,
                       extra: dict[str, Any]) -> list[Event]:
        event_type = f"{SINGULAR[obj]}.{kind}"
        out: list[Event] = []
        for sub in subscriptions:
            if not sub["active"] or sub["eventType"] != event_type:
                continue
            wanted = sub.get("propertyName")
            if kind == "propertyChange" and wanted is not None and wanted != extra.get("propertyName"):
                continue
            event = self._envelope(sub, event_type)
            event["objectId"] = record.id
            event["changeSource"] = extra.get("changeSource", "API")
            if kind in _CHANGE_FLAGS:
                event["changeFlag"] = _CHANGE_FLAGS[kind]
            if kind == "propertyChange":
                event["propertyName"] = extra["propertyName"]
                event["propertyValue"] = extra["propertyValue"]
            if kind == "merge":
                for key in ("primaryObjectId", "mergedObjectIds", "newObjectId", "numberOfPropertiesMoved"):
                    event[key] = extra[key]
            out.append(event)
        return out

    def _envelope(self, sub: dict[str, Any], event_type: str) -> Event:
        """The fields every delivered event carries, under the next event id."""
        event: Event = {
            "eventId": self._next_event_id,
            "subscriptionId": int(sub["id"]),
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": int(self.clock() * 1000),
            "subscriptionType": event_type,
            "attemptNumber": 0,
        }
        self._next_event_id += 1
        return event
