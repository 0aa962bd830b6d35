"""HubSpot webhook deliveries: signature v3 (v1/v2 only where configured) checked with the SDK's `Signature`,
freshness of the request and of every event, events."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hubspot.utils.signature import Signature

from syncd.connectors.base import ChangeEvent, ChangeKind, WebhookRejected, WebhookRequest
from syncd.connectors.freshness import check_fresh

MAX_AGE_S = 300.0  # HubSpot: reject requests whose timestamp is older than 5 minutes
# HubSpot retries a delivery up to 10 times over about 24 hours, each retry with a fresh request timestamp but
# the event's own occurredAt: an event older than the retry span (plus slack) is a replay, not a change.
MAX_EVENT_AGE = timedelta(hours=26)
LEGACY_VERSIONS = ("v1", "v2")

OBJECT_NAMES: dict[str, str] = {
    "contact": "contacts", "company": "companies", "deal": "deals", "line_item": "line_items",
}
_KINDS: dict[str, ChangeKind] = {
    "creation": "created",
    "propertyChange": "updated",
    "associationChange": "updated",
    "deletion": "deleted",
    "privacyDeletion": "deleted",
    "merge": "merged",
    "restore": "restored",
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_signature(
    request: WebhookRequest, app_secret: str, *, legacy: Collection[str] = (), now: float | None = None
) -> None:
    """Raise `WebhookRejected(401)` unless the request is signed with the app secret and fresh.

    v3 (HMAC over method, URL, body and timestamp) is checked when present. Without it, v1/v2 (as
    `X-HubSpot-Signature-Version` says) are taken only if listed in `legacy` (the connection's
    `legacy_webhook_signatures`): they carry no timestamp, so a captured delivery could be replayed for ever;
    only the events' own times (`parse_events`) bound their age then."""
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None
    v3 = _header(request.headers, "X-HubSpot-Signature-v3")
    if v3 is not None:
        stamp = _header(request.headers, "X-HubSpot-Request-Timestamp")
        try:
            sent_s = float(stamp or "") / 1000.0
        except ValueError:
            raise WebhookRejected(401, "missing or malformed X-HubSpot-Request-Timestamp") from None
        current = time.time() if now is None else now
        # Also refuse timestamps from the future: the SDK only checks the age.
        if abs(current - sent_s) > MAX_AGE_S:
            raise WebhookRejected(401, "stale webhook: timestamp is more than 5 minutes away")
        expected = Signature.get_signature(app_secret, body, "v3", request.url, request.method.upper(), stamp)
        if not _equal(expected, v3):
            raise WebhookRejected(401, "bad X-HubSpot-Signature-v3")
        return
    signature = _header(request.headers, "X-HubSpot-Signature")
    version = (_header(request.headers, "X-HubSpot-Signature-Version") or "v1").lower()
    if signature is None:
        raise WebhookRejected(401, "unsigned webhook: no X-HubSpot-Signature(-v3) header")
    if version not in LEGACY_VERSIONS:
        raise WebhookRejected(401, f"unsupported signature version {version!r}")
    if version not in legacy:
        raise WebhookRejected(
            401, f"no X-HubSpot-Signature-v3: {version} signatures are not accepted on this connection "
                 "(list them in its legacy_webhook_signatures if the app sends only those)")
    expected = Signature.get_signature(app_secret, body, version, request.url, request.method.upper())
    if not _equal(expected, signature):
        raise WebhookRejected(401, f"bad X-HubSpot-Signature ({version})")


def _equal(expected: str, given: str) -> bool:
    import hmac

    return hmac.compare_digest(expected.encode(), given.strip().encode())


def parse_events(body: bytes, objects: Sequence[str], *, now: datetime | None = None) -> list[ChangeEvent]:
    """The change events of a delivery (a JSON array); events for objects not served are left out.
    The whole delivery is refused (401) if any event is older than `MAX_EVENT_AGE` or dated ahead of now."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "body is not JSON") from None
    if not isinstance(payload, list):
        raise WebhookRejected(400, "body must be a JSON array of events")
    events: list[ChangeEvent] = []
    for index, raw in enumerate(payload):
        events.extend(_event(index, raw, objects, now or datetime.now(UTC)))
    return events


def _event(index: int, raw: Any, objects: Sequence[str], now: datetime) -> list[ChangeEvent]:
    if not isinstance(raw, Mapping):
        raise WebhookRejected(400, f"event {index} is not an object")
    kind_text = raw.get("subscriptionType")
    event_id = raw.get("eventId")
    object_id = raw.get("objectId")
    if object_id is None and isinstance(kind_text, str) and kind_text.endswith(".associationChange"):
        # Association events name no objectId: the record whose associations changed is `fromObjectId`.
        object_id = raw.get("fromObjectId")
    occurred = raw.get("occurredAt")
    if not isinstance(kind_text, str) or "." not in kind_text:
        raise WebhookRejected(400, f"event {index}: subscriptionType missing or malformed")
    if event_id is None or object_id is None or isinstance(occurred, bool) or not isinstance(occurred, int | float):
        raise WebhookRejected(400, f"event {index}: eventId, objectId and occurredAt (epoch ms) are required")
    try:
        occurred_at = datetime.fromtimestamp(float(occurred) / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise WebhookRejected(400, f"event {index}: occurredAt is not a time") from None
    check_fresh(occurred_at, MAX_EVENT_AGE, what=f"event {index} occurredAt", now=now)
    singular, _, action = kind_text.partition(".")
    obj = OBJECT_NAMES.get(singular)
    kind = _KINDS.get(action)
    if obj is None or kind is None or obj not in objects:
        return []  # a subscription we do not sync (custom objects, conversations): not an error
    extra = {k: str(raw[k]) for k in ("propertyName", "propertyValue", "changeSource", "attemptNumber",
                                       "sourceId", "portalId") if raw.get(k) is not None}
    if kind != "merged":
        return [ChangeEvent(str(event_id), obj, str(object_id), kind, occurred_at, extra=extra)]
    # A merge names the surviving record; each merged-away id is gone into it.
    primary = str(raw.get("primaryObjectId") or raw.get("newObjectId") or object_id)
    merged_ids = raw.get("mergedObjectIds")
    out = [ChangeEvent(str(event_id), obj, primary, "updated", occurred_at, extra=extra)]
    if isinstance(merged_ids, list):
        out.extend(
            ChangeEvent(f"{event_id}:{merged}", obj, str(merged), "merged", occurred_at, merged_into=primary,
                        extra=extra)
            for merged in merged_ids
            if str(merged) != primary
        )
    return out
