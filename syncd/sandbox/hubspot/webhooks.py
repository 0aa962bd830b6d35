"""Webhooks: subscriptions, event payloads, v1/v3 signatures and a dispatcher that counts attempts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from syncd.sandbox.base import Event, WebhookDispatcher
from syncd.sandbox.hubspot.associations import AssociationType, Edge
from syncd.sandbox.hubspot.catalog import SINGULAR
from syncd.sandbox.hubspot.objects import Record
from syncd.sandbox.hubspot.values import iso_ms

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


class Subscriptions:
    """The app's webhook subscriptions and the events they turn record changes into."""

    def __init__(self, *, app_id: int, portal_id: int, clock: Callable[[], float]) -> None:
        self.app_id = app_id
        self.portal_id = portal_id
        self.clock = clock
        self.items: list[dict[str, Any]] = []
        self._next_event_id = 100_001
        # Every object × event kind is subscribed out of the box, active (a real app's subscriptions start
        # paused until switched on; the sandbox saves users that step); propertyChange without a propertyName
        # (a sandbox liberty) covers every property. associationChange is left for users to subscribe to:
        # its events name no objectId, which receivers written for record events may not expect.
        for singular in SINGULAR.values():
            for kind in ("creation", "deletion", "propertyChange", "merge", "restore"):
                self.add(f"{singular}.{kind}", None, active=True)

    def add(self, event_type: str, property_name: str | None, *, active: bool) -> dict[str, Any]:
        """A new subscription (management API POST)."""
        now = iso_ms(self.clock())
        item: dict[str, Any] = {
            "id": str(len(self.items) + 1),
            "eventType": event_type,
            "active": active,
            "createdAt": now,
            "updatedAt": now,
        }
        if property_name is not None:
            item["propertyName"] = property_name
        self.items.append(item)
        return item

    def events(self, kind: str, obj: str, record: Record, extra: dict[str, Any]) -> list[Event]:
        """The events one change produces, one per matching active subscription."""
        event_type = f"{SINGULAR[obj]}.{kind}"
        out: list[Event] = []
        for sub in self.items:
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

    def association_events(self, edge: Edge, spec: AssociationType, removed: bool) -> list[Event]:
        """associationChange events for one association type added to or removed from one direction of an
        edge, one per matching active subscription of the edge's source object."""
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

    def creation_property_events(self, obj: str, record: Record, properties: dict[str, str]) -> list[Event]:
        """propertyChange events for properties set at creation, for subscriptions naming the property."""
        out: list[Event] = []
        for name, value in properties.items():
            named = [
                s for s in self.items
                if s["active"] and s["eventType"] == f"{SINGULAR[obj]}.propertyChange" and s.get("propertyName") == name
            ]
            if named:
                for event in self.events(
                    "propertyChange", obj, record,
                    {"changeSource": "API", "propertyName": name, "propertyValue": value},
                ):
                    if event["subscriptionId"] in {int(s["id"]) for s in named}:
                        out.append(event)
        return out
